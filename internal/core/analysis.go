package core

import "time"

// Analysis is what the Failure Analyzer found in one ended attempt: its
// failure class, its tests' totals and failing tests (from the job's
// reports), and the log's first real error when no report explains the
// failure.
type Analysis struct {
	AttemptID string       `json:"attempt_id"`
	RunID     string       `json:"run_id"`
	JobID     string       `json:"job_id"`
	Job       string       `json:"job"`
	Number    int          `json:"attempt_number"`
	Digest    string       `json:"digest,omitempty"`
	State     AttemptState `json:"state"`
	Reason    Reason       `json:"reason,omitempty"`
	// Class is empty for an attempt that did not fail.
	Class string `json:"class,omitempty"`
	// Reports counts the report files read; Totals are over all of them.
	Reports int        `json:"reports"`
	Totals  TestTotals `json:"totals"`
	// Failures are the failed and errored tests, up to the analyzer's
	// limit; MoreFailures counts those left out.
	Failures     []TestFailure `json:"failures"`
	MoreFailures int           `json:"more_failures,omitempty"`
	// Excerpt is the log around its first real error, kept when the
	// attempt failed and no report names a failing test.
	Excerpt *LogExcerpt `json:"excerpt,omitempty"`
	// Problems are what could not be read (a report over its limit, a
	// malformed one, a log that is gone), in words.
	Problems   []string  `json:"problems,omitempty"`
	AnalyzedAt time.Time `json:"analyzed_at"`

	// Passed are the ids of the passing tests, for flakiness; they are
	// used when the analysis is recorded and not kept.
	Passed []string `json:"-"`
}

// Failed reports whether the attempt ended in a failure of its job's own
// making (a test or a command that failed, a timeout), as opposed to a
// success or an infrastructure fault.
func (a Analysis) Failed() bool {
	return a.State == AttemptFailed || a.State == AttemptTimedOut
}

// TestTotals counts a report's tests by outcome.
type TestTotals struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Errored int `json:"errored"`
	Skipped int `json:"skipped"`
}

// TestFailure is one failed or errored test.
type TestFailure struct {
	// ID is the test's identity across runs ("suite::name").
	ID    string `json:"id"`
	Suite string `json:"suite,omitempty"`
	Name  string `json:"name"`
	// Errored is JUnit's <error>: the test could not run to an assertion.
	Errored  bool   `json:"errored,omitempty"`
	Message  string `json:"message,omitempty"`
	Location string `json:"location,omitempty"`
	// Output is a bounded excerpt of the test's output.
	Output string `json:"output,omitempty"`
	// Signature groups identical failures across runs.
	Signature string `json:"signature"`
}

// LogExcerpt is the region of a log around its first real error, with
// byte offsets into the raw log.
type LogExcerpt struct {
	Text string `json:"text"`
	// Start and End delimit the excerpt in the raw log; ErrorStart and
	// ErrorEnd its error line, whose 1-based number is ErrorLine (0 when
	// no line matched and the excerpt is the log's end).
	Start      int64  `json:"start"`
	End        int64  `json:"end"`
	ErrorStart int64  `json:"error_start"`
	ErrorEnd   int64  `json:"error_end"`
	ErrorLine  int    `json:"error_line"`
	Error      string `json:"error,omitempty"`
	Pattern    string `json:"pattern,omitempty"`
}

// FailureSignature is a group of identical failures: one test failing with
// one message, volatile parts masked.
type FailureSignature struct {
	Signature string    `json:"signature"`
	Test      string    `json:"test"`
	Message   string    `json:"message"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Count     int64     `json:"count"`
	// LastAttempt is the attempt it was last seen in.
	LastAttempt string `json:"last_attempt"`
}

// Flaky is a job (Test empty) or a test proven flaky: it passed and failed
// on attempts with the same input digest.
type Flaky struct {
	Job  string `json:"job"`
	Test string `json:"test,omitempty"`
	// Since is when it was last found flaky, LastSeen when evidence or a
	// failure last came.
	Since    time.Time `json:"since"`
	LastSeen time.Time `json:"last_seen"`
	// Passes counts the passes since its last failure; once they reach the
	// threshold it is cleared (Cleared set) until new evidence comes.
	Passes   int             `json:"passes"`
	Cleared  time.Time       `json:"cleared_at,omitzero"`
	Evidence []FlakyEvidence `json:"evidence"`
}

// Active reports whether the job or test is flaky now.
func (f Flaky) Active() bool { return f.Cleared.IsZero() }

// FlakyEvidence is one pair of attempts with the same input digest, one
// failed and one passed.
type FlakyEvidence struct {
	Digest string    `json:"digest"`
	Failed string    `json:"failed_attempt"`
	Passed string    `json:"passed_attempt"`
	At     time.Time `json:"at"`
}
