// Package analysis is the Failure Analyzer's parsing library: it reads test
// reports (JUnit XML in the dialects real tools write, and `go test -json`),
// finds the first real error in a log, masks volatile parts of failure
// messages into signatures, and classifies a failed attempt.
//
// It has no database and no HTTP. Every parser streams its input with
// memory bounded by Limits, whatever the size or shape of the input, and
// refuses hostile input with an error that names the problem.
package analysis

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Errors the parsers wrap; test them with errors.Is.
var (
	// ErrTooLarge: the input passed MaxFileBytes or MaxAttemptBytes.
	ErrTooLarge = errors.New("report too large")
	// ErrRefused: the input is hostile or beyond a structural limit
	// (DOCTYPE or entity declarations, nesting deeper than MaxDepth, a tag
	// or a line too long).
	ErrRefused = errors.New("report refused")
	// ErrMalformed: the input is not a report of the expected format.
	ErrMalformed = errors.New("malformed report")
)

// Limits bounds what parsing one attempt's reports may read and keep.
type Limits struct {
	// MaxFileBytes is the most one report file may hold.
	MaxFileBytes int64
	// MaxAttemptBytes is the most all report files of one attempt may hold
	// together (enforced by Collector).
	MaxAttemptBytes int64
	// MaxDepth is the deepest XML element nesting accepted.
	MaxDepth int
	// MaxFailures is how many non-passing tests a Report keeps in full;
	// the rest are counted in Totals only and Truncated is set.
	MaxFailures int
	// MaxOutputBytes bounds each kept test's Output and Message.
	MaxOutputBytes int
	// MaxPassed is how many passing test ids a Report keeps.
	MaxPassed int
	// ExcerptBefore and ExcerptAfter are the lines of context Excerpt
	// keeps around the error line.
	ExcerptBefore, ExcerptAfter int
}

// DefaultLimits are GitLab's report size limits (30 MB per file, 100 MB per
// attempt) with bounds on what is kept that fit a database row per test.
func DefaultLimits() Limits {
	return Limits{
		MaxFileBytes:    30_000_000,
		MaxAttemptBytes: 100_000_000,
		MaxDepth:        64,
		MaxFailures:     1000,
		MaxOutputBytes:  4096,
		MaxPassed:       50_000,
		ExcerptBefore:   5,
		ExcerptAfter:    10,
	}
}

// Validate reports a limit that is not positive.
func (l Limits) Validate() error {
	switch {
	case l.MaxFileBytes <= 0:
		return errors.New("analysis limits: MaxFileBytes must be positive")
	case l.MaxAttemptBytes <= 0:
		return errors.New("analysis limits: MaxAttemptBytes must be positive")
	case l.MaxDepth <= 0:
		return errors.New("analysis limits: MaxDepth must be positive")
	case l.MaxFailures < 0, l.MaxPassed < 0:
		return errors.New("analysis limits: MaxFailures and MaxPassed must not be negative")
	case l.MaxOutputBytes < 64:
		return errors.New("analysis limits: MaxOutputBytes must be at least 64")
	case l.ExcerptBefore < 0, l.ExcerptAfter < 0:
		return errors.New("analysis limits: excerpt context must not be negative")
	}
	return nil
}

// Status is the outcome of one test.
type Status string

// Test outcomes. Errored is JUnit's <error> (the test could not run to an
// assertion, or a package failed outside any test); Failed is an assertion.
const (
	StatusPassed  Status = "passed"
	StatusFailed  Status = "failed"
	StatusErrored Status = "errored"
	StatusSkipped Status = "skipped"
)

// Totals counts the tests of a report by outcome.
type Totals struct {
	Passed, Failed, Errored, Skipped int
}

// Total is the number of tests counted.
func (t Totals) Total() int { return t.Passed + t.Failed + t.Errored + t.Skipped }

// Failing is the number of tests that failed or errored.
func (t Totals) Failing() int { return t.Failed + t.Errored }

func (t *Totals) add(o Totals) {
	t.Passed += o.Passed
	t.Failed += o.Failed
	t.Errored += o.Errored
	t.Skipped += o.Skipped
}

func (t *Totals) count(s Status) {
	switch s {
	case StatusPassed:
		t.Passed++
	case StatusFailed:
		t.Failed++
	case StatusErrored:
		t.Errored++
	case StatusSkipped:
		t.Skipped++
	}
}

// TypeBuild is the Type of a TestResult that stands for a package whose
// test binary did not build (go test -json's build failures).
const TypeBuild = "build"

// TestResult is one test's outcome as a report states it.
type TestResult struct {
	// Suite is the test's class, module or package (JUnit classname, or
	// the enclosing testsuite's name when there is none; the Go package).
	Suite string
	Name  string
	// Status is passed, failed, errored or skipped.
	Status Status
	// Message is the failure's one-line summary, Type its kind (exception
	// class, or TypeBuild); both may be empty.
	Message string
	Type    string
	// File and Line locate the failure when the report or its message
	// says where (Line 0 when unknown).
	File string
	Line int
	// Output is a bounded excerpt of the failure text and the test's
	// system-out and system-err.
	Output   string
	Duration time.Duration
	// Reruns counts the reruns a tool recorded (Surefire's and nextest's
	// rerunFailure/flakyFailure elements); Flaky is set when the test
	// failed and then passed on a rerun within the same report.
	Reruns int
	Flaky  bool
}

