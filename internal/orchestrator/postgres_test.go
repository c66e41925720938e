package orchestrator_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/orchestrator"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/postgres"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

// TestConcurrentLastCompletionsEndTheRun: on PostgreSQL (READ COMMITTED,
// many writers) the last two jobs of a run completing at the same moment
// must still end the run: neither transaction may miss the other's job.
func TestConcurrentLastCompletionsEndTheRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	drv, err := postgres.Open(ctx, storetest.PostgresURL(t), true)
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(drv)
	t.Cleanup(func() { s.Close() })
	o := orchestrator.New(s, slog.New(slog.NewTextHandler(io.Discard, nil)), orchestrator.NewNotifier())
	b := bundle{o: o, s: s, ctx: ctx}
	const runs = 40
	for i := 0; i < runs; i++ {
		r := create(t, b, job("a"), job("b"), job("c"))
		var leased []orchestrator.Leased
		for range 3 {
			l, err := o.LeaseAny(ctx, "r", nil, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			f := store.Fence{AttemptID: l.Attempt.ID, LeaseToken: l.Attempt.LeaseToken}
			if err := o.StartAttempt(ctx, "r", f); err != nil {
				t.Fatal(err)
			}
			leased = append(leased, l)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, l := range leased {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				f := store.Fence{AttemptID: l.Attempt.ID, LeaseToken: l.Attempt.LeaseToken}
				if err := o.CompleteAttempt(ctx, "r", f, fail(1)); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		got, err := s.Run(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != core.RunFailed {
			t.Fatalf("run %d of %d is %s after all its jobs ended, want failed", i+1, runs, got.State)
		}
	}
}
