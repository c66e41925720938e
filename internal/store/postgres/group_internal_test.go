package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// holdGroup keeps the group of one-statement transactions without
// settings busy with a statement that sleeps for d, and returns once that
// round trip is in flight, with a channel closed when it has ended.
func holdGroup(t *testing.T, drv *Driver, d time.Duration) <-chan struct{} {
	t.Helper()
	ctx := context.Background()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		err := drv.WriteOne(ctx, func(q store.Queries) error {
			_, err := q.(queries).tx.Exec(ctx, "SELECT pg_sleep($1)", d.Seconds())
			return err
		})
		if err != nil {
			t.Errorf("holding statement: %v", err)
		}
	}()
	g := drv.groups.get(nil)
	waitFor(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.busy && len(g.queue) == 0
	})
	return ended
}

// waitQueued waits until n statements wait in the group without settings.
func waitQueued(t *testing.T, drv *Driver, n int) {
	t.Helper()
	g := drv.groups.get(nil)
	waitFor(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue) == n
	})
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupSharesOneTransaction: statements that arrive while a round trip
// is in flight go together in the next, as one transaction.
func TestGroupSharesOneTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openOne(t)
	ended := holdGroup(t, d, time.Second)
	const n = 10
	var wg sync.WaitGroup
	got := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.WriteOne(ctx, func(q store.Queries) error {
				return q.(queries).tx.QueryRow(ctx, "SELECT txid_current()::text").Scan(&got[i])
			})
		}()
	}
	waitQueued(t, d, n)
	<-ended
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("statement %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("transactions %v: want one for all %d statements", got, n)
		}
	}
}

// TestGroupFailureStaysWithItsStatement: one statement of a round trip
// fails, which rolls the others back; they are sent again alone and
// stand, and only the failing one hears of its error.
func TestGroupFailureStaysWithItsStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openOne(t)
	run := func(id string) core.Run {
		return core.Run{ID: id, Repo: "/r", Event: core.EventManual, State: core.RunQueued, CreatedAt: time.UnixMilli(1)}
	}
	if err := d.WriteOne(ctx, func(q store.Queries) error { return q.InsertRun(ctx, run("taken")) }); err != nil {
		t.Fatal(err)
	}
	ended := holdGroup(t, d, time.Second)
	ids := []string{"r0", "r1", "taken", "r3", "r4"}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.WriteOne(ctx, func(q store.Queries) error { return q.InsertRun(ctx, run(id)) })
		}()
	}
	waitQueued(t, d, len(ids))
	<-ended
	wg.Wait()
	for i, id := range ids {
		if id == "taken" {
			if core.KindOf(errs[i]) != core.KindConflict {
				t.Errorf("insert of a taken id: %v, want a conflict", errs[i])
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("insert %s: %v", id, errs[i])
		}
		if _, err := d.Read().GetRun(ctx, id); err != nil {
			t.Errorf("run %s did not stand: %v", id, err)
		}
	}
}

// TestGroupsKeepTheirSettings: statements with a claim's settings go in
// a group of their own; concurrent statements without see the defaults.
func TestGroupsKeepTheirSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openOne(t)
	var before string
	if err := d.pool.QueryRow(ctx, "SELECT current_setting('enable_sort')").Scan(&before); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		claim := i%2 == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := d.WriteOne(ctx, func(q store.Queries) error {
				x := q.(queries)
				if claim {
					if err := x.tx.set(ctx, claimSettings); err != nil {
						return err
					}
				}
				var v string
				if err := x.tx.QueryRow(ctx, "SELECT current_setting('enable_sort')").Scan(&v); err != nil {
					return err
				}
				if want := map[bool]string{true: "off", false: before}[claim]; v != want {
					return fmt.Errorf("claim %v: enable_sort %s, want %s", claim, v, want)
				}
				return nil
			})
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestGroupWaiterMayLeave: a caller whose context ends while its
// statement waits gets its context's error at once, and the group goes
// on serving the others.
func TestGroupWaiterMayLeave(t *testing.T) {
	t.Parallel()
	d := openOne(t)
	ended := holdGroup(t, d, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() {
		left <- d.WriteOne(ctx, func(q store.Queries) error {
			var v int
			return q.(queries).tx.QueryRow(ctx, "SELECT 1").Scan(&v)
		})
	}()
	waitQueued(t, d, 1)
	cancel()
	select {
	case err := <-left:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("left with %v, want context.Canceled", err)
		}
	case <-ended:
		t.Fatal("the caller waited for the round trip in flight")
	}
	<-ended
	var v int
	err := d.WriteOne(context.Background(), func(q store.Queries) error {
		return q.(queries).tx.QueryRow(context.Background(), "SELECT 2").Scan(&v)
	})
	if err != nil || v != 2 {
		t.Fatalf("after a caller left: %d, %v", v, err)
	}
}
