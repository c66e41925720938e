// Package executor runs one job script and reports how it ended. It owns the
// Executor contract and the shell implementation; the sandbox (bubblewrap)
// implementation will satisfy the same contract.
package executor

import (
	"context"
	"io"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// DefaultGrace is how long a job gets between SIGTERM and SIGKILL when
// Spec.Grace is zero.
const DefaultGrace = 10 * time.Second

// Executor runs a job's script to completion.
//
// Lifecycle of Run:
//
//   - Run validates spec. Misuse (an empty script, an empty Dir, a negative
//     Timeout or Grace, a nil out) returns a *core.Error of KindInvalid and
//     starts nothing. Every other outcome is a Result with a nil error: a job
//     that fails is a Result, not an error.
//   - If ctx is already done, nothing is started and the Result is
//     AttemptCanceled/ReasonCanceled.
//   - Setup failure (Dir missing or not a directory, the shell cannot be
//     started) gives AttemptErrored/ReasonInfraError with a short message in
//     Result.Err and ExitCode -1.
//   - The script's stdout and stderr both go to out, interleaved in the order
//     the job wrote them; writes to out are serialized (never concurrent).
//     If out returns an error the job is stopped as below and the Result is
//     AttemptErrored/ReasonInfraError, because its log is lost.
//   - Exit status 0 gives AttemptSucceeded/ReasonNone; any other status gives
//     AttemptFailed/ReasonExitCode with ExitCode set.
//   - When Spec.Timeout elapses the job is stopped and the Result is
//     AttemptTimedOut/ReasonTimeout. When ctx is canceled the job is stopped
//     and the Result is AttemptCanceled/ReasonCanceled. Stopping means SIGTERM
//     to the job's whole process tree (for Shell, its process group), up to
//     Spec.Grace for it to exit, then SIGKILL to what remains. ExitCode is
//     the script's own status if it exited during the grace, or -1 if a
//     signal ended it.
//   - A job may not leave processes behind: whatever remains of its process
//     tree when the script exits is killed, even after a success.
//   - Run returns only after every process of the job is gone or killed and
//     out will not be written again, so the caller may close or reuse out.
//
// Implementations say how far their "process tree" reaches.
type Executor interface {
	Run(ctx context.Context, spec Spec, out io.Writer) (Result, error)
}

// Spec is what to run and under which limits.
type Spec struct {
	// Script is run as `sh -e -c Script`.
	Script string
	// Dir is the working directory. It must exist; a missing one is an
	// infra error, not misuse, because workspaces are prepared at run time.
	Dir string
	// Env is the complete environment as KEY=VALUE. The executor adds nothing
	// from its own environment, so that jobs see only what the caller chose
	// (no runner secrets leak in). A nil Env means an empty environment.
	Env []string
	// Timeout bounds the job's wall-clock time; zero means no limit.
	Timeout time.Duration
	// Grace is the time between SIGTERM and SIGKILL; zero means DefaultGrace.
	Grace time.Duration
}

func (s Spec) grace() time.Duration {
	if s.Grace == 0 {
		return DefaultGrace
	}
	return s.Grace
}

func (s Spec) validate(out io.Writer) error {
	const op = "executor: run"
	switch {
	case s.Script == "":
		return core.E(core.KindInvalid, op, "empty script")
	case s.Dir == "":
		// The runner's own working directory is never a sane default.
		return core.E(core.KindInvalid, op, "empty working directory")
	case s.Timeout < 0:
		return core.E(core.KindInvalid, op, "negative timeout %s", s.Timeout)
	case s.Grace < 0:
		return core.E(core.KindInvalid, op, "negative grace %s", s.Grace)
	case out == nil:
		return core.E(core.KindInvalid, op, "nil output writer")
	}
	return nil
}

// Result is how a job ended.
type Result struct {
	// State is one of AttemptSucceeded, AttemptFailed, AttemptTimedOut,
	// AttemptCanceled or AttemptErrored.
	State core.AttemptState
	// Reason is ReasonNone for a success, else ReasonExitCode,
	// ReasonTimeout, ReasonCanceled or ReasonInfraError.
	Reason core.Reason
	// ExitCode is the script's exit status, or -1 when a signal ended it or
	// it never started.
	ExitCode int
	// StartedAt and FinishedAt bracket the job, including the time spent
	// stopping it.
	StartedAt  time.Time
	FinishedAt time.Time
	// Err is a short human message for infra errors, such as "working
	// directory does not exist"; empty otherwise.
	Err string
}

// Duration is how long the job took.
func (r Result) Duration() time.Duration { return r.FinishedAt.Sub(r.StartedAt) }
