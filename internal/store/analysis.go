package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// AnalysisQueries is the row access of the Failure Analyzer: its work
// queue, the analyses, failure signatures and flakiness (analysis.go).
// ClaimAnalysis returns core.KindNotFound when nothing is due; Retry and
// Finish match the claim by its token and report whether they did.
type AnalysisQueries interface {
	InsertRunBase(ctx context.Context, runID string, b RunBase) error
	// GetRunBase returns core.KindNotFound for a run without a base.
	GetRunBase(ctx context.Context, runID string) (RunBase, error)
	// FindBaseJob returns the id of the latest ended job named job of a
	// run of the same project and repository as run at commit.
	FindBaseJob(ctx context.Context, run core.Run, commit, job string) (string, error)

	ClaimAnalysis(ctx context.Context, now, leaseUntil time.Time, claim string) (AnalysisClaim, error)
	RetryAnalysis(ctx context.Context, c AnalysisClaim) (bool, error)
	FinishAnalysis(ctx context.Context, c AnalysisClaim) (bool, error)
	AnalysisBacklog(ctx context.Context) (int, time.Time, error)
	PendingRunAnalyses(ctx context.Context, runID string) (int, error)
	// LockDigest holds off other writers of one digest's flakiness until
	// the transaction ends (a no-op where writes are serialized anyway).
	LockDigest(ctx context.Context, digest string) error

	// InsertAnalysis reports false when the attempt has one already.
	InsertAnalysis(ctx context.Context, r AnalysisRow) (bool, error)
	GetAnalysis(ctx context.Context, attemptID string) (AnalysisRow, error)
	ListRunAnalyses(ctx context.Context, runID string) ([]AnalysisRow, error)
	// ListDigestAnalyses returns the latest limit analyses of a scope's
	// attempts with that digest, newest first.
	ListDigestAnalyses(ctx context.Context, scope, digest string, limit int) ([]AnalysisRow, error)

	UpsertSignature(ctx context.Context, scope, attemptID string, s core.FailureSignature) error
	GetSignature(ctx context.Context, scope, signature string) (core.FailureSignature, error)

	// ListFlaky returns a scope's flaky rows, of one job when job is set.
	ListFlaky(ctx context.Context, scope, job string) ([]FlakyRow, error)
	UpsertFlaky(ctx context.Context, f FlakyRow) error
	// BumpJobStatus has a job's status context posted again (a no-op for
	// a run that reports to no forge).
	BumpJobStatus(ctx context.Context, runID, jobID string, at time.Time) error
}

// AnalysisClaim is a claimed row of the analysis queue.
type AnalysisClaim struct {
	AttemptID  string
	RunID      string
	QueuedAt   time.Time
	Tries      int
	NextAt     time.Time
	Claim      string
	LeaseUntil time.Time
	LastError  string
}

// AnalysisRow is a stored analysis; Detail is core.Analysis in JSON.
type AnalysisRow struct {
	AttemptID, RunID, Job, Scope, Digest, State, Class, Detail string
	AnalyzedAt                                                 time.Time
}

// FlakyRow is a stored core.Flaky of a scope; Evidence is JSON.
type FlakyRow struct {
	Scope, Job, Test string
	Since, LastSeen  time.Time
	Passes           int
	ClearedAt        time.Time
	Evidence         string
}

// Analysis settings.
const (
	// DefaultFlakyClearAfter is how many consecutive passes clear a flaky
	// job or test.
	DefaultFlakyClearAfter = 10
	// maxEvidence is how many attempt pairs a flaky row keeps, newest.
	maxEvidence = 20
	// digestWindow is how many analyses of one digest flakiness compares.
	digestWindow = 100
)

// Scope is where a run's flakiness and signatures are kept: its project,
// or its repository for a run outside any project.
func Scope(r core.Run) string {
	if r.Project != "" {
		return r.Project
	}
	return "repo:" + r.Repo
}

