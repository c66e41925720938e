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
// many writers) the last jobs of a run completing at the same moment must
// still end the run, and queue a dependent exactly once: no transaction
// may miss another's job. Successes end their job without the run's lock
// and failures under it, so the cases mix both.
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
	cases := []struct {
		name      string
		outcomes  []orchestrator.Outcome // of jobs a, b, c, at once
		dependent bool                   // d needs a, b and c
		want      core.RunState
	}{
		{"all fail", []orchestrator.Outcome{fail(1), fail(1), fail(1)}, false, core.RunFailed},
		{"all succeed", []orchestrator.Outcome{ok(), ok(), ok()}, false, core.RunSucceeded},
		{"mixed", []orchestrator.Outcome{ok(), fail(1), ok()}, false, core.RunFailed},
		{"dependent", []orchestrator.Outcome{ok(), ok(), ok()}, true, core.RunSucceeded},
		{"dependent of a failure", []orchestrator.Outcome{ok(), fail(1), ok()}, true, core.RunFailed},
	}
	const runs = 15
	for _, tc := range cases {
		for i := 0; i < runs; i++ {
			jobs := []store.NewJob{job("a"), job("b"), job("c")}
			if tc.dependent {
				jobs = append(jobs, job("d", "a", "b", "c"))
			}
			r := create(t, b, jobs...)
			var leased []orchestrator.Leased
			for range 3 {
				l, err := o.LeaseAny(ctx, "r", nil, time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				f := store.Fence{AttemptID: l.Attempt.ID, LeaseToken: l.Attempt.LeaseToken}
				if err := o.StartAttempt(ctx, "r", l.Attempt, f); err != nil {
					t.Fatal(err)
				}
				leased = append(leased, l)
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for k, l := range leased {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					f := store.Fence{AttemptID: l.Attempt.ID, LeaseToken: l.Attempt.LeaseToken}
					seen := l.Attempt
					seen.State = core.AttemptRunning
					if err := o.CompleteAttempt(ctx, "r", seen, f, tc.outcomes[k]); err != nil {
						t.Error(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if tc.dependent && tc.want == core.RunSucceeded {
				l, err := o.LeaseAny(ctx, "r", nil, time.Minute)
				if err != nil {
					t.Fatalf("%s, run %d: the dependent was not queued: %v", tc.name, i+1, err)
				}
				if l.Job.Name != "d" {
					t.Fatalf("%s, run %d: leased %s, want d", tc.name, i+1, l.Job.Name)
				}
				f := store.Fence{AttemptID: l.Attempt.ID, LeaseToken: l.Attempt.LeaseToken}
				if err := o.StartAttempt(ctx, "r", l.Attempt, f); err != nil {
					t.Fatal(err)
				}
				if err := o.CompleteAttempt(ctx, "r", core.Attempt{}, f, ok()); err != nil {
					t.Fatal(err)
				}
				attempts, err := s.Attempts(ctx, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if len(attempts) != 4 {
					t.Fatalf("%s, run %d: %d attempts, want 4 (the dependent queued once)", tc.name, i+1, len(attempts))
				}
			}
			got, err := s.Run(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tc.want {
				t.Fatalf("%s, run %d of %d is %s after all its jobs ended, want %s", tc.name, i+1, runs, got.State, tc.want)
			}
		}
	}
}
