// Package orchestrator applies the domain's state machines: it starts runs,
// unblocks jobs whose needs are met, hands attempts to runners, records their
// outcomes, retries per policy, cancels runs and reaps lost leases.
//
// Every method commits its moves in one store transaction, so a crash between
// two calls leaves a consistent state that the next call continues from.
package orchestrator

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// Actor is the author recorded on events the orchestrator writes on its own.
const Actor = "orchestrator"

// Orchestrator drives runs through their state machines.
type Orchestrator struct {
	store  *store.Store
	log    *slog.Logger
	notify *Notifier
}

// New returns an orchestrator over s. Subscribers of n are woken whenever an
// attempt is queued or a run ends.
func New(s *store.Store, log *slog.Logger, n *Notifier) *Orchestrator {
	return &Orchestrator{store: s, log: log, notify: n}
}

// Store returns the store the orchestrator writes to.
func (o *Orchestrator) Store() *store.Store { return o.store }

// BeginPlanning moves a queued run to planning, while its workspace and
// plan are prepared.
func (o *Orchestrator) BeginPlanning(ctx context.Context, runID string) error {
	return o.store.Update(ctx, Actor, func(tx *store.Tx) error {
		return tx.MoveRun(ctx, runID, core.RunQueued, core.RunPlanning, "")
	})
}

// StartRun moves a run to running (through planning if it is still
// queued) and queues every job whose needs are already met.
func (o *Orchestrator) StartRun(ctx context.Context, runID string) error {
	err := o.store.Update(ctx, Actor, func(tx *store.Tx) error {
		run, err := tx.LockRun(ctx, runID)
		if err != nil {
			return err
		}
		if run.State == core.RunQueued {
			if err := tx.MoveRun(ctx, runID, core.RunQueued, core.RunPlanning, ""); err != nil {
				return err
			}
		}
		if err := tx.MoveRun(ctx, runID, core.RunPlanning, core.RunRunning, ""); err != nil {
			return err
		}
		// Jobs the planner decided not to run end at once; their
		// dependents then proceed as after a success.
		jobs, err := tx.Jobs(ctx, runID)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if j.Decision != "" && j.State == core.JobPending {
				reason := core.ReasonNone
				if j.Decision == core.JobFailed {
					reason = core.ReasonNotRerun
				}
				if err := tx.MoveJob(ctx, j, j.Decision, reason); err != nil {
					return err
				}
			}
		}
		return o.advance(ctx, tx, runID)
	})
	if err != nil {
		return fmt.Errorf("start run %s: %w", runID, err)
	}
	o.notify.Broadcast()
	return nil
}

// FailPlanning ends a run whose plan could not be made (bad configuration,
// unreachable commit) as errored.
func (o *Orchestrator) FailPlanning(ctx context.Context, runID string, reason core.Reason) error {
	return o.store.Update(ctx, Actor, func(tx *store.Tx) error {
		run, err := tx.Run(ctx, runID)
		if err != nil {
			return err
		}
		if run.State == core.RunQueued {
			if err := tx.MoveRun(ctx, runID, core.RunQueued, core.RunPlanning, ""); err != nil {
				return err
			}
		}
		return tx.MoveRun(ctx, runID, core.RunPlanning, core.RunErrored, reason)
	})
}

// advance settles every pending job whose needs have ended, then ends the
// run when all its jobs have. It loops to a fixed point so that an upstream
// failure cascades through the whole graph in one transaction.
func (o *Orchestrator) advance(ctx context.Context, tx *store.Tx, runID string) error {
	run, err := tx.Run(ctx, runID)
	if err != nil {
		return err
	}
	return o.advanceRun(ctx, tx, run)
}