// ClaimAnalysis leases the oldest due ended attempt to analyze. It
// returns a core.KindNotFound error when none is due.
func (s *Store) ClaimAnalysis(ctx context.Context, lease time.Duration) (AnalysisClaim, error) {
	now := s.Now()
	var c AnalysisClaim
	err := s.drv.Write(ctx, func(q Queries) error {
		var err error
		c, err = q.ClaimAnalysis(ctx, now, now.Add(lease), newToken())
		return err
	})
	return c, err
}

// RetryAnalysis hands a claimed analysis back, to be tried again after
// wait, with message saying what failed.
func (s *Store) RetryAnalysis(ctx context.Context, c AnalysisClaim, wait time.Duration, message string) error {
	c.NextAt, c.LastError = s.Now().Add(wait), clip(message, 1024)
	return s.fenced(ctx, "retry analysis "+c.AttemptID, func(q Queries) (bool, error) { return q.RetryAnalysis(ctx, c) })
}

// DropAnalysis removes a claimed queue row without an analysis (its
// attempt is gone). It returns core.KindLeaseLost when the claim passed.
func (s *Store) DropAnalysis(ctx context.Context, c AnalysisClaim) error {
	return s.fenced(ctx, "drop analysis "+c.AttemptID, func(q Queries) (bool, error) { return q.FinishAnalysis(ctx, c) })
}

// AnalysisBacklog counts the ended attempts not analyzed yet and says
// when the oldest of them ended (zero for none).
func (s *Store) AnalysisBacklog(ctx context.Context) (int, time.Time, error) {
	return s.drv.Read().AnalysisBacklog(ctx)
}

// PendingAnalyses counts a run's ended attempts not analyzed yet.
func (s *Store) PendingAnalyses(ctx context.Context, runID string) (int, error) {
	return s.drv.Read().PendingRunAnalyses(ctx, runID)
}

// Recorded is what recording an analysis found beyond the analysis
// itself: the flaky jobs and tests it brought evidence for.
type Recorded struct {
	NewFlaky []core.Flaky
}

// RecordAnalysis stores the analysis of a claimed attempt, in one
// transaction with the end of its claim: the analysis, the signatures of
// its failures (first and last seen, count), and flakiness: evidence from
// other attempts of the scope with the same input digest, and the passes
// that clear flaky jobs and tests after clearAfter in a row. It returns a
// core.KindLeaseLost error when the claim passed to another replica, and
// does nothing more for an attempt analyzed already.
func (s *Store) RecordAnalysis(ctx context.Context, c AnalysisClaim, scope string, a core.Analysis, clearAfter int) (Recorded, error) {
	rec, _, err := s.RecordAnalysisThen(ctx, c, scope, a, clearAfter, nil)
	return rec, err
}

// AnalyzerActor is the author of the moves made with an analysis.
const AnalyzerActor = "analyzer"

// RecordAnalysisThen is RecordAnalysis followed, in the same transaction
// and only when the analysis was new, by then (which may move the
// attempt's job, as AnalyzerActor); it returns what then reported.
func (s *Store) RecordAnalysisThen(ctx context.Context, c AnalysisClaim, scope string, a core.Analysis, clearAfter int,
	then func(*Tx) (bool, error)) (Recorded, bool, error) {
	if a.AttemptID != c.AttemptID || a.AttemptID == "" {
		return Recorded{}, false, core.E(core.KindInvalid, "record analysis", "the analysis is of attempt %q, the claim of %q", a.AttemptID, c.AttemptID)
	}
	if clearAfter <= 0 {
		clearAfter = DefaultFlakyClearAfter
	}
	now := s.Now()
	a.AnalyzedAt = now
	detail, err := json.Marshal(storedDetail(a))
	if err != nil {
		return Recorded{}, false, core.Wrap(core.KindInternal, "record analysis", err)
	}
	var rec Recorded
	var thenSaid bool
	err = s.drv.Write(ctx, func(q Queries) error {
		ok, err := q.FinishAnalysis(ctx, c)
		if err != nil {
			return err
		}
		if !ok {
			return core.E(core.KindLeaseLost, "record analysis "+a.AttemptID, "the claim's lease has passed; another replica has it")
		}
		if a.Digest != "" {
			if err := q.LockDigest(ctx, a.Digest); err != nil {
				return err
			}
		}
		inserted, err := q.InsertAnalysis(ctx, AnalysisRow{
			AttemptID: a.AttemptID, RunID: a.RunID, Job: a.Job, Scope: scope, Digest: a.Digest,
			State: string(a.State), Class: a.Class, Detail: string(detail), AnalyzedAt: now,
		})
		if err != nil || !inserted {
			return err
		}
		for _, f := range a.Failures {
			err := q.UpsertSignature(ctx, scope, a.AttemptID, core.FailureSignature{
				Signature: f.Signature, Test: f.ID, Message: clip(f.Message, 1024), FirstSeen: now, LastSeen: now,
			})
			if err != nil {
				return err
			}
		}
		if rec.NewFlaky, err = recordFlakiness(ctx, q, scope, a, now, clearAfter); err != nil {
			return err
		}
		if err := q.BumpJobStatus(ctx, a.RunID, a.JobID, now); err != nil {
			return err
		}
		if then != nil {
			thenSaid, err = then(&Tx{q: q, actor: AnalyzerActor, now: now})
		}
		return err
	})
	if err != nil {
		return Recorded{}, false, fmt.Errorf("record analysis of %s: %w", a.AttemptID, err)
	}
	return rec, thenSaid, nil
}

