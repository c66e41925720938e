package analysis

import (
	"testing"

	"github.com/deltaci/deltaci/internal/core"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		in   ClassifyInput
		want Class
	}{
		"Succeeded":          {ClassifyInput{State: core.AttemptSucceeded}, ClassNone},
		"Canceled":           {ClassifyInput{State: core.AttemptCanceled, Reason: core.ReasonCanceled}, ClassNone},
		"Running":            {ClassifyInput{State: core.AttemptRunning}, ClassNone},
		"RunnerLost":         {ClassifyInput{State: core.AttemptLost, Reason: core.ReasonRunnerLost}, ClassInfrastructure},
		"CheckoutFailed":     {ClassifyInput{State: core.AttemptErrored, Reason: core.ReasonInfraError, Pattern: PatternError}, ClassInfrastructure},
		"LostWithoutReason":  {ClassifyInput{State: core.AttemptLost}, ClassInfrastructure},
		"Timeout":            {ClassifyInput{State: core.AttemptTimedOut, Reason: core.ReasonTimeout, FailingTests: 3}, ClassTimeout},
		"TimedOutNoReason":   {ClassifyInput{State: core.AttemptTimedOut}, ClassTimeout},
		"LogTooLarge":        {ClassifyInput{State: core.AttemptFailed, Reason: core.ReasonResourceLimit}, ClassResourceLimit},
		"BadConfig":          {ClassifyInput{State: core.AttemptFailed, Reason: core.ReasonConfigError}, ClassConfiguration},
		"BuildInReport":      {ClassifyInput{State: core.AttemptFailed, Reason: core.ReasonExitCode, FailingTests: 2, BuildFailed: true}, ClassBuild},
		"FailingTests":       {ClassifyInput{State: core.AttemptFailed, Reason: core.ReasonExitCode, FailingTests: 2, Pattern: PatternCompiler}, ClassTest},
		"CompilerInLog":      {ClassifyInput{State: core.AttemptFailed, Reason: core.ReasonExitCode, Pattern: PatternCompiler}, ClassBuild},
		"RustcInLog":         {ClassifyInput{State: core.AttemptFailed, Reason: core.ReasonExitCode, Pattern: PatternRust}, ClassBuild},
		"GoFailInLog":        {ClassifyInput{State: core.AttemptFailed, Reason: core.ReasonExitCode, Pattern: PatternGoTest}, ClassTest},
		"PytestInLog":        {ClassifyInput{State: core.AttemptFailed, Reason: core.ReasonExitCode, Pattern: PatternPytest}, ClassTest},
		"JestInLog":          {ClassifyInput{State: core.AttemptFailed, Reason: core.ReasonExitCode, Pattern: PatternJest}, ClassTest},
		"ScriptPanicked":     {ClassifyInput{State: core.AttemptFailed, Reason: core.ReasonExitCode, Pattern: PatternPanic}, ClassOther},
		"NonZeroExit":        {ClassifyInput{State: core.AttemptFailed, Reason: core.ReasonExitCode, Pattern: PatternExit}, ClassOther},
		"NothingKnown":       {ClassifyInput{State: core.AttemptFailed}, ClassOther},
		"NotRerun":           {ClassifyInput{State: core.AttemptFailed, Reason: core.ReasonNotRerun}, ClassOther},
		"ErroredNoReason":    {ClassifyInput{State: core.AttemptErrored}, ClassInfrastructure},
		"ReasonBeatsReports": {ClassifyInput{State: core.AttemptFailed, Reason: core.ReasonInfraError, FailingTests: 5}, ClassInfrastructure},
	}
	for name, c := range cases {
		if got := Classify(c.in); got != c.want {
			t.Errorf("%s: Classify(%+v) = %q, want %q", name, c.in, got, c.want)
		}
	}
	seen := map[Class]bool{}
	for _, c := range cases {
		seen[c.want] = true
	}
	for _, c := range Classes() {
		if !seen[c] {
			t.Errorf("no case gives class %q", c)
		}
	}
}
