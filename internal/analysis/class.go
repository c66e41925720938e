package analysis

import "github.com/deltaci/deltaci/internal/core"

// Class is why a failed attempt failed, in the words retry policy and
// people use.
type Class string

// Failure classes. ClassNone is the class of an attempt that did not fail
// (succeeded, canceled, handed back, or not yet ended).
const (
	ClassNone           Class = ""
	ClassInfrastructure Class = "infrastructure" // runner lost, checkout or setup failed
	ClassTimeout        Class = "timeout"
	ClassResourceLimit  Class = "resource_limit"
	ClassConfiguration  Class = "configuration"
	ClassBuild          Class = "build" // the code did not compile
	ClassTest           Class = "test"  // tests ran and failed
	ClassOther          Class = "other" // the job's command failed otherwise
)

// Classes lists every class an attempt can be given, ClassNone excluded.
func Classes() []Class {
	return []Class{ClassInfrastructure, ClassTimeout, ClassResourceLimit, ClassConfiguration, ClassBuild, ClassTest, ClassOther}
}

// ClassifyInput is what Classify weighs: the attempt's end as the
// orchestrator recorded it, and what its reports and log say.
type ClassifyInput struct {
	State  core.AttemptState
	Reason core.Reason
	// FailingTests is how many tests the attempt's reports say failed or
	// errored (Totals.Failing), BuildFailed whether a report says a
	// package did not build (Report.BuildFailed).
	FailingTests int
	BuildFailed  bool
	// Pattern is the log excerpt's (LogExcerpt.Pattern), PatternNone
	// when there is no excerpt.
	Pattern Pattern
}

// Classify gives a failed attempt its class. The recorded reason decides
// first (a timeout is a timeout whatever the log says); for a command that
// exited non-zero, a report's failing tests or build failure decide, then
// the log's first error.
func Classify(in ClassifyInput) Class {
	switch in.State {
	case core.AttemptFailed, core.AttemptTimedOut, core.AttemptLost, core.AttemptErrored:
	default:
		return ClassNone
	}
	switch in.Reason {
	case core.ReasonRunnerLost, core.ReasonInfraError:
		return ClassInfrastructure
	case core.ReasonTimeout:
		return ClassTimeout
	case core.ReasonResourceLimit:
		return ClassResourceLimit
	case core.ReasonConfigError:
		return ClassConfiguration
	case core.ReasonExitCode, core.ReasonNone:
	default:
		// canceled, released, upstream_failed, not_rerun: no failure of the
		// attempt's own to explain.
		return ClassOther
	}
	// No reason recorded: the state says it (core.AttemptOutcome).
	switch in.State {
	case core.AttemptTimedOut:
		return ClassTimeout
	case core.AttemptLost, core.AttemptErrored:
		return ClassInfrastructure
	}
	switch {
	case in.BuildFailed:
		return ClassBuild
	case in.FailingTests > 0:
		return ClassTest
	}
	switch in.Pattern {
	case PatternCompiler, PatternRust:
		return ClassBuild
	case PatternGoTest, PatternPytest, PatternJest:
		return ClassTest
	}
	return ClassOther
}
