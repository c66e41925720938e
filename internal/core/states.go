package core

import "fmt"

// RunState is the state of a run. See transitions.go for the legal moves.
type RunState string

// Run states.
const (
	RunQueued    RunState = "queued"
	RunPlanning  RunState = "planning"
	RunRunning   RunState = "running"
	RunCanceling RunState = "canceling"
	RunSucceeded RunState = "succeeded"
	RunFailed    RunState = "failed"
	RunCanceled  RunState = "canceled"
	RunErrored   RunState = "errored"
)

// JobState is the state of one job of a run.
type JobState string

// Job states.
const (
	JobPending        JobState = "pending"
	JobQueued         JobState = "queued"
	JobRunning        JobState = "running"
	JobSucceeded      JobState = "succeeded"
	JobFailed         JobState = "failed"
	JobCanceled       JobState = "canceled"
	JobReused         JobState = "reused"
	JobSkipped        JobState = "skipped"
	JobUpstreamFailed JobState = "upstream_failed"
)

// AttemptState is the state of one execution attempt of a job.
type AttemptState string

// Attempt states.
const (
	AttemptQueued    AttemptState = "queued"
	AttemptLeased    AttemptState = "leased"
	AttemptRunning   AttemptState = "running"
	AttemptSucceeded AttemptState = "succeeded"
	AttemptFailed    AttemptState = "failed"
	AttemptTimedOut  AttemptState = "timed_out"
	AttemptCanceled  AttemptState = "canceled"
	AttemptLost      AttemptState = "lost"
	AttemptErrored   AttemptState = "errored"
)

// Reason is a typed failure (or outcome) reason; never free text.
type Reason string

// Failure reasons. ReasonNone is the zero value for successes.
const (
	ReasonNone           Reason = ""
	ReasonExitCode       Reason = "exit_code"
	ReasonTimeout        Reason = "timeout"
	ReasonCanceled       Reason = "canceled"
	ReasonRunnerLost     Reason = "runner_lost"
	ReasonInfraError     Reason = "infra_error"
	ReasonResourceLimit  Reason = "resource_limit"
	ReasonUpstreamFailed Reason = "upstream_failed"
	ReasonConfigError    Reason = "config_error"
	// ReasonNotRerun ends, as failed, a job that did not succeed in the
	// run a rerun repeats and that the rerun leaves out (a rerun of one
	// job): the rerun carries the failure instead of hiding it.
	ReasonNotRerun Reason = "not_rerun"
	// ReasonReleased ends an attempt its runner handed back before starting
	// it (the runner was shutting down); a new attempt takes its place
	// without counting as a retry.
	ReasonReleased Reason = "released"
	// ReasonFlakyRetry is on the queued event of an attempt made because
	// every test its predecessor failed is known flaky (retry.flaky).
	ReasonFlakyRetry Reason = "flaky_retry"
)

var validReasons = map[Reason]bool{
	ReasonNone: true, ReasonExitCode: true, ReasonTimeout: true, ReasonCanceled: true,
	ReasonRunnerLost: true, ReasonInfraError: true, ReasonResourceLimit: true,
	ReasonUpstreamFailed: true, ReasonConfigError: true, ReasonReleased: true, ReasonNotRerun: true,
	ReasonFlakyRetry: true,
}

// ParseReason validates a stored or received reason string.
func ParseReason(s string) (Reason, error) {
	r := Reason(s)
	if !validReasons[r] {
		return "", E(KindInvalid, "parse reason", "unknown failure reason %q", s)
	}
	return r, nil
}

// ParseRunState validates a run state string.
func ParseRunState(s string) (RunState, error) {
	st := RunState(s)
	if _, ok := runTransitions[st]; !ok {
		return "", E(KindInvalid, "parse run state", "unknown run state %q", s)
	}
	return st, nil
}

// ParseJobState validates a job state string.
func ParseJobState(s string) (JobState, error) {
	st := JobState(s)
	if _, ok := jobTransitions[st]; !ok {
		return "", E(KindInvalid, "parse job state", "unknown job state %q", s)
	}
	return st, nil
}

// ParseAttemptState validates an attempt state string.
func ParseAttemptState(s string) (AttemptState, error) {
	st := AttemptState(s)
	if _, ok := attemptTransitions[st]; !ok {
		return "", E(KindInvalid, "parse attempt state", "unknown attempt state %q", s)
	}
	return st, nil
}

// String helpers keep fmt output readable in errors.
func (s RunState) String() string     { return string(s) }
func (s JobState) String() string     { return string(s) }
func (s AttemptState) String() string { return string(s) }

func illegal(entity string, from, to fmt.Stringer) error {
	return E(KindConflict, "transition "+entity, "illegal move %s → %s", from, to)
}
