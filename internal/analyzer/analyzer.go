// Package analyzer is the Failure Analyzer's service: it takes ended
// attempts from the store's analysis queue, reads their reports and log
// from the artifact store with the parsing library's limits (streaming,
// memory flat whatever the size), and records per attempt its failure
// class, tests and log excerpt, with the signatures and flakiness that
// follow (store.RecordAnalysis).
//
// Any replica may run one: a claim is leased, so a replica that dies
// mid-analysis leaves the attempt to another once the lease lapses, and
// the analysis is stored in the transaction that ends the claim.
package analyzer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/deltaci/deltaci/internal/analysis"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/results"
	"github.com/deltaci/deltaci/internal/store"
)

// Defaults of an Analyzer's settings.
const (
	DefaultLease = 2 * time.Minute
	DefaultPoll  = 2 * time.Second
	// maxTries is how often a failing analysis is tried before it is
	// recorded with the error as its problem, so no attempt waits forever.
	maxTries = 8
)

// Settler decides, in the transaction that records an attempt's
// analysis, what the analysis means for its job (a flaky retry). It
// reports whether the job ended, so its run may advance.
type Settler interface {
	SettleAnalyzed(ctx context.Context, tx *store.Tx, a core.Analysis, scope string) (jobEnded bool, err error)
	// Advance moves a run on after a job ended.
	Advance(ctx context.Context, runID string) error
}

// Settings tune an Analyzer; zero values take the defaults.
type Settings struct {
	// Limits bound what parsing reads and keeps; analysis.DefaultLimits
	// when zero.
	Limits analysis.Limits
	// Lease is how long a claim holds an attempt (DefaultLease); Poll how
	// often the queue is looked at when nothing wakes the loop
	// (DefaultPoll).
	Lease, Poll time.Duration
	// ClearAfter is how many passes in a row clear a flaky job or test
	// (store.DefaultFlakyClearAfter).
	ClearAfter int
}

// Analyzer analyzes ended attempts.
type Analyzer struct {
	Store *store.Store
	// Registry holds the attempts' reports (reports/<attempt>) and sealed
	// logs (logs/<attempt>).
	Registry *registry.Registry
	Log      *slog.Logger
	Settings
	// Settler, when set, decides flaky retries.
	Settler Settler
	// Backlog, when set, is told after each pass of Run how many ended
	// attempts wait for their analysis and since when the oldest does.
	Backlog func(n int, oldest time.Time)

	wake     chan struct{}
	stop     context.CancelFunc
	done     chan struct{}
	initOnce sync.Once
}

func (z *Analyzer) init() {
	z.initOnce.Do(func() {
		z.wake = make(chan struct{}, 1)
		if z.Limits == (analysis.Limits{}) {
			z.Limits = analysis.DefaultLimits()
		}
		if z.Lease <= 0 {
			z.Lease = DefaultLease
		}
		if z.Poll <= 0 {
			z.Poll = DefaultPoll
		}
		if z.ClearAfter <= 0 {
			z.ClearAfter = store.DefaultFlakyClearAfter
		}
		if z.Log == nil {
			z.Log = slog.New(slog.DiscardHandler)
		}
	})
}

// Wake makes a running loop look at the queue now.
func (z *Analyzer) Wake() {
	z.init()
	select {
	case z.wake <- struct{}{}:
	default:
	}
}

// Start runs the loop in the background until Stop.
func (z *Analyzer) Start(ctx context.Context) error {
	z.init()
	if z.Store == nil || z.Registry == nil {
		return errors.New("analyzer: Store and Registry are required")
	}
	ctx, z.stop = context.WithCancel(ctx)
	z.done = make(chan struct{})
	go func() {
		defer close(z.done)
		z.Run(ctx)
	}()
	return nil
}

// Stop ends the loop and waits for it; an analysis in progress is left
// to its lease.
func (z *Analyzer) Stop() {
	if z.stop == nil {
		return
	}
	z.stop()
	<-z.done
}

