package core

import "time"

// Run is one execution of a pipeline at one commit.
type Run struct {
	ID          string
	Repo        string // repository path or URL
	Ref         string // branch or ref the run was made for
	Commit      string // commit id, or empty for a dirty local tree
	Event       string // push, pull_request, manual
	Trusted     bool   // protected-branch run: may receive secrets and write shared results
	Project     string // the project's name; empty for a run of `deltaci run`, which has no projects
	TrustReason string // why the run is or is not trusted, in words
	RerunOf     string // the run this one reruns, empty for a run that is no rerun
	// TraceParent is the W3C traceparent of the span the run was made in,
	// empty when tracing was off: the parent of the run's later spans.
	TraceParent string
	State       RunState
	Reason      Reason
	CreatedAt   time.Time
	StartedAt   time.Time
	FinishedAt  time.Time
}

// Job is one job of a run.
type Job struct {
	ID      string
	RunID   string
	Name    string
	Spec    JobSpec
	State   JobState
	Reason  Reason
	Explain string // why the planner decided what it did
	// Decision is the planner's verdict: JobReused or JobSkipped for a job
	// that will not run, empty for one that runs; JobFailed for a rerun's
	// job that carries its original's failure.
	Decision   JobState
	Digest     string // input digest (the planner's), empty when none was computed
	ReusedFrom string // the attempt whose result a reused job stands for
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// Attempt is one execution of a job; a retry is a new attempt with Number+1.
type Attempt struct {
	ID             string
	JobID          string
	RunID          string
	Number         int
	State          AttemptState
	Reason         Reason
	ExitCode       *int
	Labels         []string // labels a runner must have to lease it
	RunnerID       string
	LeaseToken     string
	LeaseExpiresAt time.Time
	QueuedAt       time.Time
	LeasedAt       time.Time
	StartedAt      time.Time
	FinishedAt     time.Time
	// LogLength is how many bytes of its log the server held when the
	// attempt was read; LogDigest is set once the log is sealed.
	LogLength int64
	LogDigest string
}

// Duration is how long the attempt ran, or zero when it has not finished.
func (a Attempt) Duration() time.Duration {
	if a.StartedAt.IsZero() || a.FinishedAt.IsZero() {
		return 0
	}
	return a.FinishedAt.Sub(a.StartedAt)
}

// Entity names used in events.
const (
	EntityRun     = "run"
	EntityJob     = "job"
	EntityAttempt = "attempt"
)

// Event is one append-only row of the events table: who moved what from
// which state to which, why, and when.
type Event struct {
	Seq      int64
	At       time.Time
	Actor    string
	Entity   string // run, job or attempt
	EntityID string
	RunID    string
	From     string // empty for creation
	To       string
	Reason   Reason
}
