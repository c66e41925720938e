package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/postgres"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, openStore)
}

func TestLogs(t *testing.T) {
	t.Parallel()
	storetest.RunLogs(t, openStore)
}

func TestRunners(t *testing.T) {
	t.Parallel()
	storetest.RunRunners(t, openStore)
}

func TestRunHistory(t *testing.T) {
	t.Parallel()
	storetest.RunHistory(t, openStore)
}

func TestProjects(t *testing.T) {
	t.Parallel()
	storetest.RunProjects(t, openStore)
}

func TestErroredRuns(t *testing.T) {
	t.Parallel()
	storetest.RunErrored(t, openStore)
}

// TestListenWakesOnQueue checks that queuing an attempt notifies a listener
// on another connection when the transaction commits, and only then.
func TestListenWakesOnQueue(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drv, err := postgres.Open(ctx, storetest.PostgresURL(t), true)
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(drv)
	t.Cleanup(func() { s.Close() })
	woke := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		drv.Listen(ctx, func() { woke <- struct{}{} })
	}()
	defer func() { cancel(); <-done }()
	// The listener must be in place before the notification is sent: keep
	// queuing until one arrives.
	deadline := time.After(30 * time.Second)
	for {
		run, jobs, err := s.CreateRun(ctx, "test", store.NewRun{Event: core.EventManual, Jobs: []store.NewJob{{Spec: core.JobSpec{Name: "a", Run: "true"}}}})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Update(ctx, "test", func(tx *store.Tx) error {
			if err := tx.MoveRun(ctx, run.ID, core.RunQueued, core.RunPlanning, ""); err != nil {
				return err
			}
			if err := tx.MoveRun(ctx, run.ID, core.RunPlanning, core.RunRunning, ""); err != nil {
				return err
			}
			if err := tx.MoveJob(ctx, jobs[0], core.JobQueued, ""); err != nil {
				return err
			}
			_, err := tx.EnqueueAttempt(ctx, jobs[0])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-woke:
			return
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("no wake-up from LISTEN after queuing attempts for 30 s")
		}
	}
}

// TestConcurrentMigrations: replicas starting together each run Migrate;
// the lock makes one apply every migration and the others find none left.
func TestConcurrentMigrations(t *testing.T) {
	t.Parallel()
	url := storetest.PostgresURL(t)
	const replicas = 4
	applied := make(chan int, replicas)
	errs := make(chan error, replicas)
	for range replicas {
		go func() {
			v, err := postgres.Migrate(context.Background(), url)
			applied <- len(v)
			errs <- err
		}()
	}
	total := 0
	for range replicas {
		total += <-applied
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	one, err := postgres.Migrate(context.Background(), url)
	if err != nil || len(one) != 0 {
		t.Fatalf("a later Migrate applied %v (%v), want nothing", one, err)
	}
	files, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if total != len(files) {
		t.Fatalf("the replicas applied %d migrations in all, want each of the %d once", total, len(files))
	}
}

func TestMoveLeased(t *testing.T) {
	t.Parallel()
	storetest.RunMoveLeased(t, openStore)
}

// openStore is the conformance suites' Opener: a fresh, migrated store.
func openStore(t *testing.T, now func() time.Time) *store.Store {
	drv, err := postgres.Open(context.Background(), storetest.PostgresURL(t), true)
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(drv, store.WithClock(now))
	t.Cleanup(func() { s.Close() })
	return s
}

// TestWriteFailuresLeaveNothing: a transaction sends BEGIN with its first
// statement and its events with COMMIT; a statement failing first or
// later rolls all of it back, and the connection serves the next one.
func TestWriteFailuresLeaveNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// One connection, so that a broken one would fail the next write.
	drv, err := postgres.Open(ctx, storetest.PostgresURL(t)+"&pool_max_conns=1", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	run := func(id string) core.Run {
		return core.Run{ID: id, Repo: "/r", Event: core.EventManual, State: core.RunQueued, CreatedAt: time.UnixMilli(1)}
	}
	ev := func(id string) core.Event {
		return core.Event{At: time.UnixMilli(1), Actor: "test", Entity: core.EntityRun, EntityID: id, RunID: id, To: string(core.RunQueued)}
	}
	if err := drv.Write(ctx, func(q store.Queries) error { return q.InsertRun(ctx, run("kept")) }); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		fn   func(q store.Queries) error
	}{
		{"first statement fails", func(q store.Queries) error {
			if err := q.InsertEvent(ctx, ev("kept")); err != nil {
				return err
			}
			return q.InsertRun(ctx, run("kept"))
		}},
		{"later statement fails", func(q store.Queries) error {
			if err := q.InsertRun(ctx, run("lost")); err != nil {
				return err
			}
			if err := q.InsertEvent(ctx, ev("lost")); err != nil {
				return err
			}
			return q.InsertRun(ctx, run("kept"))
		}},
	} {
		if err := drv.Write(ctx, tc.fn); core.KindOf(err) != core.KindConflict {
			t.Fatalf("%s: got %v, want a conflict", tc.name, err)
		}
		for _, id := range []string{"kept", "lost"} {
			evs, err := drv.Read().ListRunEvents(ctx, id)
			if err != nil || len(evs) != 0 {
				t.Fatalf("%s: events of %s = %v, %v; want none", tc.name, id, evs, err)
			}
		}
		if _, err := drv.Read().GetRun(ctx, "lost"); core.KindOf(err) != core.KindNotFound {
			t.Fatalf("%s: the rolled-back run is there: %v", tc.name, err)
		}
	}
	// The one connection still works, and events reach the table at commit.
	err = drv.Write(ctx, func(q store.Queries) error {
		if err := q.InsertRun(ctx, run("later")); err != nil {
			return err
		}
		return q.InsertEvent(ctx, ev("later"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := drv.Read().ListRunEvents(ctx, "later"); err != nil || len(evs) != 1 {
		t.Fatalf("events = %v, %v; want one", evs, err)
	}
}