// ID is the test's stable identity: its suite and name, normalised so that
// the same test reported by different tools (gotestsum's JUnit and go test
// -json, say) has one id.
func (t TestResult) ID() string { return TestID(t.Suite, t.Name) }

// TestID builds the id ID returns from a suite and a name: spaces trimmed
// and collapsed, "suite::name", or the name alone when the suite is empty
// or repeats it (jest-junit's default classname is the test's title).
func TestID(suite, name string) string {
	suite, name = collapseSpace(suite), collapseSpace(name)
	switch {
	case suite == "" || suite == name:
		return name
	case name == "":
		return suite
	}
	return suite + "::" + name
}

func collapseSpace(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// Report is what the reports of one attempt say: totals over every test,
// the non-passing (and flaky) tests in full up to MaxFailures, and the ids
// of the passing ones up to MaxPassed.
type Report struct {
	Totals
	// Tests are the failed, errored and skipped tests, and the passed ones
	// that were flaky, in report order.
	Tests []TestResult
	// Passed are the ids of the passing tests, for fixed and flaky
	// detection.
	Passed []string
	// Truncated is set when Tests or Passed dropped entries over a limit
	// (Totals still count every test).
	Truncated bool
}

// BuildFailed reports whether a package's tests did not build.
func (r *Report) BuildFailed() bool {
	for _, t := range r.Tests {
		if t.Type == TypeBuild {
			return true
		}
	}
	return false
}

// Failing returns the failed and errored tests kept.
func (r *Report) Failing() []TestResult {
	var out []TestResult
	for _, t := range r.Tests {
		if t.Status == StatusFailed || t.Status == StatusErrored {
			out = append(out, t)
		}
	}
	return out
}

// add records one test under the limits.
func (r *Report) add(t TestResult, lim Limits) {
	r.count(t.Status)
	if t.Status == StatusPassed {
		if len(r.Passed) < lim.MaxPassed {
			r.Passed = append(r.Passed, t.ID())
		} else {
			r.Truncated = true
		}
		if !t.Flaky {
			return
		}
	}
	if len(r.Tests) < lim.MaxFailures {
		r.Tests = append(r.Tests, t)
	} else {
		r.Truncated = true
	}
}

// Merge adds o's tests to r, keeping r within lim.
func (r *Report) Merge(o *Report, lim Limits) {
	if o == nil {
		return
	}
	r.Totals.add(o.Totals)
	r.Truncated = r.Truncated || o.Truncated
	for _, id := range o.Passed {
		if len(r.Passed) >= lim.MaxPassed {
			r.Truncated = true
			break
		}
		r.Passed = append(r.Passed, id)
	}
	for _, t := range o.Tests {
		if len(r.Tests) >= lim.MaxFailures {
			r.Truncated = true
			break
		}
		r.Tests = append(r.Tests, t)
	}
}

// Format names a report format a job declares (`reports: {junit: [...],
// gotest: [...]}`).
type Format string

// Report formats.
const (
	FormatJUnit  Format = "junit"
	FormatGoTest Format = "gotest"
)

// Collector parses the report files of one attempt into one Report,
// enforcing MaxFileBytes per file and MaxAttemptBytes over all of them.
// A file that fails to parse adds nothing; the others still count.
type Collector struct {
	lim    Limits
	used   int64
	report Report
}

// NewCollector returns a Collector for one attempt.
func NewCollector(lim Limits) (*Collector, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	return &Collector{lim: lim}, nil
}

// Add parses one report file (name is used in errors) and merges it. It
// returns an error wrapping ErrTooLarge, ErrRefused or ErrMalformed.
func (c *Collector) Add(name string, f Format, r io.Reader) error {
	if f != FormatJUnit && f != FormatGoTest {
		return fmt.Errorf("%s: unknown report format %q (want %q or %q)", name, f, FormatJUnit, FormatGoTest)
	}
	left := c.lim.MaxAttemptBytes - c.used
	if left <= 0 {
		return fmt.Errorf("%s: %w: the attempt's reports passed the limit of %d bytes", name, ErrTooLarge, c.lim.MaxAttemptBytes)
	}
	lr := fileLimit(r, c.lim.MaxFileBytes)
	if left < c.lim.MaxFileBytes {
		lr = &limitReader{r: r, max: left, msg: fmt.Sprintf("more than the %d bytes left of the limit of %d bytes per attempt", left, c.lim.MaxAttemptBytes)}
	}
	var rep *Report
	var err error
	if f == FormatJUnit {
		rep, err = parseJUnit(lr, c.lim)
	} else {
		rep, err = parseGoTestJSON(lr, c.lim)
	}
	c.used += lr.n
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	c.report.Merge(rep, c.lim)
	return nil
}

// Report returns the merged report of every file added so far.
func (c *Collector) Report() *Report {
	r := c.report
	return &r
}

// limitReader fails with ErrTooLarge once more than max bytes are read.
type limitReader struct {
	r   io.Reader
	max int64
	msg string // what the limit is, for the error
	n   int64
	err error
}

func fileLimit(r io.Reader, max int64) *limitReader {
	return &limitReader{r: r, max: max, msg: fmt.Sprintf("more than the limit of %d bytes per report file", max)}
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	// Read one byte past the limit so that input of exactly max bytes passes.
	if rem := l.max + 1 - l.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		l.err = fmt.Errorf("%w: %s", ErrTooLarge, l.msg)
		return n - int(l.n-l.max), l.err
	}
	return n, err
}
