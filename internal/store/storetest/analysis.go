package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// endedRun makes a run of one job "a" at commit (against base, "" for
// none) whose job has digest, and ends its attempt in st (a success moves
// the job to succeeded). It returns the run and the attempt.
func endedRun(t *testing.T, b bundle, project, commit, base, digest string, st core.AttemptState) (core.Run, core.Attempt) {
	t.Helper()
	r, jobs, err := b.s.CreateRun(b.ctx, "test", store.NewRun{
		Repo: "/repo", Project: project, Ref: "main", Commit: commit, Event: core.EventPush, Base: base,
		Jobs: []store.NewJob{{Spec: spec("a"), Digest: digest}},
	})
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	mustUpdate(t, b, func(tx *store.Tx) error {
		if err := tx.MoveRun(b.ctx, r.ID, core.RunQueued, core.RunPlanning, ""); err != nil {
			return err
		}
		if err := tx.MoveRun(b.ctx, r.ID, core.RunPlanning, core.RunRunning, ""); err != nil {
			return err
		}
		if err := tx.MoveJob(b.ctx, jobs[0], core.JobQueued, ""); err != nil {
			return err
		}
		_, err := tx.EnqueueAttempt(b.ctx, core.Job{ID: jobs[0].ID, RunID: r.ID, Name: "a", Spec: jobs[0].Spec})
		return err
	})
	a := endAttempt(t, b, r.ID, st)
	mustUpdate(t, b, func(tx *store.Tx) error {
		j, err := tx.Job(b.ctx, jobs[0].ID)
		if err != nil {
			return err
		}
		if j.State == core.JobQueued {
			if err := tx.MoveJob(b.ctx, j, core.JobRunning, ""); err != nil {
				return err
			}
			j.State = core.JobRunning
		}
		end := core.JobFailed
		if st == core.AttemptSucceeded {
			end = core.JobSucceeded
		}
		return tx.MoveJob(b.ctx, j, end, a.Reason)
	})
	return r, a
}

// endAttempt leases the run's queued attempt, runs it and ends it in st.
func endAttempt(t *testing.T, b bundle, runID string, st core.AttemptState) core.Attempt {
	t.Helper()
	c, err := b.s.ClaimAttempt(b.ctx, "runner-1", store.Claim{RunID: runID, RunnerID: "runner-1", TTL: 20 * time.Second})
	if err != nil {
		t.Fatalf("ClaimAttempt: %v", err)
	}
	f := store.Fence{AttemptID: c.Attempt.ID, LeaseToken: c.Attempt.LeaseToken}
	var a core.Attempt
	mustUpdate(t, b, func(tx *store.Tx) error {
		if _, err := tx.MoveLeased(b.ctx, f, core.AttemptRunning, "", nil); err != nil {
			return err
		}
		reason, code := core.ReasonNone, 0
		if st == core.AttemptFailed {
			reason, code = core.ReasonExitCode, 1
		}
		a, err = tx.MoveLeased(b.ctx, f, st, reason, &code)
		return err
	})
	return a
}

func claimAnalysis(t *testing.T, b bundle, wantAttempt string) store.AnalysisClaim {
	t.Helper()
	c, err := b.s.ClaimAnalysis(b.ctx, time.Minute)
	if err != nil {
		t.Fatalf("ClaimAnalysis: %v", err)
	}
	if c.AttemptID != wantAttempt {
		t.Fatalf("claimed the analysis of %s, want %s", c.AttemptID, wantAttempt)
	}
	return c
}

// analysisOf is an analysis of a with the failing tests named.
func analysisOf(a core.Attempt, digest string, failing []string, passed ...string) core.Analysis {
	an := core.Analysis{AttemptID: a.ID, RunID: a.RunID, JobID: a.JobID, Job: "a", Number: a.Number, Digest: digest, State: a.State, Passed: passed}
	for _, id := range failing {
		an.Failures = append(an.Failures, core.TestFailure{ID: id, Name: id, Message: "boom", Signature: "sig-" + id})
	}
	an.Totals = core.TestTotals{Passed: len(passed), Failed: len(failing)}
	if a.State != core.AttemptSucceeded {
		an.Class = "test"
	}
	return an
}

