package orchestrator

import (
	"context"
	"log/slog"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// awaitsAnalysis reports whether a failed attempt's job must wait for the
// attempt's analysis before it ends: the job retries attempts whose every
// failing test is known flaky (retry.flaky), the command failed (a test
// may have), and such retries and the policy's cap are not used up.
// previous are the reasons of the job's earlier failed attempts.
func (o *Orchestrator) awaitsAnalysis(ctx context.Context, tx *store.Tx, a core.Attempt, j core.Job, previous []core.Reason) (bool, error) {
	p := j.Spec.Retry
	if p.Flaky <= 0 || a.State != core.AttemptFailed || a.Reason != core.ReasonExitCode {
		return false, nil
	}
	if p.Max > 0 && len(previous) >= p.Max {
		return false, nil
	}
	used, err := flakyRetries(ctx, tx, j)
	if err != nil {
		return false, err
	}
	return used < p.Flaky, nil
}

// flakyRetries counts the job's attempts made as flaky retries.
func flakyRetries(ctx context.Context, tx *store.Tx, j core.Job) (int, error) {
	attempts, err := tx.JobAttempts(ctx, j.ID)
	if err != nil {
		return 0, err
	}
	ids := map[string]bool{}
	for _, at := range attempts {
		ids[at.ID] = true
	}
	evs, err := tx.RunEvents(ctx, j.RunID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range evs {
		if e.Entity == core.EntityAttempt && e.From == "" && e.Reason == core.ReasonFlakyRetry && ids[e.EntityID] {
			n++
		}
	}
	return n, nil
}

// SettleAnalyzed decides, in the transaction that records an attempt's
// analysis, the end of a job that waits for it (awaitsAnalysis): another
// attempt, queued with reason flaky_retry, when every test the attempt
// failed is known flaky in scope; else the job fails as the attempt did.
// It reports whether the job ended; the caller then calls Advance. For any
// other job it does nothing.
func (o *Orchestrator) SettleAnalyzed(ctx context.Context, tx *store.Tx, an core.Analysis, scope string) (bool, error) {
	run, err := tx.LockRun(ctx, an.RunID)
	if err != nil {
		return false, err
	}
	a, j, err := tx.AttemptJob(ctx, an.AttemptID)
	if err != nil {
		return false, err
	}
	if j.State != core.JobRunning || !a.State.Terminal() {
		return false, nil
	}
	attempts, err := tx.JobAttempts(ctx, j.ID)
	if err != nil {
		return false, err
	}
	for _, other := range attempts {
		if other.Number > a.Number || !other.State.Terminal() {
			return false, nil // the job has moved on
		}
	}
	if run.State == core.RunRunning && len(an.Failures) > 0 && an.MoreFailures == 0 {
		flaky, err := tx.Flaky(ctx, scope, j.Name)
		if err != nil {
			return false, err
		}
		known := map[string]bool{}
		for _, f := range flaky {
			if f.Test != "" && f.Active() {
				known[f.Test] = true
			}
		}
		all := true
		for _, f := range an.Failures {
			all = all && known[f.ID]
		}
		if all {
			next, err := tx.EnqueueAttemptBecause(ctx, j, core.ReasonFlakyRetry)
			if err != nil {
				return false, err
			}
			o.log.InfoContext(ctx, "retrying job: every failing test is known flaky", slog.String("run_id", j.RunID),
				slog.String("job", j.Name), slog.Int("attempt", next.Number))
			o.notify.Broadcast()
			return false, nil
		}
	}
	end := core.JobFailed
	if run.State == core.RunCanceling {
		end = core.JobCanceled
	}
	if err := tx.MoveJob(ctx, j, end, a.Reason); err != nil {
		return false, err
	}
	return true, nil
}
