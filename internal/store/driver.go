// Package store persists runs, jobs, attempts and their events.
//
// The transition rules live once, in Store and Tx; each database engine only
// provides row-level Queries through a Driver (store/sqlite, store/postgres).
// The conformance suite in store/storetest runs every behaviour on both.
package store

import (
	"context"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// Driver is one database engine.
type Driver interface {
	// Write runs fn in one write transaction and commits when fn returns nil.
	// On SQLite this is BEGIN IMMEDIATE on the single writer connection.
	Write(ctx context.Context, fn func(Queries) error) error
	// WriteOne is Write for an fn that runs a single statement, which
	// writes its own events (ClaimAttempt, MoveFencedWithJob). The engine
	// may commit it with the statement: PostgreSQL sends it without BEGIN
	// and COMMIT, in one round trip. So fn must not fail once its
	// statement wrote, and a second statement is refused.
	WriteOne(ctx context.Context, fn func(Queries) error) error
	// Read returns queries that run outside any write transaction.
	Read() Queries
	// Close releases the engine's connections.
	Close() error
}

// Queries is the row-level access an engine provides, in domain types.
// Lookups of a missing row return an error of kind core.KindNotFound.
// Set* methods report whether a row matched the expected current state.
type Queries interface {
	InsertRun(ctx context.Context, r core.Run) error
	GetRun(ctx context.Context, id string) (core.Run, error)
	ListActiveRuns(ctx context.Context) ([]core.Run, error)
	// ListRuns reads a page of run history (RunQuery), newest first.
	ListRuns(ctx context.Context, q RunQuery) ([]core.Run, error)
	SetRunState(ctx context.Context, m RunMove) (bool, error)
	// LockRun holds the run's row until the transaction ends, so that
	// transactions settling its jobs take turns (only a read where writes
	// are serialized anyway, as on SQLite), and returns the run.
	LockRun(ctx context.Context, id string) (core.Run, error)
	// SetRunMessage records why a run errored; GetRunMessage reads it back
	// ("" when none was recorded).
	SetRunMessage(ctx context.Context, id, message string) error
	GetRunMessage(ctx context.Context, id string) (string, error)

	InsertJob(ctx context.Context, j core.Job, position int) error
	GetJob(ctx context.Context, id string) (core.Job, error)
	ListJobs(ctx context.Context, runID string) ([]core.Job, error)
	// ListJobStates returns a run's jobs with only ID, Name, State and Reason.
	ListJobStates(ctx context.Context, runID string) ([]core.Job, error)
	SetJobState(ctx context.Context, m JobMove) (bool, error)
	// CountJobStates counts a run's jobs by state.
	CountJobStates(ctx context.Context, runID string) (map[core.JobState]int, error)
	// CountJobStatesAfterCommit counts a run's jobs by state once the
	// transaction has committed, so that it sees every commit before its
	// own (with the COMMIT, in one round trip, where the engine can), and
	// hands the counts to got. got is not called when the count fails: the
	// commit stands. Outside a transaction it counts at once.
	CountJobStatesAfterCommit(ctx context.Context, runID string, got func(map[core.JobState]int))
	// GetJobRun reads a job and its run.
	GetJobRun(ctx context.Context, jobID string) (core.Job, core.Run, error)

	// InsertAttempt records a new attempt with what claims match its
	// labels against (MatchLabels).
	InsertAttempt(ctx context.Context, a core.Attempt) error
	GetAttempt(ctx context.Context, id string) (core.Attempt, error)
	ListAttempts(ctx context.Context, runID string) ([]core.Attempt, error)
	ListJobAttempts(ctx context.Context, jobID string) ([]core.Attempt, error)
	SetAttemptState(ctx context.Context, m AttemptMove) (bool, error)
	// SetFencedAttemptState moves an attempt for its lease holder and
	// returns the row as moved, or false when the fence did not match.
	SetFencedAttemptState(ctx context.Context, m AttemptMove) (core.Attempt, bool, error)
	// MoveFencedWithJob is SetFencedAttemptState and, when that applies,
	// SetJobState of the attempt's job (jm.ID is not used), with the
	// events of both moves (MoveEvents) stamped by by, in one statement
	// where the engine can.
	MoveFencedWithJob(ctx context.Context, am AttemptMove, jm JobMove, by Stamp) (Moved, error)
	// GetAttemptJob reads an attempt and its job.
	GetAttemptJob(ctx context.Context, attemptID string) (core.Attempt, core.Job, error)
	// ClaimRunAttempt leases the oldest queued attempt of a run, or returns
	// a core.KindNotFound error when none is queued.
	ClaimRunAttempt(ctx context.Context, c ClaimRow) (core.Attempt, error)
	// ClaimAttempt leases the oldest queued attempt of any run whose
	// labels are all among c.Labels, records the move's event (ClaimEvent)
	// and returns it with its job and run, or returns core.KindNotFound.
	ClaimAttempt(ctx context.Context, c ClaimRow) (Claimed, error)
	ExtendLease(ctx context.Context, id, token string, expires time.Time) (bool, error)
	ListExpiredLeases(ctx context.Context, now time.Time, limit int) ([]core.Attempt, error)

	InsertEvent(ctx context.Context, e core.Event) error
	ListRunEvents(ctx context.Context, runID string) ([]core.Event, error)

	// GetLogState reads an attempt's log length, digest and lease.
	GetLogState(ctx context.Context, attemptID string) (LogState, error)
	// AdvanceLog moves the log length from → to, fenced by f, and reports
	// whether the attempt was still leased by f at length from.
	AdvanceLog(ctx context.Context, f Fence, from, to int64) (bool, error)
	InsertLogChunk(ctx context.Context, attemptID string, offset int64, data []byte) error
	// ListLogChunks returns up to limit chunks, by offset, starting with the
	// one that holds offset from.
	ListLogChunks(ctx context.Context, attemptID string, from int64, limit int) ([]LogChunk, error)
	// InsertLogTime records when the chunk at offset reached the server.
	InsertLogTime(ctx context.Context, attemptID string, offset int64, at time.Time) error
	// ListLogTimes returns, by offset, the arrival of the chunk holding
	// offset from and of the chunks after it that start before to.
	ListLogTimes(ctx context.Context, attemptID string, from, to int64) ([]LogTime, error)
	// SetLogDigest records the sealed log's digest once; it reports whether
	// the attempt had none yet.
	SetLogDigest(ctx context.Context, attemptID, digest string) (bool, error)
	DeleteLogChunks(ctx context.Context, attemptID string) error
	// ListUnsealedLogs lists ended attempts whose log is not sealed yet.
	ListUnsealedLogs(ctx context.Context, limit int) ([]string, error)

	InsertRunner(ctx context.Context, r Runner) error
	GetRunner(ctx context.Context, id string) (Runner, error)
	// ListRunners returns every registered runner, oldest first.
	ListRunners(ctx context.Context) ([]Runner, error)
	// DeleteRunner removes a runner and reports whether it was there.
	DeleteRunner(ctx context.Context, id string) (bool, error)
	TouchRunner(ctx context.Context, id string, at time.Time) error
	// SeeRunner moves a runner's last contact to at unless it is later
	// already, and reports whether the runner is registered.
	SeeRunner(ctx context.Context, id string, at time.Time) (bool, error)
	// ListHeldAttempts lists up to limit leased or running attempts,
	// oldest lease first.
	ListHeldAttempts(ctx context.Context, limit int) ([]HeldAttempt, error)
	// QueueDepth counts queued attempts by their encoded labels.
	QueueDepth(ctx context.Context) (map[string]int64, error)

	// InsertProject returns a core.KindConflict error when the project's
	// name or repository URL is taken.
	InsertProject(ctx context.Context, p core.Project) error
	GetProject(ctx context.Context, name string) (core.Project, error)
	GetProjectByRepo(ctx context.Context, repoURL string) (core.Project, error)
	// ListProjects returns every project, by name in byte order.
	ListProjects(ctx context.Context) ([]core.Project, error)
	// UpdateProject replaces all of the project named p.Name but its ID
	// and CreatedAt, and returns it as stored: core.KindNotFound when there
	// is none, core.KindConflict when its repository URL is taken.
	UpdateProject(ctx context.Context, p core.Project) (core.Project, error)
	// DeleteProject removes a project and reports whether it was there.
	DeleteProject(ctx context.Context, name string) (bool, error)

	// InsertAPIToken returns a core.KindConflict error when the hash is taken.
	InsertAPIToken(ctx context.Context, t APIToken) error
	GetAPITokenByHash(ctx context.Context, hash string) (APIToken, error)
	CountAPITokens(ctx context.Context) (int, error)
	// LockAPITokens holds off other writers of API tokens until the
	// transaction ends (only a no-op where writes are serialized anyway,
	// as on SQLite), so that it may insert depending on what it counted.
	LockAPITokens(ctx context.Context) error
	// The forges' inbox and outbox (forges.go). InsertDelivery reports
	// false when the project has the delivery id already; ClaimDelivery
	// returns core.KindNotFound when none is due; the Finish, Renew and
	// Retry methods match the claim by its Claim token and report whether
	// it did.
	InsertDelivery(ctx context.Context, d Delivery) (bool, error)
	ClaimDelivery(ctx context.Context, now, leaseUntil time.Time, claim string) (Delivery, error)
	FinishDelivery(ctx context.Context, d Delivery) (bool, error)
	RenewDelivery(ctx context.Context, d Delivery) (bool, error)
	RetryDelivery(ctx context.Context, d Delivery) (bool, error)
	ListDeliveries(ctx context.Context, project string, limit int) ([]Delivery, error)
	CountPendingDeliveries(ctx context.Context) (int, error)
	PruneDeliveries(ctx context.Context, before time.Time) (int64, error)
	InsertRunForge(ctx context.Context, runID string, f RunForge) error
	GetRunForge(ctx context.Context, runID string) (RunForge, error)
	ClaimStatuses(ctx context.Context, now, leaseUntil time.Time, claim string, limit int) ([]StatusRow, error)
	FinishStatus(ctx context.Context, r StatusRow) (bool, error)
	RetryStatus(ctx context.Context, r StatusRow) (bool, error)
	ListRunStatuses(ctx context.Context, runID string) ([]StatusRow, error)
	StatusBacklog(ctx context.Context) (int, time.Time, error)
	PruneStatuses(ctx context.Context, before time.Time) (int64, error)

	// The web UI's sign-in (webauth.go). DeleteProjectRole reports
	// whether the binding was there; GetWebSession and TakeWebLogin return
	// core.KindNotFound; TakeWebLogin deletes what it returns.
	UpsertProjectRole(ctx context.Context, b RoleBinding) error
	DeleteProjectRole(ctx context.Context, project, principal string) (bool, error)
	ListProjectRoles(ctx context.Context, project string) ([]RoleBinding, error)
	InsertWebSession(ctx context.Context, ws WebSession) error
	GetWebSession(ctx context.Context, idHash string) (WebSession, error)
	TouchWebSession(ctx context.Context, idHash string, at time.Time) error
	DeleteWebSession(ctx context.Context, idHash string) error
	PruneWebSessions(ctx context.Context, now, idleBefore time.Time) (int64, error)
	InsertWebLogin(ctx context.Context, l WebLogin) error
	TakeWebLogin(ctx context.Context, stateHash string) (WebLogin, error)
	PruneWebLogins(ctx context.Context, now time.Time) (int64, error)

	// The Failure Analyzer's rows (analysis.go).
	AnalysisQueries
	// Job cache bookkeeping (caches.go).
	CacheQueries
}

// LogState is the log bookkeeping of one attempt.
type LogState struct {
	Length     int64
	Digest     string // set once the log is sealed
	LeaseToken string
	State      core.AttemptState
}

// LogChunk is one stored piece of a log, at its byte offset.
type LogChunk struct {
	Offset int64
	Data   []byte
}

// LogTime is when the log's chunk that starts at Offset reached the server.
type LogTime struct {
	Offset int64
	At     time.Time
}

// RunMove is one conditional run update: it applies only while the run is in From.
type RunMove struct {
	ID         string
	From, To   core.RunState
	Reason     core.Reason
	StartedAt  time.Time // set once, when non-zero
	FinishedAt time.Time // set once, when non-zero
}

// JobMove is one conditional job update.
type JobMove struct {
	ID         string
	From, To   core.JobState
	Reason     core.Reason
	StartedAt  time.Time
	FinishedAt time.Time
	// For MoveFencedWithJob only: with Required the attempt moves only
	// along with the job; with NoOutputs too, only when the job declares
	// no outputs.
	Required  bool
	NoOutputs bool
}

// AttemptMove is one conditional attempt update. LeaseToken is required for
// SetFencedAttemptState and ignored by SetAttemptState, as is RunnerID,
// which SetFencedAttemptState also requires when set.
type AttemptMove struct {
	ID         string
	LeaseToken string
	RunnerID   string
	From, To   core.AttemptState
	Reason     core.Reason
	ExitCode   *int
	StartedAt  time.Time
	FinishedAt time.Time
}

// Moved is what MoveFencedWithJob did: whether the attempt and its job
// moved, and, when the attempt did, both rows as they are now.
type Moved struct {
	Attempt      core.Attempt
	Job          core.Job
	AttemptMoved bool
	JobMoved     bool
}

// Apply returns a as the update m leaves it (started_at and finished_at
// are set only once, an exit code only when given).
func (m AttemptMove) Apply(a core.Attempt) core.Attempt {
	a.State, a.Reason = m.To, m.Reason
	if m.ExitCode != nil {
		c := *m.ExitCode
		a.ExitCode = &c
	}
	if a.StartedAt.IsZero() {
		a.StartedAt = m.StartedAt
	}
	if a.FinishedAt.IsZero() {
		a.FinishedAt = m.FinishedAt
	}
	return a
}

// Apply returns j as the update m leaves it.
func (m JobMove) Apply(j core.Job) core.Job {
	j.State, j.Reason = m.To, m.Reason
	if j.StartedAt.IsZero() {
		j.StartedAt = m.StartedAt
	}
	if j.FinishedAt.IsZero() {
		j.FinishedAt = m.FinishedAt
	}
	return j
}

// Claimed is a leased attempt with its job and run.
type Claimed struct {
	Attempt core.Attempt
	Job     core.Job
	Run     core.Run
}

// ClaimRow is what a claim writes onto the leased attempt.
type ClaimRow struct {
	RunID      string
	Labels     []string // the runner's labels (ClaimAttempt)
	RunnerID   string
	LeaseToken string
	Now        time.Time
	ExpiresAt  time.Time
	Actor      string // who the claim's event names (ClaimAttempt)
}

// Stamp is when and by whom a statement that writes its own events acts.
type Stamp struct {
	At    time.Time
	Actor string
}

// ClaimEvent is the event ClaimAttempt records for the attempt it leased.
func ClaimEvent(c ClaimRow, a core.Attempt) core.Event {
	return event(c.Now, c.Actor, core.EntityAttempt, a.ID, a.RunID, string(core.AttemptQueued), string(core.AttemptLeased), "")
}

// MoveEvents are the events MoveFencedWithJob records for what it moved,
// the attempt's first.
func MoveEvents(by Stamp, am AttemptMove, jm JobMove, m Moved) []core.Event {
	if !m.AttemptMoved {
		return nil
	}
	evs := []core.Event{event(by.At, by.Actor, core.EntityAttempt, m.Attempt.ID, m.Attempt.RunID, string(am.From), string(am.To), am.Reason)}
	if m.JobMoved {
		evs = append(evs, event(by.At, by.Actor, core.EntityJob, m.Job.ID, m.Attempt.RunID, string(jm.From), string(jm.To), jm.Reason))
	}
	return evs
}

// Millis converts a time to the stored form: Unix milliseconds, UTC.
// The zero time is stored as 0 only where a column is NOT NULL.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// FromMillis converts a stored timestamp back; 0 gives the zero time.
func FromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
