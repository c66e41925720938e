package orchestrator

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// Leased is what a runner needs to execute a leased attempt.
type Leased struct {
	Attempt core.Attempt
	Job     core.Job
	Run     core.Run
}

// LeaseAny hands the oldest queued attempt whose labels are all among
// labels to a remote runner. It returns an error of kind core.KindNotFound
// when none is queued.
func (o *Orchestrator) LeaseAny(ctx context.Context, runnerID string, labels []string, ttl time.Duration) (Leased, error) {
	c, err := o.store.ClaimAttempt(ctx, runnerID, store.Claim{RunnerID: runnerID, Labels: labels, TTL: ttl})
	if err != nil {
		return Leased{}, err
	}
	return Leased(c), nil
}

// Release takes back a lease its runner has not started (a runner shutting
// down, an answer that never reached it): the attempt ends lost with reason
// released and a new attempt of the job is queued without counting as a
// retry. A started attempt cannot be released: it gets core.KindConflict.
func (o *Orchestrator) Release(ctx context.Context, runnerID string, f store.Fence) error {
	var (
		runID    string
		jobEnded bool
	)
	err := o.store.Update(ctx, runnerID, func(tx *store.Tx) error {
		cur, err := tx.Attempt(ctx, f.AttemptID)
		if err != nil {
			return err
		}
		if cur.LeaseToken != f.LeaseToken {
			return core.E(core.KindLeaseLost, "release", "attempt %s: lease is no longer held", f.AttemptID)
		}
		run, err := tx.LockRun(ctx, cur.RunID)
		if err != nil {
			return err
		}
		if cur.State == core.AttemptLost && cur.Reason == core.ReasonReleased {
			return nil // released already: the same answer again
		}
		if cur.State != core.AttemptLeased {
			return core.E(core.KindConflict, "release", "attempt %s is %s; only a leased attempt not yet started can be released", f.AttemptID, cur.State)
		}
		j, err := tx.Job(ctx, cur.JobID)
		if err != nil {
			return err
		}
		a, err := tx.MoveLeased(ctx, f, core.AttemptLost, core.ReasonReleased, nil)
		if err != nil {
			return err
		}
		if run.State != core.RunRunning {
			a.State, a.Reason = core.AttemptCanceled, core.ReasonCanceled
			runID = a.RunID
			jobEnded, err = o.settle(ctx, tx, a, j, &run)
			return err
		}
		_, err = tx.EnqueueAttempt(ctx, j)
		return err
	})
	if err != nil {
		return fmt.Errorf("release attempt %s: %w", f.AttemptID, err)
	}
	if jobEnded {
		o.advanceAfter(ctx, runID, nil)
	}
	o.log.InfoContext(ctx, "lease released", slog.String("attempt_id", f.AttemptID))
	o.notify.Broadcast()
	return nil
}