// AttemptJob returns an attempt and its job.
func (s *Store) AttemptJob(ctx context.Context, attemptID string) (core.Attempt, core.Job, error) {
	return s.drv.Read().GetAttemptJob(ctx, attemptID)
}

// passedAttempt and failedAttempt sort attempts for flakiness: a success,
// and a failure of the job's own making. Infrastructure faults prove
// nothing about the job.
func passedAttempt(st core.AttemptState) bool { return st == core.AttemptSucceeded }
func failedAttempt(st core.AttemptState) bool {
	return st == core.AttemptFailed || st == core.AttemptTimedOut
}

// recordFlakiness counts a's passes and failures against the scope's flaky
// rows of its job, then adds the evidence a and the earlier attempts with
// its digest give. It returns the rows given new evidence.
func recordFlakiness(ctx context.Context, q Queries, scope string, a core.Analysis, now time.Time, clearAfter int) ([]core.Flaky, error) {
	rows, err := q.ListFlaky(ctx, scope, a.Job)
	if err != nil {
		return nil, err
	}
	flaky := map[string]*core.Flaky{}
	var order []string
	for _, r := range rows {
		f, err := flakyFromRow(r)
		if err != nil {
			return nil, err
		}
		flaky[r.Test] = &f
		order = append(order, r.Test)
	}
	changed := map[string]bool{}
	failing := map[string]bool{}
	for _, f := range a.Failures {
		failing[f.ID] = true
	}
	passed := map[string]bool{}
	for _, id := range a.Passed {
		passed[id] = true
	}
	// Passes and failures of what is flaky now.
	for test, f := range flaky {
		if !f.Active() {
			continue
		}
		var pass, fail bool
		if test == "" {
			pass, fail = passedAttempt(a.State), failedAttempt(a.State)
		} else {
			fail = failing[test]
			pass = !fail && (passed[test] || passedAttempt(a.State))
		}
		switch {
		case fail:
			f.Passes, f.LastSeen = 0, now
		case pass:
			f.Passes++
			if f.Passes >= clearAfter {
				f.Cleared = now
			}
		default:
			continue
		}
		changed[test] = true
	}
	// Evidence: pairs of a and an earlier attempt with the same digest.
	var fresh []string
	addEvidence := func(test string, ev core.FlakyEvidence) {
		f := flaky[test]
		if f == nil {
			f = &core.Flaky{Job: a.Job, Test: test, Since: now}
			flaky[test] = f
			order = append(order, test)
		}
		for _, e := range f.Evidence {
			if e.Failed == ev.Failed && e.Passed == ev.Passed {
				return
			}
		}
		if !f.Active() {
			f.Since, f.Cleared = now, time.Time{}
		}
		f.Passes, f.LastSeen = 0, now
		f.Evidence = append(f.Evidence, ev)
		if len(f.Evidence) > maxEvidence {
			f.Evidence = f.Evidence[len(f.Evidence)-maxEvidence:]
		}
		changed[test] = true
		if !slices.Contains(fresh, test) {
			fresh = append(fresh, test)
		}
	}
	if a.Digest != "" {
		others, err := q.ListDigestAnalyses(ctx, scope, a.Digest, digestWindow)
		if err != nil {
			return nil, err
		}
		for _, r := range others {
			if r.AttemptID == a.AttemptID || r.Job != a.Job {
				continue
			}
			var sd analysisDetail
			if err := json.Unmarshal([]byte(r.Detail), &sd); err != nil {
				return nil, core.Wrap(core.KindInternal, "analysis of "+r.AttemptID, err)
			}
			o := sd.Analysis
			oPassed := map[string]bool{}
			for _, id := range sd.PassedIDs {
				oPassed[id] = true
			}
			pair := func(failed, passed string) core.FlakyEvidence {
				return core.FlakyEvidence{Digest: a.Digest, Failed: failed, Passed: passed, At: now}
			}
			switch {
			case failedAttempt(a.State) && passedAttempt(o.State):
				addEvidence("", pair(a.AttemptID, o.AttemptID))
			case passedAttempt(a.State) && failedAttempt(o.State):
				addEvidence("", pair(o.AttemptID, a.AttemptID))
			}
			// A test failed in one and passed in the other: a success
			// passed every test it ran; a failure passed those its
			// report lists as passed (kept with a failed attempt's
			// analysis for this).
			for _, f := range a.Failures {
				if passedAttempt(o.State) || oPassed[f.ID] {
					addEvidence(f.ID, pair(a.AttemptID, o.AttemptID))
				}
			}
			for _, f := range o.Failures {
				if !failing[f.ID] && (passed[f.ID] || passedAttempt(a.State)) {
					addEvidence(f.ID, pair(o.AttemptID, a.AttemptID))
				}
			}
		}
	}
	var out []core.Flaky
	for _, test := range order {
		if !changed[test] {
			continue
		}
		f := flaky[test]
		row, err := flakyRow(scope, *f)
		if err != nil {
			return nil, err
		}
		if err := q.UpsertFlaky(ctx, row); err != nil {
			return nil, err
		}
		if slices.Contains(fresh, test) {
			out = append(out, *f)
		}
	}
	return out, nil
}

