package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

// TestClaimSettingsStayInTheClaim: a claim's transaction walks the queue
// without sorting and commits without waiting for the disk; the settings
// end with it, on the same pooled connection.
func TestClaimSettingsStayInTheClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openOne(t)
	var err error
	show := func(q store.Queries) (sort, sync string) {
		t.Helper()
		x := q.(queries)
		if err := x.tx.QueryRow(ctx, "SELECT current_setting('enable_sort'), current_setting('synchronous_commit')").Scan(&sort, &sync); err != nil {
			t.Fatal(err)
		}
		return sort, sync
	}
	var sort0, sync0 string
	err = d.Write(ctx, func(q store.Queries) error {
		sort0, sync0 = show(q)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Write(ctx, func(q store.Queries) error {
		_, err := q.ClaimAttempt(ctx, store.ClaimRow{Labels: []string{""}, RunnerID: "r", LeaseToken: "t", Now: time.UnixMilli(1), ExpiresAt: time.UnixMilli(2)})
		if core.KindOf(err) != core.KindNotFound {
			t.Fatalf("claim of an empty queue: %v", err)
		}
		if sort, sync := show(q); sort != "off" || sync != "off" {
			t.Fatalf("in the claim: enable_sort %s, synchronous_commit %s; want off, off", sort, sync)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Write(ctx, func(q store.Queries) error {
		if sort, sync := show(q); sort != sort0 || sync != sync0 {
			t.Fatalf("after the claim: enable_sort %s, synchronous_commit %s; want %s, %s as before", sort, sync, sort0, sync0)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWriteOne: a one-statement transaction goes without BEGIN and
// COMMIT, yet its settings hold for its statement only, as in a
// transaction; a second statement is refused, and the first stands.
func TestWriteOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openOne(t)
	var err error
	setting := func(q pgdbtx) string {
		t.Helper()
		var v string
		if err := q.QueryRow(ctx, "SELECT current_setting('enable_sort')").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := setting(d.pool)
	err = d.WriteOne(ctx, func(q store.Queries) error {
		x := q.(queries)
		if err := x.tx.set(ctx, claimSettings); err != nil {
			return err
		}
		if got := setting(x.tx); got != "off" {
			t.Errorf("in the statement: enable_sort %s, want off", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := setting(d.pool); got != before {
		t.Errorf("after the statement: enable_sort %s, want %s as before", got, before)
	}

	run := core.Run{ID: "one", Repo: "/r", Event: core.EventManual, State: core.RunQueued, CreatedAt: time.UnixMilli(1)}
	err = d.WriteOne(ctx, func(q store.Queries) error {
		if err := q.InsertRun(ctx, run); err != nil {
			return err
		}
		if _, err := q.GetRun(ctx, "one"); !errors.Is(err, errSecond) {
			t.Errorf("a second statement: %v, want it refused", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read().GetRun(ctx, "one"); err != nil {
		t.Fatalf("the first statement did not stand: %v", err)
	}
	// A read registered to follow the commit runs once the statement did.
	var counts map[core.JobState]int
	err = d.WriteOne(ctx, func(q store.Queries) error {
		q.CountJobStatesAfterCommit(ctx, "one", func(c map[core.JobState]int) { counts = c })
		return q.InsertJob(ctx, core.Job{ID: "one-a", RunID: "one", Name: "a", State: core.JobPending, CreatedAt: time.UnixMilli(1)}, 0)
	})
	if err != nil || counts[core.JobPending] != 1 {
		t.Fatalf("count after a one-statement transaction: %v, %v; want 1 pending", counts, err)
	}
	// Events can only go with a statement that writes them itself.
	err = d.WriteOne(ctx, func(q store.Queries) error {
		return q.InsertEvent(ctx, core.Event{At: time.UnixMilli(1), Actor: "test", Entity: core.EntityRun, EntityID: "one", RunID: "one", To: "x"})
	})
	if core.KindOf(err) != core.KindInternal {
		t.Fatalf("an event left apart: %v, want an internal error", err)
	}
	if evs, err := d.Read().ListRunEvents(ctx, "one"); err != nil || len(evs) != 0 {
		t.Fatalf("events = %v, %v; want none", evs, err)
	}
}

// TestCountAfterCommit: the count goes with COMMIT and sees the
// transaction's own write; a transaction that fails never calls back.
func TestCountAfterCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openOne(t)
	var err error
	run := core.Run{ID: "counted", Repo: "/r", Event: core.EventManual, State: core.RunRunning, CreatedAt: time.UnixMilli(1)}
	job := func(name string) core.Job {
		return core.Job{ID: "counted-" + name, RunID: run.ID, Name: name, State: core.JobPending, CreatedAt: time.UnixMilli(1)}
	}
	var counts map[core.JobState]int
	err = d.Write(ctx, func(q store.Queries) error {
		if err := q.InsertRun(ctx, run); err != nil {
			return err
		}
		for i, n := range []string{"a", "b"} {
			if err := q.InsertJob(ctx, job(n), i); err != nil {
				return err
			}
		}
		q.CountJobStatesAfterCommit(ctx, run.ID, func(c map[core.JobState]int) { counts = c })
		if counts != nil {
			t.Error("counted before the commit")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if counts[core.JobPending] != 2 || len(counts) != 1 {
		t.Fatalf("counts = %v, want 2 pending", counts)
	}
	called := false
	err = d.Write(ctx, func(q store.Queries) error {
		q.CountJobStatesAfterCommit(ctx, run.ID, func(map[core.JobState]int) { called = true })
		return q.InsertRun(ctx, run) // a conflict: rolls back
	})
	if core.KindOf(err) != core.KindConflict || called {
		t.Fatalf("failed transaction: %v, called %v; want a conflict and no call", err, called)
	}
	// The connection is still good.
	if _, err := d.Read().GetRun(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
}

// pgdbtx is what setting needs of a pool or a transaction.
type pgdbtx interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// openOne opens a driver on a fresh database with one pooled connection,
// so that a connection a test left broken fails the next statement.
func openOne(t *testing.T) *Driver {
	t.Helper()
	d, err := Open(context.Background(), storetest.PostgresURL(t)+"&pool_max_conns=1", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
