package orchestrator_test

import (
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/orchestrator"
	"github.com/deltaci/deltaci/internal/store"
)

// flakyJob is a job with retry.flaky and input digest d.
func flakyJob(n int) store.NewJob {
	j := job("unit")
	j.Spec.Retry.Flaky = n
	j.Digest = "sha256:d"
	return j
}

// runOnce leases the run's queued attempt and ends it failed (with a
// non-zero exit) or succeeded, and returns it.
func runOnce(t *testing.T, b bundle, runID string, fail bool) core.Attempt {
	t.Helper()
	a, _, err := b.o.Lease(b.ctx, runID, "r1", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
	if err := b.o.StartAttempt(b.ctx, "r1", a, f); err != nil {
		t.Fatal(err)
	}
	out := orchestrator.Outcome{State: core.AttemptSucceeded}
	if fail {
		one := 1
		out = orchestrator.Outcome{State: core.AttemptFailed, Reason: core.ReasonExitCode, ExitCode: &one}
	}
	if err := b.o.CompleteAttempt(b.ctx, "r1", core.Attempt{}, f, out); err != nil {
		t.Fatal(err)
	}
	if a, err = b.s.Attempt(b.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	return a
}

// analyze records a's analysis, with the tests failing, as the analyzer
// does: SettleAnalyzed in the same transaction, Advance after it.
func analyze(t *testing.T, b bundle, a core.Attempt, failing ...string) {
	t.Helper()
	c, err := b.s.ClaimAnalysis(b.ctx, time.Minute)
	if err != nil || c.AttemptID != a.ID {
		t.Fatalf("ClaimAnalysis = %+v, %v; want attempt %s", c, err, a.ID)
	}
	j, err := b.s.Job(b.ctx, a.JobID)
	if err != nil {
		t.Fatal(err)
	}
	an := core.Analysis{AttemptID: a.ID, RunID: a.RunID, JobID: a.JobID, Job: "unit", Number: a.Number, Digest: j.Digest, State: a.State}
	for _, id := range failing {
		an.Failures = append(an.Failures, core.TestFailure{ID: id, Name: id, Signature: id})
	}
	if a.State == core.AttemptSucceeded {
		an.Passed = []string{"TestFlaky"}
	}
	run, err := b.s.Run(b.ctx, a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	scope := store.Scope(run)
	_, ended, err := b.s.RecordAnalysisThen(b.ctx, c, scope, an, 0, func(tx *store.Tx) (bool, error) {
		return b.o.SettleAnalyzed(b.ctx, tx, an, scope)
	})
	if err != nil {
		t.Fatal(err)
	}
	if ended {
		if err := b.o.Advance(b.ctx, a.RunID); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFlakyRetryWaitsForTheAnalysis(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir())

	// A failure of a test not known flaky: the job waits for the
	// analysis, then fails.
	r1 := create(t, b, flakyJob(1))
	a1 := runOnce(t, b, r1.ID, true)
	if run, js := states(t, b, r1.ID); run.State != core.RunRunning || js["unit"] != core.JobRunning {
		t.Fatalf("before the analysis: run %s, job %s; want both running", run.State, js["unit"])
	}
	analyze(t, b, a1, "TestFlaky")
	if run, js := states(t, b, r1.ID); run.State != core.RunFailed || js["unit"] != core.JobFailed {
		t.Fatalf("after the analysis: run %s, job %s; want both failed", run.State, js["unit"])
	}

	// The same inputs pass: TestFlaky is proven flaky.
	r2 := create(t, b, flakyJob(1))
	analyze(t, b, runOnce(t, b, r2.ID, false))

	// Now its failure earns a retry, once.
	r3 := create(t, b, flakyJob(1))
	first := runOnce(t, b, r3.ID, true)
	analyze(t, b, first, "TestFlaky")
	second := runOnce(t, b, r3.ID, true)
	if second.Number != 2 {
		t.Fatalf("the retry is attempt %d", second.Number)
	}
	evs, err := b.s.Events(b.ctx, r3.ID)
	if err != nil {
		t.Fatal(err)
	}
	var reason core.Reason
	for _, e := range evs {
		if e.EntityID == second.ID && e.From == "" {
			reason = e.Reason
		}
	}
	if reason != core.ReasonFlakyRetry {
		t.Errorf("the retry's queued event has reason %q, want flaky_retry", reason)
	}
	// The flaky retries are used up: the second failure ends the job at
	// once, without waiting.
	if run, js := states(t, b, r3.ID); run.State != core.RunFailed || js["unit"] != core.JobFailed {
		t.Fatalf("after the second failure: run %s, job %s; want both failed", run.State, js["unit"])
	}
	analyze(t, b, second, "TestFlaky")

	// A test not known flaky beside a flaky one: no retry. (Other inputs:
	// with these, r2's success would prove TestOther flaky too.)
	other := flakyJob(1)
	other.Digest = "sha256:e"
	r4 := create(t, b, other)
	analyze(t, b, runOnce(t, b, r4.ID, true), "TestFlaky", "TestOther")
	if run, _ := states(t, b, r4.ID); run.State != core.RunFailed {
		t.Fatalf("a failure with a test not known flaky: run %s", run.State)
	}
}

func TestCanceledWhileWaitingForTheAnalysis(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir())
	r := create(t, b, flakyJob(1))
	a := runOnce(t, b, r.ID, true)
	if err := b.o.Cancel(b.ctx, "test", r.ID); err != nil {
		t.Fatal(err)
	}
	if run, _ := states(t, b, r.ID); run.State != core.RunCanceling {
		t.Fatalf("run %s while its job waits for the analysis, want canceling", run.State)
	}
	analyze(t, b, a, "TestFlaky")
	if run, js := states(t, b, r.ID); run.State != core.RunCanceled || js["unit"] != core.JobCanceled {
		t.Fatalf("after the analysis: run %s, job %s; want canceled", run.State, js["unit"])
	}
}