func flakyRow(scope string, f core.Flaky) (FlakyRow, error) {
	ev, err := json.Marshal(f.Evidence)
	if err != nil {
		return FlakyRow{}, core.Wrap(core.KindInternal, "flaky evidence", err)
	}
	return FlakyRow{
		Scope: scope, Job: f.Job, Test: f.Test, Since: f.Since, LastSeen: f.LastSeen, Passes: f.Passes,
		ClearedAt: f.Cleared, Evidence: string(ev),
	}, nil
}

func flakyFromRow(r FlakyRow) (core.Flaky, error) {
	f := core.Flaky{Job: r.Job, Test: r.Test, Since: r.Since, LastSeen: r.LastSeen, Passes: r.Passes, Cleared: r.ClearedAt}
	if err := json.Unmarshal([]byte(r.Evidence), &f.Evidence); err != nil {
		return core.Flaky{}, core.Wrap(core.KindInternal, "flaky evidence", err)
	}
	return f, nil
}

// analysisDetail is the stored form of an analysis: with the ids of the
// tests a failed attempt passed, which flakiness needs when a later
// attempt of the same digest fails one of them. A success passed every
// test it ran, so its ids are not kept.
type analysisDetail struct {
	core.Analysis
	PassedIDs []string `json:"passed_ids,omitempty"`
}

func storedDetail(a core.Analysis) analysisDetail {
	d := analysisDetail{Analysis: a}
	if failedAttempt(a.State) {
		d.PassedIDs = a.Passed
	}
	return d
}