// advanceRun is advance for a caller that holds the run as it is now.
func (o *Orchestrator) advanceRun(ctx context.Context, tx *store.Tx, run core.Run) error {
	runID := run.ID
	if run.State != core.RunRunning && run.State != core.RunCanceling {
		return nil
	}
	// Most completions leave no job pending (independent jobs, or a DAG's
	// last layer) and some job unfinished: then the counts alone decide,
	// without reading the jobs.
	counts, err := tx.JobStateCounts(ctx, runID)
	if err != nil {
		return err
	}
	if counts[core.JobPending] == 0 {
		for st, n := range counts {
			if n > 0 && !st.Terminal() {
				return nil
			}
		}
		light, err := tx.JobStates(ctx, runID)
		if err != nil {
			return err
		}
		return o.finishIfDone(ctx, tx, run, light)
	}
	jobs, err := tx.Jobs(ctx, runID)
	if err != nil {
		return err
	}
	byName := make(map[string]*core.Job, len(jobs))
	for i := range jobs {
		byName[jobs[i].Name] = &jobs[i]
	}
	for changed := true; changed; {
		changed = false
		for i := range jobs {
			j := &jobs[i]
			if j.State != core.JobPending {
				continue
			}
			next, ok := o.decide(run, *j, byName)
			if !ok {
				continue
			}
			reason := core.ReasonNone
			switch next {
			case core.JobUpstreamFailed:
				reason = core.ReasonUpstreamFailed
			case core.JobCanceled:
				reason = core.ReasonCanceled
			}
			if err := tx.MoveJob(ctx, *j, next, reason); err != nil {
				return err
			}
			j.State, j.Reason = next, reason
			if next == core.JobQueued {
				if _, err := tx.EnqueueAttempt(ctx, *j); err != nil {
					return err
				}
			}
			changed = true
		}
	}
	return o.finishIfDone(ctx, tx, run, jobs)
}

// decide returns the next state of a pending job, and false while it must
// keep waiting on its needs.
func (o *Orchestrator) decide(run core.Run, j core.Job, byName map[string]*core.Job) (core.JobState, bool) {
	if run.State == core.RunCanceling {
		return core.JobCanceled, true
	}
	ready := true
	for _, n := range j.Spec.Needs {
		up, ok := byName[n]
		if !ok {
			// The job was not selected for this run; treat it as met.
			continue
		}
		if up.State.Terminal() && !up.State.Successful() {
			return core.JobUpstreamFailed, true
		}
		if !up.State.Terminal() {
			ready = false
		}
	}
	if !ready {
		return "", false
	}
	return core.JobQueued, true
}

func (o *Orchestrator) finishIfDone(ctx context.Context, tx *store.Tx, run core.Run, jobs []core.Job) error {
	outcome, reason := core.RunSucceeded, core.ReasonNone
	for _, j := range jobs {
		if !j.State.Terminal() {
			return nil
		}
		if !j.State.Successful() && outcome == core.RunSucceeded {
			outcome, reason = core.RunFailed, j.Reason
		}
	}
	if run.State == core.RunCanceling {
		outcome, reason = core.RunCanceled, core.ReasonCanceled
	}
	if err := tx.MoveRun(ctx, run.ID, run.State, outcome, reason); err != nil {
		return err
	}
	o.log.InfoContext(ctx, "run finished", slog.String("run_id", run.ID), slog.String("state", string(outcome)))
	return nil
}

// Lease hands the oldest queued attempt of a run to a runner. It returns an
// error of kind core.KindNotFound when nothing is queued.
func (o *Orchestrator) Lease(ctx context.Context, runID, runnerID string, ttl time.Duration) (core.Attempt, core.Job, error) {
	c, err := o.store.ClaimAttempt(ctx, runnerID, store.Claim{RunID: runID, RunnerID: runnerID, TTL: ttl})
	return c.Attempt, c.Job, err
}

