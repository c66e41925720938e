package store

import (
	"context"
	"fmt"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// Tx is one write transaction. Each Move* checks the move against the state
// machine, applies it only if the row is still in the expected state, and
// appends the event; otherwise it returns core.KindConflict.
type Tx struct {
	q     Queries
	actor string
	now   time.Time
}

// Now is the transaction's timestamp, shared by every row it writes.
func (tx *Tx) Now() time.Time { return tx.now }

// LockRun makes transactions that settle one run's jobs take turns; call
// it before reading the jobs a decision depends on. It returns the run as
// it is once locked.
func (tx *Tx) LockRun(ctx context.Context, id string) (core.Run, error) { return tx.q.LockRun(ctx, id) }

// JobStateCounts counts a run's jobs by state inside the transaction.
func (tx *Tx) JobStateCounts(ctx context.Context, runID string) (map[core.JobState]int, error) {
	return tx.q.CountJobStates(ctx, runID)
}

// Run reads a run inside the transaction.
func (tx *Tx) Run(ctx context.Context, id string) (core.Run, error) { return tx.q.GetRun(ctx, id) }

// Job reads a job inside the transaction.
func (tx *Tx) Job(ctx context.Context, id string) (core.Job, error) { return tx.q.GetJob(ctx, id) }

// JobStates reads a run's jobs inside the transaction with only their ID,
// Name, State and Reason: cheaper than Jobs, which decodes every spec.
func (tx *Tx) JobStates(ctx context.Context, runID string) ([]core.Job, error) {
	return tx.q.ListJobStates(ctx, runID)
}

// Jobs reads a run's jobs inside the transaction.
func (tx *Tx) Jobs(ctx context.Context, runID string) ([]core.Job, error) {
	return tx.q.ListJobs(ctx, runID)
}

// AttemptJob reads an attempt and its job inside the transaction.
func (tx *Tx) AttemptJob(ctx context.Context, id string) (core.Attempt, core.Job, error) {
	return tx.q.GetAttemptJob(ctx, id)
}

// Attempt reads an attempt inside the transaction.
func (tx *Tx) Attempt(ctx context.Context, id string) (core.Attempt, error) {
	return tx.q.GetAttempt(ctx, id)
}

// Attempts reads a run's attempts inside the transaction.
func (tx *Tx) Attempts(ctx context.Context, runID string) ([]core.Attempt, error) {
	return tx.q.ListAttempts(ctx, runID)
}

// JobAttempts reads a job's attempts, by number, inside the transaction.
func (tx *Tx) JobAttempts(ctx context.Context, jobID string) ([]core.Attempt, error) {
	return tx.q.ListJobAttempts(ctx, jobID)
}

// MoveRun moves a run from → to.
func (tx *Tx) MoveRun(ctx context.Context, id string, from, to core.RunState, reason core.Reason) error {
	if err := core.CheckRun(from, to); err != nil {
		return fmt.Errorf("run %s: %w", id, err)
	}
	m := RunMove{ID: id, From: from, To: to, Reason: reason}
	if to == core.RunRunning {
		m.StartedAt = tx.now
	}
	if to.Terminal() {
		m.FinishedAt = tx.now
	}
	ok, err := tx.q.SetRunState(ctx, m)
	if err != nil {
		return err
	}
	if !ok {
		cur, err := tx.q.GetRun(ctx, id)
		if err != nil {
			return err
		}
		return core.E(core.KindConflict, "move run", "run %s is %s, not %s", id, cur.State, from)
	}
	return tx.record(ctx, core.EntityRun, id, id, string(from), string(to), reason)
}

// MoveJob moves a job from → to.
func (tx *Tx) MoveJob(ctx context.Context, j core.Job, to core.JobState, reason core.Reason) error {
	if err := core.CheckJob(j.State, to); err != nil {
		return fmt.Errorf("job %s (%s): %w", j.Name, j.ID, err)
	}
	ok, err := tx.q.SetJobState(ctx, tx.jobMove(j.ID, j.State, to, reason))
	if err != nil {
		return err
	}
	if !ok {
		cur, err := tx.q.GetJob(ctx, j.ID)
		if err != nil {
			return err
		}
		return core.E(core.KindConflict, "move job", "job %s is %s, not %s", j.Name, cur.State, j.State)
	}
	return tx.record(ctx, core.EntityJob, j.ID, j.RunID, string(j.State), string(to), reason)
}

// jobMove is the update that moves a job from → to now.
func (tx *Tx) jobMove(id string, from, to core.JobState, reason core.Reason) JobMove {
	m := JobMove{ID: id, From: from, To: to, Reason: reason}
	if to == core.JobRunning {
		m.StartedAt = tx.now
	}
	if to.Terminal() {
		m.FinishedAt = tx.now
	}
	return m
}

// MoveJobIf moves a job from → to if it is in from, without reading it
// first, and reports whether it was.
func (tx *Tx) MoveJobIf(ctx context.Context, jobID, runID string, from, to core.JobState, reason core.Reason) (bool, error) {
	if err := core.CheckJob(from, to); err != nil {
		return false, fmt.Errorf("job %s: %w", jobID, err)
	}
	ok, err := tx.q.SetJobState(ctx, tx.jobMove(jobID, from, to, reason))
	if err != nil || !ok {
		return false, err
	}
	return true, tx.record(ctx, core.EntityJob, jobID, runID, string(from), string(to), reason)
}

// EnqueueAttempt creates the job's next attempt in state queued.
func (tx *Tx) EnqueueAttempt(ctx context.Context, j core.Job) (core.Attempt, error) {
	return tx.EnqueueAttemptBecause(ctx, j, core.ReasonNone)
}

// RunEvents returns a run's events in the order they were written.
func (tx *Tx) RunEvents(ctx context.Context, runID string) ([]core.Event, error) {
	return tx.q.ListRunEvents(ctx, runID)
}

// EnqueueAttemptBecause is EnqueueAttempt with the reason its queued
// event records (core.ReasonFlakyRetry).
func (tx *Tx) EnqueueAttemptBecause(ctx context.Context, j core.Job, reason core.Reason) (core.Attempt, error) {
	prev, err := tx.q.ListJobAttempts(ctx, j.ID)
	if err != nil {
		return core.Attempt{}, err
	}
	for _, p := range prev {
		if !p.State.Terminal() {
			return core.Attempt{}, core.E(core.KindConflict, "enqueue attempt", "job %s already has attempt %d in state %s", j.Name, p.Number, p.State)
		}
	}
	a := core.Attempt{
		ID: NewID(), JobID: j.ID, RunID: j.RunID, Number: len(prev) + 1,
		State: core.AttemptQueued, Labels: j.Spec.RunsOn, QueuedAt: tx.now,
	}
	if err := tx.q.InsertAttempt(ctx, a); err != nil {
		return core.Attempt{}, err
	}
	return a, tx.record(ctx, core.EntityAttempt, a.ID, a.RunID, "", string(a.State), reason)
}

// MoveAttempt moves an attempt on behalf of the orchestrator (cancel a
// queued attempt, mark an expired lease lost). It is not fenced.
func (tx *Tx) MoveAttempt(ctx context.Context, a core.Attempt, to core.AttemptState, reason core.Reason) error {
	if err := core.CheckAttempt(a.State, to); err != nil {
		return fmt.Errorf("attempt %s: %w", a.ID, err)
	}
	m := AttemptMove{ID: a.ID, From: a.State, To: to, Reason: reason}
	if to.Terminal() {
		m.FinishedAt = tx.now
	}
	ok, err := tx.q.SetAttemptState(ctx, m)
	if err != nil {
		return err
	}
	if !ok {
		cur, err := tx.q.GetAttempt(ctx, a.ID)
		if err != nil {
			return err
		}
		return core.E(core.KindConflict, "move attempt", "attempt %s is %s, not %s", a.ID, cur.State, a.State)
	}
	return tx.record(ctx, core.EntityAttempt, a.ID, a.RunID, string(a.State), string(to), reason)
}

// Fence identifies a lease holder's write. With RunnerID set, the write
// also requires the attempt to be leased to that runner.
type Fence struct {
	AttemptID  string
	LeaseToken string
	RunnerID   string
}

// MoveLeased moves an attempt on behalf of its lease holder. It returns
// core.KindLeaseLost when the token is not the attempt's current lease or the
// attempt is no longer leased or running.
func (tx *Tx) MoveLeased(ctx context.Context, f Fence, to core.AttemptState, reason core.Reason, exitCode *int) (core.Attempt, error) {
	a, err := tx.q.GetAttempt(ctx, f.AttemptID)
	if err != nil {
		return core.Attempt{}, err
	}
	return tx.MoveLeasedFrom(ctx, a, f, to, reason, exitCode)
}

// MoveLeasedSeen is MoveLeased for a caller that read the attempt before
// this transaction: it tries the move from the state seen, and reads the
// attempt only when that fails (seen was stale, or is the zero Attempt).
func (tx *Tx) MoveLeasedSeen(ctx context.Context, seen core.Attempt, f Fence, to core.AttemptState, reason core.Reason, exitCode *int) (core.Attempt, error) {
	if seen.ID == f.AttemptID && seen.LeaseToken == f.LeaseToken &&
		(seen.State == core.AttemptLeased || seen.State == core.AttemptRunning) && core.CheckAttempt(seen.State, to) == nil {
		a, err := tx.MoveLeasedFrom(ctx, seen, f, to, reason, exitCode)
		if core.KindOf(err) != core.KindLeaseLost {
			return a, err
		}
	}
	return tx.MoveLeased(ctx, f, to, reason, exitCode)
}

// CountJobStatesAfterCommit has the transaction count a run's jobs by
// state once it has committed (Queries.CountJobStatesAfterCommit): got
// receives the counts, or is not called when they could not be read.
func (tx *Tx) CountJobStatesAfterCommit(ctx context.Context, runID string, got func(map[core.JobState]int)) {
	tx.q.CountJobStatesAfterCommit(ctx, runID, got)
}

// MoveLeasedWithJob moves an attempt for its lease holder from the state
// seen (as MoveLeasedFrom) and, with it, its job from jobFrom to jobTo if
// the job is in jobFrom, in one statement where the engine can, which also
// writes the events of both moves (so it may be a Store.UpdateOne's one
// statement). When seen does not fit the fence, or the fenced update does
// not apply, it writes nothing and reports AttemptMoved false: the caller
// then takes the way that reads the attempt (MoveLeasedSeen) and learns
// why.
func (tx *Tx) MoveLeasedWithJob(ctx context.Context, seen core.Attempt, f Fence, to core.AttemptState, reason core.Reason, exitCode *int,
	jobFrom, jobTo core.JobState, jobReason core.Reason) (Moved, error) {
	return tx.moveLeasedWithJob(ctx, seen, f, to, reason, exitCode, tx.jobMove("", jobFrom, jobTo, jobReason))
}

// EndLeasedWithJob is MoveLeasedWithJob for a move that must take the
// job along: the attempt moves only when its job is in jobFrom too and,
// with noOutputs, declares no outputs (a success sent without an outputs
// manifest). Otherwise nothing moves: AttemptMoved is false.
func (tx *Tx) EndLeasedWithJob(ctx context.Context, seen core.Attempt, f Fence, to core.AttemptState, reason core.Reason, exitCode *int,
	jobFrom, jobTo core.JobState, jobReason core.Reason, noOutputs bool) (Moved, error) {
	jm := tx.jobMove("", jobFrom, jobTo, jobReason)
	jm.Required, jm.NoOutputs = true, noOutputs
	return tx.moveLeasedWithJob(ctx, seen, f, to, reason, exitCode, jm)
}

func (tx *Tx) moveLeasedWithJob(ctx context.Context, seen core.Attempt, f Fence, to core.AttemptState, reason core.Reason, exitCode *int, jm JobMove) (Moved, error) {
	if seen.ID != f.AttemptID || seen.LeaseToken != f.LeaseToken || (f.RunnerID != "" && seen.RunnerID != f.RunnerID) ||
		(seen.State != core.AttemptLeased && seen.State != core.AttemptRunning) || core.CheckAttempt(seen.State, to) != nil {
		return Moved{}, nil
	}
	if err := core.CheckJob(jm.From, jm.To); err != nil {
		return Moved{}, fmt.Errorf("job of attempt %s: %w", seen.ID, err)
	}
	m, err := tx.q.MoveFencedWithJob(ctx, tx.fencedMove(seen, f, to, reason, exitCode), jm, Stamp{At: tx.now, Actor: tx.actor})
	if err != nil || !m.AttemptMoved {
		return Moved{}, err
	}
	return m, nil
}

// fencedMove is the lease holder's update that moves attempt a from its
// state to to now.
func (tx *Tx) fencedMove(a core.Attempt, f Fence, to core.AttemptState, reason core.Reason, exitCode *int) AttemptMove {
	m := AttemptMove{ID: a.ID, LeaseToken: f.LeaseToken, RunnerID: f.RunnerID, From: a.State, To: to, Reason: reason, ExitCode: exitCode}
	if to == core.AttemptRunning {
		m.StartedAt = tx.now
	}
	if to.Terminal() {
		m.FinishedAt = tx.now
	}
	return m
}

// MoveLeasedFrom is MoveLeased for a caller that read the attempt in this
// transaction already; the fenced update still checks it has not moved.
func (tx *Tx) MoveLeasedFrom(ctx context.Context, a core.Attempt, f Fence, to core.AttemptState, reason core.Reason, exitCode *int) (core.Attempt, error) {
	if a.ID != f.AttemptID {
		return core.Attempt{}, core.E(core.KindInternal, "move attempt", "attempt %s read for a fence of %s", a.ID, f.AttemptID)
	}
	if f.RunnerID != "" && a.RunnerID != f.RunnerID {
		return core.Attempt{}, core.E(core.KindLeaseLost, "move attempt", "attempt %s is not leased to runner %s", a.ID, f.RunnerID)
	}
	if a.LeaseToken != f.LeaseToken || (a.State != core.AttemptLeased && a.State != core.AttemptRunning) {
		return core.Attempt{}, core.E(core.KindLeaseLost, "move attempt", "attempt %s: lease is no longer held (state %s)", a.ID, a.State)
	}
	if err := core.CheckAttempt(a.State, to); err != nil {
		return core.Attempt{}, fmt.Errorf("attempt %s: %w", a.ID, err)
	}
	moved, ok, err := tx.q.SetFencedAttemptState(ctx, tx.fencedMove(a, f, to, reason, exitCode))
	if err != nil {
		return core.Attempt{}, err
	}
	if !ok {
		return core.Attempt{}, core.E(core.KindLeaseLost, "move attempt", "attempt %s: lease is no longer held", a.ID)
	}
	return moved, tx.record(ctx, core.EntityAttempt, moved.ID, moved.RunID, string(a.State), string(to), reason)
}

func (tx *Tx) record(ctx context.Context, entity, id, runID, from, to string, reason core.Reason) error {
	return tx.q.InsertEvent(ctx, event(tx.now, tx.actor, entity, id, runID, from, to, reason))
}
