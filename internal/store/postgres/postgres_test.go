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

func TestForgesConformance(t *testing.T) {
	storetest.RunForges(t, openStore)
}

func TestDeliveryMakesOneRun(t *testing.T) {
	storetest.RunDeliveryRuns(t, openStore)
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

func TestWebAuth(t *testing.T) {
	t.Parallel()
	storetest.RunWebAuth(t, openStore)
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

// Only the changes of runs some replica watches are announced: a commit
// that sends NOTIFY takes a cluster-wide lock, which the queue's every
// transition must not pay.
func TestOnlyWatchedRunsAreAnnounced(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drv, err := postgres.Open(ctx, storetest.PostgresURL(t), true)
	if err != nil {
		t.Fatal(err)
	}
	// The listener's connection goes back to the pool once ctx ends;
	// closing the pool waits for it.
	defer drv.Close()
	defer cancel()
	s := store.New(drv)
	ids := make(chan string, 100)
	listening := make(chan struct{})
	go s.Watch(ctx, func(id string) { ids <- id })
	// The LISTEN is in place once an announcement arrives: announce one.
	newRun := func() core.Run {
		run, _, err := s.CreateRun(ctx, "test", store.NewRun{Event: core.EventManual, Jobs: []store.NewJob{{Spec: core.JobSpec{Name: "a", Run: "true"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	probe := store.NewID()
	if err := s.WatchRuns(ctx, "replica-1", []string{probe}, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(listening)
		for {
			// The run ids are new each time; watch the run, then
			// write, until the listener hears one.
			r := newRun()
			if err := s.WatchRuns(ctx, "replica-1", []string{r.ID}, time.Now().Add(time.Minute)); err != nil {
				t.Error(err)
				return
			}
			if err := s.Update(ctx, "test", func(tx *store.Tx) error {
				return tx.MoveRun(ctx, r.ID, core.RunQueued, core.RunPlanning, "")
			}); err != nil {
				t.Error(err)
				return
			}
			select {
			case id := <-ids:
				if id != r.ID && id != "" {
					t.Errorf("announced %q while only %s was written", id, r.ID)
				}
				return
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
	}()
	<-listening
	if t.Failed() {
		return
	}

	unwatched := newRun()
	watched := newRun()
	if err := s.WatchRuns(ctx, "replica-2", []string{watched.ID}, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, r := range []core.Run{unwatched, watched} {
		if err := s.Update(ctx, "test", func(tx *store.Tx) error {
			return tx.MoveRun(ctx, r.ID, core.RunQueued, core.RunPlanning, "")
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Notifications arrive in commit order: the watched run's comes after
	// anything the unwatched run's commit would have sent.
	for id := range ids {
		if id == unwatched.ID {
			t.Fatalf("the change of run %s, which nobody watches, was announced", id)
		}
		if id == watched.ID {
			break
		}
	}
	if err := s.UnwatchRun(ctx, "replica-2", watched.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.ExpireRunWatches(ctx, time.Now().Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// With no watch left, the run's next change is silent; a watched
	// run's change after it proves the listener would have heard it.
	if err := s.Update(ctx, "test", func(tx *store.Tx) error {
		return tx.MoveRun(ctx, watched.ID, core.RunPlanning, core.RunRunning, "")
	}); err != nil {
		t.Fatal(err)
	}
	last := newRun()
	if err := s.WatchRuns(ctx, "replica-3", []string{last.ID}, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, "test", func(tx *store.Tx) error {
		return tx.MoveRun(ctx, last.ID, core.RunQueued, core.RunPlanning, "")
	}); err != nil {
		t.Fatal(err)
	}
	for id := range ids {
		if id == watched.ID {
			t.Fatal("a run whose watch ended and expired was still announced")
		}
		if id == last.ID {
			break
		}
	}
}

func TestAnalysisConformance(t *testing.T) {
	t.Parallel()
	storetest.RunAnalysis(t, openStore)
}

func TestCaches(t *testing.T) {
	t.Parallel()
	storetest.RunCaches(t, openStore)
}