// StartAttempt records that the lease holder began executing: the attempt
// becomes running and so does its job. Stale leases get core.KindLeaseLost;
// a start sent again (its answer was lost) succeeds and changes nothing.
// seen is the attempt as the caller last knew it (at least its ID, lease
// token and state), or the zero Attempt: it saves a read when current and
// is never trusted.
func (o *Orchestrator) StartAttempt(ctx context.Context, runnerID string, seen core.Attempt, f store.Fence) error {
	// The common case in one statement, which commits on its own: the job
	// is queued for its first attempt and running already for a retry,
	// and either way nothing is left to do once the attempt moved.
	var m store.Moved
	err := o.store.UpdateOne(ctx, runnerID, func(tx *store.Tx) error {
		var err error
		m, err = tx.MoveLeasedWithJob(ctx, seen, f, core.AttemptRunning, "", nil, core.JobQueued, core.JobRunning, "")
		return err
	})
	if err != nil || m.AttemptMoved {
		return err
	}
	// It did not move: read the attempt to learn why.
	return o.store.Update(ctx, runnerID, func(tx *store.Tx) error {
		a, err := tx.MoveLeasedSeen(ctx, seen, f, core.AttemptRunning, "", nil)
		if k := core.KindOf(err); k == core.KindLeaseLost || k == core.KindConflict {
			if cur, rerr := tx.Attempt(ctx, f.AttemptID); rerr == nil && cur.State == core.AttemptRunning &&
				cur.LeaseToken == f.LeaseToken && (f.RunnerID == "" || cur.RunnerID == f.RunnerID) {
				return nil
			}
		}
		if err != nil {
			return err
		}
		// The job is queued for its first attempt and running already for
		// a retry.
		_, err = tx.MoveJobIf(ctx, a.JobID, a.RunID, core.JobQueued, core.JobRunning, "")
		return err
	})
}

// Heartbeat extends a lease and reports whether the attempt's run is being
// canceled, in which case the runner must stop the job. It returns the
// attempt as extended. seen is the attempt as the caller read it before,
// or the zero Attempt to have it read: only its run is taken from it.
func (o *Orchestrator) Heartbeat(ctx context.Context, f store.Fence, ttl time.Duration, seen core.Attempt) (cancel bool, a core.Attempt, err error) {
	expires, err := o.store.Heartbeat(ctx, f.AttemptID, f.LeaseToken, ttl)
	if err != nil {
		return false, core.Attempt{}, err
	}
	if a = seen; a.ID != f.AttemptID {
		if a, err = o.store.Attempt(ctx, f.AttemptID); err != nil {
			return false, core.Attempt{}, err
		}
	}
	// A later heartbeat may have moved it on; this one's expiry is what
	// its answer promises.
	a.LeaseExpiresAt = expires
	run, err := o.store.Run(ctx, a.RunID)
	if err != nil {
		return false, core.Attempt{}, err
	}
	return run.State == core.RunCanceling || run.State.Terminal(), a, nil
}

// Outcome is what a runner reports when an attempt ends.
type Outcome struct {
	State    core.AttemptState // a terminal attempt state
	Reason   core.Reason
	ExitCode *int
	// NoOutputs refuses the completion, and writes nothing of it, when the
	// job declares outputs: its runner sent no outputs manifest.
	NoOutputs bool
	// Ended, when set, receives the attempt as completed and its job once
	// the completion has committed; a completion sent again does not call
	// it.
	Ended func(core.Attempt, core.Job)
}