func record(t *testing.T, b bundle, a core.Attempt, scope string, an core.Analysis, clearAfter int) store.Recorded {
	t.Helper()
	c := claimAnalysis(t, b, a.ID)
	rec, err := b.s.RecordAnalysis(b.ctx, c, scope, an, clearAfter)
	if err != nil {
		t.Fatalf("RecordAnalysis: %v", err)
	}
	return rec
}

func flakyOf(t *testing.T, b bundle, scope string) map[string]core.Flaky {
	t.Helper()
	fs, err := b.s.Flaky(b.ctx, scope, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]core.Flaky{}
	for _, f := range fs {
		out[f.Test] = f
	}
	return out
}

// RunAnalysis is the conformance suite of the Failure Analyzer's rows:
// the work queue, analyses, signatures, flakiness and base results.
func RunAnalysis(t *testing.T, open Opener) {
	t.Run("EndedAttemptsAreQueuedInTheirTransaction", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, job, a := startedAttempt(t, b)
		_, err := b.s.ClaimAnalysis(b.ctx, time.Minute)
		wantKind(t, err, core.KindNotFound) // a running attempt is not analyzed
		if n, _ := b.s.PendingAnalyses(b.ctx, a.RunID); n != 0 {
			t.Fatalf("pending analyses of a running attempt: %d", n)
		}
		f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
		code := 2
		mustUpdate(t, b, func(tx *store.Tx) error {
			_, err := tx.MoveLeased(b.ctx, f, core.AttemptFailed, core.ReasonExitCode, &code)
			return err
		})
		if n, err := b.s.PendingAnalyses(b.ctx, a.RunID); err != nil || n != 1 {
			t.Fatalf("PendingAnalyses = %d, %v; want 1", n, err)
		}
		n, oldest, err := b.s.AnalysisBacklog(b.ctx)
		if err != nil || n != 1 || !oldest.Equal(b.s.Now()) {
			t.Fatalf("AnalysisBacklog = %d, %v, %v; want 1 at %v", n, oldest, err, b.s.Now())
		}
		c := claimAnalysis(t, b, a.ID)
		if c.RunID != job.RunID || c.Tries != 1 {
			t.Errorf("claim = %+v", c)
		}
		// A canceled attempt has nothing to analyze.
		r2, _ := queuedAttempt(t, b)
		atts, err := b.s.Attempts(b.ctx, r2.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustUpdate(t, b, func(tx *store.Tx) error {
			return tx.MoveAttempt(b.ctx, atts[0], core.AttemptCanceled, core.ReasonCanceled)
		})
		if n, _ := b.s.PendingAnalyses(b.ctx, r2.ID); n != 0 {
			t.Errorf("a canceled attempt was queued for analysis")
		}
	})

	t.Run("ClaimsAreFencedAndExpire", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, a := endedRun(t, b, "p", "c1", "", "sha256:d", core.AttemptFailed)
		c1 := claimAnalysis(t, b, a.ID)
		_, err := b.s.ClaimAnalysis(b.ctx, time.Minute)
		wantKind(t, err, core.KindNotFound) // claimed already
		b.clock.advance(2 * time.Minute)
		c2 := claimAnalysis(t, b, a.ID) // the first claim lapsed: another replica takes it
		if c2.Tries != 2 || c2.Claim == c1.Claim {
			t.Fatalf("second claim = %+v", c2)
		}
		_, err = b.s.RecordAnalysis(b.ctx, c1, "p", analysisOf(a, "sha256:d", nil), 0)
		wantKind(t, err, core.KindLeaseLost)
		err = b.s.RetryAnalysis(b.ctx, c1, time.Second, "late")
		wantKind(t, err, core.KindLeaseLost)
		if err := b.s.RetryAnalysis(b.ctx, c2, time.Minute, "the store is down"); err != nil {
			t.Fatal(err)
		}
		_, err = b.s.ClaimAnalysis(b.ctx, time.Minute)
		wantKind(t, err, core.KindNotFound) // not due yet
		b.clock.advance(time.Minute)
		c3 := claimAnalysis(t, b, a.ID)
		if c3.LastError != "the store is down" {
			t.Errorf("last error = %q", c3.LastError)
		}
		if _, err := b.s.RecordAnalysis(b.ctx, c3, "p", analysisOf(a, "sha256:d", []string{"T"}), 0); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := b.s.AnalysisBacklog(b.ctx); n != 0 {
			t.Errorf("backlog after recording = %d", n)
		}
		_, err = b.s.Analysis(b.ctx, "nope")
		wantKind(t, err, core.KindNotFound)
	})

	t.Run("AnalysisRoundTripAndSignatures", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, a1 := endedRun(t, b, "p", "c1", "", "sha256:1", core.AttemptFailed)
		an := analysisOf(a1, "sha256:1", []string{"pkg::TestA"}, "pkg::TestB")
		an.Failures[0].Location = "a_test.go:12"
		an.Failures[0].Output = "a_test.go:12: boom"
		an.Excerpt = &core.LogExcerpt{Text: "FAIL", Start: 10, End: 14, ErrorStart: 10, ErrorEnd: 14, ErrorLine: 2, Pattern: "exit"}
		an.Reports = 1
		record(t, b, a1, "p", an, 0)
		got, err := b.s.Analysis(b.ctx, a1.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := an
		want.Passed = nil // used while recording, not kept
		want.AnalyzedAt = b.s.Now()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("analysis round trip (-want +got):\n%s", diff)
		}
		first := b.s.Now()
		b.clock.advance(time.Hour)
		_, a2 := endedRun(t, b, "p", "c2", "", "sha256:2", core.AttemptFailed)
		record(t, b, a2, "p", analysisOf(a2, "sha256:2", []string{"pkg::TestA"}), 0)
		sig, err := b.s.Signature(b.ctx, "p", "sig-pkg::TestA")
		if err != nil {
			t.Fatal(err)
		}
		wantSig := core.FailureSignature{
			Signature: "sig-pkg::TestA", Test: "pkg::TestA", Message: "boom", FirstSeen: first, LastSeen: b.s.Now(), Count: 2, LastAttempt: a2.ID,
		}
		if diff := cmp.Diff(wantSig, sig); diff != "" {
			t.Errorf("signature (-want +got):\n%s", diff)
		}
		_, err = b.s.Signature(b.ctx, "other", "sig-pkg::TestA")
		wantKind(t, err, core.KindNotFound) // signatures are per scope
		runs, err := b.s.RunAnalyses(b.ctx, a2.RunID)
		if err != nil || len(runs) != 1 || runs[0].AttemptID != a2.ID {
			t.Errorf("RunAnalyses = %+v, %v", runs, err)
		}
	})

	t.Run("FlakyByDigestWithEvidenceAndClearing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		const d = "sha256:same"
		_, fail := endedRun(t, b, "p", "c1", "", d, core.AttemptFailed)
		rec := record(t, b, fail, "p", analysisOf(fail, d, []string{"TestFlaky"}, "TestOK"), 3)
		if len(rec.NewFlaky) != 0 {
			t.Fatalf("one failure proved flakiness: %+v", rec.NewFlaky)
		}
		// The same inputs on another commit pass: the job and the test
		// are flaky, with the pair as evidence.
		_, pass := endedRun(t, b, "p", "c2", "", d, core.AttemptSucceeded)
		rec = record(t, b, pass, "p", analysisOf(pass, d, nil, "TestFlaky", "TestOK"), 3)
		if len(rec.NewFlaky) != 2 {
			t.Fatalf("NewFlaky = %+v, want the job and TestFlaky", rec.NewFlaky)
		}
		ev := []core.FlakyEvidence{{Digest: d, Failed: fail.ID, Passed: pass.ID, At: b.s.Now()}}
		fl := flakyOf(t, b, "p")
		for _, test := range []string{"", "TestFlaky"} {
			f, ok := fl[test]
			if !ok || !f.Active() || f.Job != "a" {
				t.Fatalf("flaky %q = %+v (found %v)", test, f, ok)
			}
			if diff := cmp.Diff(ev, f.Evidence); diff != "" {
				t.Errorf("evidence of %q (-want +got):\n%s", test, diff)
			}
		}
		if _, ok := fl["TestOK"]; ok {
			t.Errorf("TestOK, which never failed, is flaky")
		}
		// Another digest that fails does not make evidence, and a
		// failure of the flaky test resets its passes.
		_, other := endedRun(t, b, "p", "c3", "", "sha256:other", core.AttemptFailed)
		record(t, b, other, "p", analysisOf(other, "sha256:other", []string{"TestFlaky"}), 3)
		fl = flakyOf(t, b, "p")
		if len(fl[""].Evidence) != 1 || fl["TestFlaky"].Passes != 0 {
			t.Fatalf("after a failure elsewhere: %+v", fl)
		}
		// Three passes in a row clear both.
		for i := range 3 {
			_, p := endedRun(t, b, "p", "c4", "", "sha256:p"+string(rune('0'+i)), core.AttemptSucceeded)
			record(t, b, p, "p", analysisOf(p, "sha256:p", nil, "TestFlaky"), 3)
			fl = flakyOf(t, b, "p")
			if got := fl["TestFlaky"].Passes; got != i+1 {
				t.Fatalf("after %d passes: passes = %d", i+1, got)
			}
		}
		fl = flakyOf(t, b, "p")
		if fl[""].Active() || fl["TestFlaky"].Active() {
			t.Fatalf("not cleared after 3 passes: %+v", fl)
		}
		// Other scopes see nothing.
		if other := flakyOf(t, b, "q"); len(other) != 0 {
			t.Errorf("scope q has %+v", other)
		}
		// New evidence makes it flaky again.
		_, again := endedRun(t, b, "p", "c5", "", d, core.AttemptFailed)
		rec = record(t, b, again, "p", analysisOf(again, d, []string{"TestFlaky"}), 3)
		fl = flakyOf(t, b, "p")
		if !fl["TestFlaky"].Active() || len(fl["TestFlaky"].Evidence) != 2 || len(rec.NewFlaky) != 2 {
			t.Fatalf("after new evidence: %+v (new %+v)", fl["TestFlaky"], rec.NewFlaky)
		}
	})

	t.Run("FlakyTestBetweenTwoFailures", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		const d = "sha256:same"
		_, a1 := endedRun(t, b, "p", "c1", "", d, core.AttemptFailed)
		record(t, b, a1, "p", analysisOf(a1, d, []string{"TestX"}, "TestY"), 0)
		// The second attempt fails another test but passes TestX.
		_, a2 := endedRun(t, b, "p", "c1", "", d, core.AttemptFailed)
		record(t, b, a2, "p", analysisOf(a2, d, []string{"TestY"}, "TestX"), 0)
		fl := flakyOf(t, b, "p")
		if f, ok := fl["TestX"]; !ok || len(f.Evidence) != 1 || f.Evidence[0].Failed != a1.ID || f.Evidence[0].Passed != a2.ID {
			t.Fatalf("TestX = %+v (found %v)", f, ok)
		}
		// And the other way: TestY failed in the later attempt and passed
		// in the earlier one, which its stored analysis remembers.
		if f, ok := fl["TestY"]; !ok || len(f.Evidence) != 1 || f.Evidence[0].Failed != a2.ID || f.Evidence[0].Passed != a1.ID {
			t.Fatalf("TestY = %+v (found %v)", f, ok)
		}
		if _, ok := fl[""]; ok {
			t.Errorf("the job failed twice and is called flaky")
		}
	})

	t.Run("ConcurrentAttemptsOfOneDigestFindEachOther", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		const d = "sha256:race"
		_, fail := endedRun(t, b, "p", "c1", "", d, core.AttemptFailed)
		_, pass := endedRun(t, b, "p", "c2", "", d, core.AttemptSucceeded)
		c1 := claimAnalysis(t, b, fail.ID)
		c2 := claimAnalysis(t, b, pass.ID)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, job := range []struct {
			c  store.AnalysisClaim
			an core.Analysis
		}{{c1, analysisOf(fail, d, []string{"T"})}, {c2, analysisOf(pass, d, nil, "T")}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = b.s.RecordAnalysis(context.Background(), job.c, "p", job.an, 0)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if f, ok := flakyOf(t, b, "p")[""]; !ok || len(f.Evidence) != 1 {
			t.Fatalf("two attempts recorded at once missed each other: %+v", f)
		}
	})

	t.Run("BaseAttempt", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, baseAttempt := endedRun(t, b, "p", "base", "", "sha256:b", core.AttemptFailed)
		// A run of another project at the same commit is not the base.
		endedRun(t, b, "q", "base", "", "sha256:b", core.AttemptSucceeded)
		head, _ := endedRun(t, b, "p", "head", "base", "sha256:h", core.AttemptFailed)
		got, err := b.s.BaseAttempt(b.ctx, head, "a")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != baseAttempt.ID {
			t.Errorf("BaseAttempt = %s, want %s", got.ID, baseAttempt.ID)
		}
		if c, err := b.s.RunBase(b.ctx, head.ID); err != nil || c != (store.RunBase{Commit: "base", ChangedPaths: -1}) {
			t.Errorf("RunBase = %+v, %v; want base with an unknown count", c, err)
		}
		// A run at its own base commit is not its own base.
		self, _ := endedRun(t, b, "p", "base", "base", "sha256:b", core.AttemptFailed)
		if got, err := b.s.BaseAttempt(b.ctx, self, "a"); err != nil || got.ID != baseAttempt.ID {
			t.Errorf("BaseAttempt of a run at its base = %s, %v; want the earlier run's %s", got.ID, err, baseAttempt.ID)
		}
		_, err = b.s.BaseAttempt(b.ctx, head, "nope")
		wantKind(t, err, core.KindNotFound)
		noBase, _ := endedRun(t, b, "p", "x", "", "sha256:x", core.AttemptFailed)
		_, err = b.s.BaseAttempt(b.ctx, noBase, "a")
		wantKind(t, err, core.KindNotFound)
		_, err = b.s.RunBase(b.ctx, noBase.ID)
		wantKind(t, err, core.KindNotFound)
	})

	t.Run("ChangedPaths", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		for _, n := range []int{0, 7} {
			r, _, err := b.s.CreateRun(b.ctx, "test", store.NewRun{
				Repo: "/repo", Project: "p", Ref: "main", Commit: "head", Event: core.EventPush, Base: "base", ChangedPaths: &n,
				Jobs: []store.NewJob{{Spec: spec("a")}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := b.s.RunBase(b.ctx, r.ID); err != nil || got != (store.RunBase{Commit: "base", ChangedPaths: n}) {
				t.Errorf("RunBase = %+v, %v; want base with %d changed paths", got, err, n)
			}
		}
		// Without a base nothing is kept, not even a count.
		n := 3
		r, _, err := b.s.CreateRun(b.ctx, "test", store.NewRun{Repo: "/repo", Ref: "main", Commit: "c", Event: core.EventPush, ChangedPaths: &n,
			Jobs: []store.NewJob{{Spec: spec("a")}}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.s.RunBase(b.ctx, r.ID)
		wantKind(t, err, core.KindNotFound)
	})
}