func analysisFromRow(r AnalysisRow) (core.Analysis, error) {
	var a core.Analysis
	if err := json.Unmarshal([]byte(r.Detail), &a); err != nil {
		return core.Analysis{}, core.Wrap(core.KindInternal, "analysis of "+r.AttemptID, err)
	}
	return a, nil
}

// Analysis returns the analysis of one attempt, or a core.KindNotFound
// error when it has none (yet).
func (s *Store) Analysis(ctx context.Context, attemptID string) (core.Analysis, error) {
	r, err := s.drv.Read().GetAnalysis(ctx, attemptID)
	if err != nil {
		return core.Analysis{}, err
	}
	return analysisFromRow(r)
}

// RunAnalyses returns the analyses of a run's attempts, in the order they
// were made.
func (s *Store) RunAnalyses(ctx context.Context, runID string) ([]core.Analysis, error) {
	rows, err := s.drv.Read().ListRunAnalyses(ctx, runID)
	if err != nil {
		return nil, err
	}
	out := make([]core.Analysis, 0, len(rows))
	for _, r := range rows {
		a, err := analysisFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Flaky returns a scope's flaky jobs and tests, those cleared included,
// of one job when job is set, by job and test.
func (s *Store) Flaky(ctx context.Context, scope, job string) ([]core.Flaky, error) {
	rows, err := s.drv.Read().ListFlaky(ctx, scope, job)
	if err != nil {
		return nil, err
	}
	out := make([]core.Flaky, 0, len(rows))
	for _, r := range rows {
		f, err := flakyFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// Signature returns a scope's failure signature, or core.KindNotFound.
func (s *Store) Signature(ctx context.Context, scope, signature string) (core.FailureSignature, error) {
	return s.drv.Read().GetSignature(ctx, scope, signature)
}

// RunBase is the base a run was planned against.
type RunBase struct {
	Commit string
	// ChangedPaths counts the paths that differ between the base and the
	// run's commit (with a local run's uncommitted ones); -1 when not
	// recorded, as for runs planned before it was.
	ChangedPaths int
}

// RunBase returns the base a run was planned against, or a
// core.KindNotFound error for a run without one.
func (s *Store) RunBase(ctx context.Context, runID string) (RunBase, error) {
	return s.drv.Read().GetRunBase(ctx, runID)
}

// BaseAttempt returns the attempt that holds the base's result for a job
// of run: at the run's base commit, the latest ended job of that name in a
// run of the same project and repository, and its last attempt, or the
// attempt it reused. It returns core.KindNotFound when there is none.
func (s *Store) BaseAttempt(ctx context.Context, run core.Run, job string) (core.Attempt, error) {
	q := s.drv.Read()
	base, err := q.GetRunBase(ctx, run.ID)
	if err != nil {
		return core.Attempt{}, err
	}
	jobID, err := q.FindBaseJob(ctx, run, base.Commit, job)
	if err != nil {
		return core.Attempt{}, err
	}
	j, err := q.GetJob(ctx, jobID)
	if err != nil {
		return core.Attempt{}, err
	}
	if j.State == core.JobReused {
		if j.ReusedFrom == "" {
			return core.Attempt{}, core.E(core.KindNotFound, "base attempt", "the base's job %s reused a result of no recorded attempt", job)
		}
		return q.GetAttempt(ctx, j.ReusedFrom)
	}
	attempts, err := q.ListJobAttempts(ctx, j.ID)
	if err != nil {
		return core.Attempt{}, err
	}
	for i := len(attempts) - 1; i >= 0; i-- {
		if attempts[i].State.Terminal() {
			return attempts[i], nil
		}
	}
	return core.Attempt{}, core.E(core.KindNotFound, "base attempt", "the base's job %s has no ended attempt", job)
}

// Flaky returns the scope's flaky rows of one job, within the transaction.
func (tx *Tx) Flaky(ctx context.Context, scope, job string) ([]core.Flaky, error) {
	rows, err := tx.q.ListFlaky(ctx, scope, job)
	if err != nil {
		return nil, err
	}
	out := make([]core.Flaky, 0, len(rows))
	for _, r := range rows {
		f, err := flakyFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}