// CompleteAttempt records an attempt's outcome, retries it per the job's
// policy, settles the job and advances the run, all in one transaction.
// It is idempotent per (attempt, lease token): the same completion sent
// again succeeds and changes nothing. Stale leases, and a different outcome
// for an attempt already ended, get core.KindLeaseLost and change nothing.
// seen is as for StartAttempt.
func (o *Orchestrator) CompleteAttempt(ctx context.Context, runnerID string, seen core.Attempt, f store.Fence, out Outcome) error {
	if !out.State.Terminal() {
		return core.E(core.KindInvalid, "complete attempt", "outcome %s is not a final attempt state", out.State)
	}
	if out.Reason == core.ReasonNone {
		out.Reason = core.AttemptOutcome(out.State)
	}
	if to, alone := jobEnd(out.State); alone && seen.ID != f.AttemptID {
		// The common case, a running attempt's success, in one statement
		// that commits on its own (on PostgreSQL with the others sent
		// meanwhile): attempt and job move together or not at all, and
		// nothing is read first. Anything else takes the way below.
		running := core.Attempt{ID: f.AttemptID, LeaseToken: f.LeaseToken, RunnerID: f.RunnerID, State: core.AttemptRunning}
		var m store.Moved
		err := o.store.UpdateOne(ctx, runnerID, func(tx *store.Tx) error {
			var err error
			m, err = tx.EndLeasedWithJob(ctx, running, f, out.State, out.Reason, out.ExitCode, core.JobRunning, to, out.Reason, out.NoOutputs)
			return err
		})
		if err != nil {
			return fmt.Errorf("complete attempt %s: %w", f.AttemptID, err)
		}
		if m.AttemptMoved {
			if out.Ended != nil {
				out.Ended(m.Attempt, m.Job)
			}
			o.advanceAfter(ctx, m.Attempt.RunID, nil)
			o.notify.Broadcast()
			return nil
		}
	}
	var (
		ended    core.Attempt
		job      core.Job
		jobEnded bool
	)
	// A runner that lost our answer sends the same completion again: same
	// lease, same outcome, already recorded. It gets the same answer.
	repeated := func(cur core.Attempt) bool {
		return cur.State.Terminal() && cur.LeaseToken == f.LeaseToken && cur.State == out.State &&
			(f.RunnerID == "" || cur.RunnerID == f.RunnerID)
	}
	complete := func(tx *store.Tx) error {
		// The job's spec never changes, and its state only through its
		// own attempts while one is out: it may be read before the run's
		// lock, which settle takes only when it must.
		var j core.Job
		var err error
		if seen.ID != f.AttemptID {
			if seen, j, err = tx.AttemptJob(ctx, f.AttemptID); err != nil {
				return err
			}
			if repeated(seen) {
				return nil
			}
		} else if j, err = tx.Job(ctx, seen.JobID); err != nil {
			return err
		}
		a, err := tx.MoveLeasedSeen(ctx, seen, f, out.State, out.Reason, out.ExitCode)
		if core.KindOf(err) == core.KindLeaseLost {
			if cur, rerr := tx.Attempt(ctx, f.AttemptID); rerr == nil && repeated(cur) {
				return nil
			}
		}
		if err != nil {
			return err
		}
		// After the fence, so that a stale runner hears that first; the
		// refusal rolls the move back.
		if out.NoOutputs && len(j.Spec.Outputs) > 0 {
			return core.E(core.KindInvalid, "complete", "outputs_manifest is required for a success of a job with outputs (an empty manifest when none matched)")
		}
		ended, job = a, j
		jobEnded, err = o.settle(ctx, tx, a, j, nil)
		return err
	}
	var counts map[core.JobState]int
	err := o.store.Update(ctx, runnerID, func(tx *store.Tx) error {
		err := complete(tx)
		if err == nil && jobEnded {
			// What Advance reads first, in the COMMIT's round trip.
			tx.CountJobStatesAfterCommit(ctx, ended.RunID, func(c map[core.JobState]int) { counts = c })
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("complete attempt %s: %w", f.AttemptID, err)
	}
	if ended.ID != "" && out.Ended != nil {
		out.Ended(ended, job)
	}
	if jobEnded {
		o.advanceAfter(ctx, ended.RunID, counts)
	}
	o.notify.Broadcast()
	return nil
}

// advanceAfter advances a run after a transaction that ended one of its
// jobs committed. That transaction stands whatever happens here; a run
// left behind by a failure is advanced by the next AdvanceStalled or idle
// embedded runner. counts are the run's jobs by state read after that
// commit, or nil to read them now.
func (o *Orchestrator) advanceAfter(ctx context.Context, runID string, counts map[core.JobState]int) {
	ctx = context.WithoutCancel(ctx)
	var err error
	if counts == nil {
		err = o.Advance(ctx, runID)
	} else {
		err = o.advanceCounted(ctx, runID, counts)
	}
	if err != nil {
		o.log.WarnContext(ctx, "advancing run", slog.String("run_id", runID), slog.Any("err", err))
	}
}

// Advance moves a run on after some of its jobs ended: it queues the
// pending jobs whose needs have ended, ends those whose needs failed, and
// ends the run once every job has. Every transaction that ends a job
// (other than StartRun's, which nothing runs beside) calls it once it has
// committed, instead of advancing the run itself under the run's lock:
// so no completion waits for the others' commits, and the last of them
// to commit sees every job's end. It only reads while some job is still
// out and none waits on its needs; a job another transaction is moving
// under the lock still reads pending, and so makes it take the lock.
func (o *Orchestrator) Advance(ctx context.Context, runID string) error {
	counts, err := o.store.JobStateCounts(ctx, runID)
	if err != nil {
		return err
	}
	return o.advanceCounted(ctx, runID, counts)
}

// advanceCounted is Advance with the counts of the run's jobs by state,
// read after the caller's commit.
func (o *Orchestrator) advanceCounted(ctx context.Context, runID string, counts map[core.JobState]int) error {
	if counts[core.JobPending] == 0 && !allEnded(counts) {
		return nil
	}
	err := o.store.Update(ctx, Actor, func(tx *store.Tx) error {
		run, err := tx.LockRun(ctx, runID)
		if err != nil {
			return err
		}
		return o.advanceRun(ctx, tx, run)
	})
	if err != nil {
		return fmt.Errorf("advance run %s: %w", runID, err)
	}
	o.notify.Broadcast()
	return nil
}

// allEnded reports whether counts hold no job that has yet to end.
func allEnded(counts map[core.JobState]int) bool {
	for st, n := range counts {
		if n > 0 && !st.Terminal() {
			return false
		}
	}
	return true
}

// AdvanceStalled advances the running runs that a completion left
// unadvanced (its server stopped between the two transactions).
func (o *Orchestrator) AdvanceStalled(ctx context.Context) error {
	runs, err := o.store.ActiveRuns(ctx)
	if err != nil {
		return err
	}
	for _, run := range runs {
		if run.State != core.RunRunning && run.State != core.RunCanceling {
			continue
		}
		if err := o.Advance(ctx, run.ID); err != nil {
			return err
		}
	}
	return nil
}

// jobEnd is the state a job ends in after an attempt ended in st, and
// whether that outcome alone decides it: a success or a cancellation
// ends the job, where a failure may get another attempt.
func jobEnd(st core.AttemptState) (core.JobState, bool) {
	switch st {
	case core.AttemptSucceeded:
		return core.JobSucceeded, true
	case core.AttemptCanceled:
		return core.JobCanceled, true
	}
	return core.JobFailed, false
}

// settle decides what a terminal attempt means for its job j: another
// attempt, or the job's own end, and reports whether the job ended. It
// never advances the run: the caller calls Advance once the transaction
// has committed (see Advance). Whether to retry depends on the run still
// running, read under the run's lock: a caller that holds it passes the
// run; with run nil settle takes the lock only when it needs it, so that a
// success does not wait for every other completion of its run.
func (o *Orchestrator) settle(ctx context.Context, tx *store.Tx, a core.Attempt, j core.Job, run *core.Run) (jobEnded bool, err error) {
	to, alone := jobEnd(a.State)
	if !alone && run == nil {
		r, err := tx.LockRun(ctx, a.RunID)
		if err != nil {
			return false, err
		}
		run = &r
	}
	// Whether to retry depends on the run still running.
	if !alone && run.State == core.RunRunning {
		prev, err := tx.JobAttempts(ctx, j.ID)
		if err != nil {
			return false, err
		}
		var reasons []core.Reason
		for _, p := range prev {
			// A released attempt never ran: it is not a failure to retry.
			if p.ID != a.ID && p.State.Terminal() && p.State != core.AttemptSucceeded && p.Reason != core.ReasonReleased {
				reasons = append(reasons, p.Reason)
			}
		}
		code := -1
		if a.ExitCode != nil {
			code = *a.ExitCode
		}
		if j.Spec.Retry.ShouldRetry(a.Reason, code, reasons) {
			next, err := tx.EnqueueAttempt(ctx, j)
			if err != nil {
				return false, err
			}
			o.log.InfoContext(ctx, "retrying job", slog.String("run_id", j.RunID), slog.String("job", j.Name),
				slog.String("reason", string(a.Reason)), slog.Int("attempt", next.Number))
			return false, nil
		}
		wait, err := o.awaitsAnalysis(ctx, tx, a, j, reasons)
		if err != nil || wait {
			// The job stays running without an attempt: its analysis
			// decides (SettleAnalyzed), in the transaction that records it.
			return false, err
		}
	}
	if err := tx.MoveJob(ctx, j, to, a.Reason); err != nil {
		return false, err
	}
	return true, nil
}

// Cancel asks a run to stop: pending and queued work is canceled at once,
// running attempts are told through their heartbeat, and the run ends
// canceled when the last of them reports. Canceling an ended run is a
// core.KindConflict error.
func (o *Orchestrator) Cancel(ctx context.Context, actor, runID string) error {
	err := o.store.Update(ctx, actor, func(tx *store.Tx) error {
		run, err := tx.LockRun(ctx, runID)
		if err != nil {
			return err
		}
		switch run.State {
		case core.RunQueued, core.RunPlanning:
			return tx.MoveRun(ctx, runID, run.State, core.RunCanceled, core.ReasonCanceled)
		case core.RunCanceling:
			return nil
		case core.RunRunning:
		default:
			return core.E(core.KindConflict, "cancel run", "run %s already ended %s", runID, run.State)
		}
		if err := tx.MoveRun(ctx, runID, core.RunRunning, core.RunCanceling, core.ReasonCanceled); err != nil {
			return err
		}
		attempts, err := tx.Attempts(ctx, runID)
		if err != nil {
			return err
		}
		for _, a := range attempts {
			if a.State != core.AttemptQueued {
				continue
			}
			if err := tx.MoveAttempt(ctx, a, core.AttemptCanceled, core.ReasonCanceled); err != nil {
				return err
			}
			j, err := tx.Job(ctx, a.JobID)
			if err != nil {
				return err
			}
			if !j.State.Terminal() {
				if err := tx.MoveJob(ctx, j, core.JobCanceled, core.ReasonCanceled); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cancel run %s: %w", runID, err)
	}
	// Pending jobs end canceled, and the run too if nothing runs.
	o.advanceAfter(ctx, runID, nil)
	o.notify.Broadcast()
	return nil
}

// ReapExpired turns attempts whose lease ran out into lost ones and retries
// them per policy. It returns how many it reaped.
func (o *Orchestrator) ReapExpired(ctx context.Context, limit int) (int, error) {
	expired, err := o.store.ExpiredLeases(ctx, limit)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range expired {
		var jobEnded bool
		err := o.store.Update(ctx, Actor, func(tx *store.Tx) error {
			run, err := tx.LockRun(ctx, a.RunID)
			if err != nil {
				return err
			}
			j, err := tx.Job(ctx, a.JobID)
			if err != nil {
				return err
			}
			if err := tx.MoveAttempt(ctx, a, core.AttemptLost, core.ReasonRunnerLost); err != nil {
				return err
			}
			a.State, a.Reason = core.AttemptLost, core.ReasonRunnerLost
			jobEnded, err = o.settle(ctx, tx, a, j, &run)
			return err
		})
		if core.KindOf(err) == core.KindConflict {
			continue // the runner completed it meanwhile
		}
		if err != nil {
			return n, fmt.Errorf("reap attempt %s: %w", a.ID, err)
		}
		if jobEnded {
			o.advanceAfter(ctx, a.RunID, nil)
		}
		o.log.WarnContext(ctx, "lease expired", slog.String("attempt_id", a.ID), slog.String("run_id", a.RunID))
		n++
	}
	if n > 0 {
		o.notify.Broadcast()
	}
	return n, nil
}