// Run analyzes due attempts until ctx ends, looking at the queue when
// woken (Wake) and every Poll.
func (z *Analyzer) Run(ctx context.Context) {
	z.init()
	t := time.NewTicker(z.Poll)
	defer t.Stop()
	for {
		for {
			ok, err := z.Next(ctx)
			if err != nil && ctx.Err() == nil {
				z.Log.WarnContext(ctx, "analysis", slog.Any("err", err))
			}
			if !ok || ctx.Err() != nil {
				break
			}
		}
		if z.Backlog != nil && ctx.Err() == nil {
			if n, oldest, err := z.Store.AnalysisBacklog(ctx); err == nil {
				z.Backlog(n, oldest)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-z.wake:
		}
	}
}

// Drain analyzes until none of the run's ended attempts waits, or ctx
// ends; it is the embedded mode's way to have a run's analyses before
// its summary.
func (z *Analyzer) Drain(ctx context.Context, runID string) error {
	z.init()
	for {
		n, err := z.Store.PendingAnalyses(ctx, runID)
		if err != nil || n == 0 {
			return err
		}
		ok, err := z.Next(ctx)
		if err != nil {
			return err
		}
		if !ok {
			// Claimed elsewhere or not due: wait for it.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// Next claims one due attempt and analyzes it. It reports false when
// none was due.
func (z *Analyzer) Next(ctx context.Context) (bool, error) {
	z.init()
	c, err := z.Store.ClaimAnalysis(ctx, z.Lease)
	if core.KindOf(err) == core.KindNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, z.process(ctx, c)
}

func (z *Analyzer) process(ctx context.Context, c store.AnalysisClaim) error {
	a, j, err := z.Store.AttemptJob(ctx, c.AttemptID)
	if core.KindOf(err) == core.KindNotFound {
		return z.Store.DropAnalysis(ctx, c) // its run was deleted
	}
	if err != nil {
		return z.retry(ctx, c, err)
	}
	run, err := z.Store.Run(ctx, a.RunID)
	if err != nil {
		return z.retry(ctx, c, err)
	}
	an, err := z.Analyze(ctx, run, j, a)
	if err != nil {
		if c.Tries < maxTries && ctx.Err() == nil {
			return z.retry(ctx, c, err)
		}
		// Given up: what is known, with the error, rather than nothing.
		an = z.bare(j, a)
		an.Problems = append(an.Problems, fmt.Sprintf("the analysis failed %d times; the last error: %v", c.Tries, err))
	}
	scope := store.Scope(run)
	var then func(*store.Tx) (bool, error)
	if z.Settler != nil {
		then = func(tx *store.Tx) (bool, error) { return z.Settler.SettleAnalyzed(ctx, tx, an, scope) }
	}
	rec, ended, err := z.Store.RecordAnalysisThen(ctx, c, scope, an, z.ClearAfter, then)
	if err != nil {
		if core.KindOf(err) == core.KindLeaseLost {
			return nil // another replica has it
		}
		return z.retry(ctx, c, err)
	}
	for _, f := range rec.NewFlaky {
		z.Log.InfoContext(ctx, "flakiness proven", slog.String("run_id", a.RunID), slog.String("job", j.Name),
			slog.String("test", f.Test), slog.String("attempt_id", a.ID))
	}
	if ended && z.Settler != nil {
		if err := z.Settler.Advance(ctx, a.RunID); err != nil {
			z.Log.WarnContext(ctx, "advancing the run after its analysis", slog.String("run_id", a.RunID), slog.Any("err", err))
		}
	}
	return nil
}

func (z *Analyzer) retry(ctx context.Context, c store.AnalysisClaim, cause error) error {
	wait := min(time.Second<<min(c.Tries, 8), 5*time.Minute)
	if err := z.Store.RetryAnalysis(context.WithoutCancel(ctx), c, wait, cause.Error()); err != nil && core.KindOf(err) != core.KindLeaseLost {
		return errors.Join(cause, err)
	}
	return cause
}

// bare is an attempt's analysis before its reports and log are read.
func (z *Analyzer) bare(j core.Job, a core.Attempt) core.Analysis {
	an := core.Analysis{
		AttemptID: a.ID, RunID: a.RunID, JobID: j.ID, Job: j.Name, Number: a.Number, Digest: j.Digest,
		State: a.State, Reason: a.Reason, Failures: []core.TestFailure{},
	}
	an.Class = string(analysis.Classify(analysis.ClassifyInput{State: a.State, Reason: a.Reason}))
	return an
}

// Analyze reads an ended attempt's reports and, when they name no failing
// test of a failed attempt, its log's first real error, and returns the
// analysis. Reports that cannot be read are Problems, not errors; an
// error is a failure to reach the store, worth another try.
func (z *Analyzer) Analyze(ctx context.Context, run core.Run, j core.Job, a core.Attempt) (core.Analysis, error) {
	z.init()
	an := z.bare(j, a)
	rep, files, problems, err := z.reports(ctx, j, a)
	if err != nil {
		return an, err
	}
	an.Reports, an.Problems = files, problems
	in := analysis.ClassifyInput{State: a.State, Reason: a.Reason}
	if rep != nil {
		t := rep.Totals
		an.Totals = core.TestTotals{Passed: t.Passed, Failed: t.Failed, Errored: t.Errored, Skipped: t.Skipped}
		for _, tr := range rep.Failing() {
			an.Failures = append(an.Failures, failure(tr))
		}
		an.MoreFailures = max(0, t.Failing()-len(an.Failures))
		an.Passed = rep.Passed
		in.FailingTests, in.BuildFailed = t.Failing(), rep.BuildFailed()
	}
	if a.State != core.AttemptSucceeded && len(an.Failures) == 0 {
		ex, err := z.excerpt(ctx, a)
		switch {
		case err != nil && core.KindOf(err) == core.KindNotFound:
			an.Problems = append(an.Problems, "the log is not stored: "+err.Error())
		case err != nil:
			return an, err
		case ex != nil:
			an.Excerpt = ex
			in.Pattern = analysis.Pattern(ex.Pattern)
		}
	}
	an.Class = string(analysis.Classify(in))
	return an, nil
}

func failure(t analysis.TestResult) core.TestFailure {
	f := core.TestFailure{
		ID: t.ID(), Suite: t.Suite, Name: t.Name, Errored: t.Status == analysis.StatusErrored,
		Message: t.Message, Output: t.Output, Signature: analysis.Signature(t.ID(), t.Message),
	}
	if t.File != "" {
		f.Location = t.File
		if t.Line > 0 {
			f.Location += ":" + strconv.Itoa(t.Line)
		}
	}
	return f
}

// reports parses the attempt's report files, each by the format whose
// globs match its path. It returns nil when the job declares none or the
// attempt stored none.
func (z *Analyzer) reports(ctx context.Context, j core.Job, a core.Attempt) (*analysis.Report, int, []string, error) {
	if len(j.Spec.Reports) == 0 {
		return nil, 0, nil, nil
	}
	_, m, err := z.Registry.Manifest(ctx, results.ReportsRef(a.ID))
	if core.KindOf(err) == core.KindNotFound {
		if a.State == core.AttemptSucceeded || a.State == core.AttemptFailed {
			return nil, 0, []string{"no report file was stored for this attempt"}, nil
		}
		return nil, 0, nil, nil
	}
	if err != nil {
		return nil, 0, nil, err
	}
	var problems []string
	if r := m.Annotations[results.RefusedAnnotation]; r != "" {
		problems = append(problems, "not uploaded by the runner: "+r)
	}
	col, err := analysis.NewCollector(z.Limits)
	if err != nil {
		return nil, 0, nil, err
	}
	files := 0
	for _, e := range m.Entries {
		if e.Digest.IsZero() {
			continue // a symlink
		}
		format, ok := FormatOf(j.Spec.Reports, e.Path)
		if !ok {
			continue
		}
		rc, _, err := z.Registry.Data.Open(ctx, e.Digest, 0, -1)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("open report %s: %w", e.Path, err)
		}
		err = col.Add(e.Path, format, rc)
		rc.Close()
		if err != nil {
			if ctx.Err() != nil {
				return nil, 0, nil, ctx.Err()
			}
			problems = append(problems, err.Error())
			continue
		}
		files++
	}
	if files == 0 {
		return nil, 0, problems, nil
	}
	return col.Report(), files, problems, nil
}

// FormatOf is the report format whose globs (a job's reports) match path.
func FormatOf(reports map[string][]string, path string) (analysis.Format, bool) {
	for _, f := range []analysis.Format{analysis.FormatJUnit, analysis.FormatGoTest} {
		for _, g := range reports[string(f)] {
			if ok, _ := doublestar.Match(g, path); ok {
				return f, true
			}
		}
	}
	return "", false
}

// excerpt finds the first real error of the attempt's log.
func (z *Analyzer) excerpt(ctx context.Context, a core.Attempt) (*core.LogExcerpt, error) {
	rc, err := z.openLog(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	ex, err := analysis.Excerpt(rc, z.Limits)
	if err != nil {
		return nil, err
	}
	if ex.Text == "" && !ex.Found {
		return nil, nil
	}
	out := &core.LogExcerpt{
		Text: ex.Text, Start: ex.Start, End: ex.End, ErrorStart: ex.ErrorStart, ErrorEnd: ex.ErrorEnd,
		ErrorLine: ex.ErrorLine, Error: ex.Error, Pattern: string(ex.Pattern),
	}
	return out, nil
}

// openLog streams an attempt's log: from the database's chunks while it
// is not sealed, else from the artifact store (logs/<attempt>, which is
// also where the embedded runner keeps it).
func (z *Analyzer) openLog(ctx context.Context, attemptID string) (io.ReadCloser, error) {
	info, err := z.Store.LogInfo(ctx, attemptID)
	if err != nil {
		return nil, err
	}
	if info.Digest != "" {
		d, err := digest.Parse(info.Digest)
		if err != nil {
			return nil, err
		}
		rc, _, err := z.Registry.Data.Open(ctx, d, 0, info.Length)
		return rc, err
	}
	if info.Length > 0 {
		return io.NopCloser(&chunkReader{ctx: ctx, z: z, id: attemptID, length: info.Length}), nil
	}
	_, m, err := z.Registry.Manifest(ctx, results.LogRef(attemptID))
	if err != nil {
		return nil, err
	}
	if len(m.Entries) != 1 || m.Entries[0].Digest.IsZero() {
		return nil, core.E(core.KindInternal, "open log", "the log of %s is not one file", attemptID)
	}
	rc, _, err := z.Registry.Data.Open(ctx, m.Entries[0].Digest, 0, -1)
	return rc, err
}

// chunkReader reads an unsealed log from the database a piece at a time,
// and from the artifact store if it is sealed meanwhile.
type chunkReader struct {
	ctx    context.Context
	z      *Analyzer
	id     string
	off    int64
	length int64
	buf    []byte
	sealed io.ReadCloser
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.sealed != nil {
		n, err := r.sealed.Read(p)
		if err == io.EOF {
			r.sealed.Close()
		}
		return n, err
	}
	if len(r.buf) == 0 {
		if r.off >= r.length {
			return 0, io.EOF
		}
		data, _, err := r.z.Store.ReadLog(r.ctx, r.id, r.off, 1<<20)
		if errors.Is(err, store.ErrLogSealed) {
			info, err := r.z.Store.LogInfo(r.ctx, r.id)
			if err != nil {
				return 0, err
			}
			d, err := digest.Parse(info.Digest)
			if err != nil {
				return 0, err
			}
			if r.sealed, _, err = r.z.Registry.Data.Open(r.ctx, d, r.off, r.length-r.off); err != nil {
				return 0, err
			}
			return r.Read(p)
		}
		if err != nil {
			return 0, err
		}
		if len(data) == 0 {
			return 0, io.EOF
		}
		r.buf = data
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	r.off += int64(n)
	return n, nil
}
