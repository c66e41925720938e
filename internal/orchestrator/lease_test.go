package orchestrator_test

import (
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

func TestLeaseAnyMatchesLabels(t *testing.T) {
	b := setup(t, t.TempDir())
	gpu := job("gpu")
	gpu.Spec.RunsOn = []string{"gpu"}
	r := create(t, b, gpu)
	if _, err := b.o.LeaseAny(b.ctx, "r1", []string{"linux"}, 20*time.Second); core.KindOf(err) != core.KindNotFound {
		t.Fatalf("a runner without the gpu label leased: %v", err)
	}
	l, err := b.o.LeaseAny(b.ctx, "r2", []string{"linux", "gpu"}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if l.Run.ID != r.ID || l.Job.Name != "gpu" || l.Attempt.RunnerID != "r2" || l.Attempt.State != core.AttemptLeased {
		t.Fatalf("leased %+v", l)
	}
}

// TestReleaseRequeuesWithoutARetry hands back an unstarted lease: the
// attempt ends lost/released and a new one is queued even though the job's
// retry policy allows no retry for that.
func TestReleaseRequeuesWithoutARetry(t *testing.T) {
	b := setup(t, t.TempDir())
	j := job("a")
	j.Spec.Retry = core.RetryPolicy{}
	r := create(t, b, j)
	l, err := b.o.LeaseAny(b.ctx, "r1", nil, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f := store.Fence{AttemptID: l.Attempt.ID, LeaseToken: l.Attempt.LeaseToken}
	if err := b.o.Release(b.ctx, "r1", f); err != nil {
		t.Fatal(err)
	}
	// The same release again gets the same answer.
	if err := b.o.Release(b.ctx, "r1", f); err != nil {
		t.Fatalf("repeated release: %v", err)
	}
	if err := b.o.Release(b.ctx, "r1", store.Fence{AttemptID: l.Attempt.ID, LeaseToken: "stale"}); core.KindOf(err) != core.KindLeaseLost {
		t.Fatalf("release with a wrong token: got %v, want lease_lost", err)
	}
	old, err := b.s.Attempt(b.ctx, l.Attempt.ID)
	if err != nil {
		t.Fatal(err)
	}
	if old.State != core.AttemptLost || old.Reason != core.ReasonReleased {
		t.Fatalf("released attempt is %s/%s, want lost/released", old.State, old.Reason)
	}
	next, err := b.o.LeaseAny(b.ctx, "r2", nil, 20*time.Second)
	if err != nil {
		t.Fatalf("no new attempt after a release: %v", err)
	}
	if next.Attempt.Number != 2 || next.Job.ID != l.Job.ID {
		t.Fatalf("next attempt %+v", next.Attempt)
	}
	// A started attempt cannot be handed back.
	f2 := store.Fence{AttemptID: next.Attempt.ID, LeaseToken: next.Attempt.LeaseToken}
	if err := b.o.StartAttempt(b.ctx, "r2", next.Attempt, f2); err != nil {
		t.Fatal(err)
	}
	if err := b.o.Release(b.ctx, "r2", f2); core.KindOf(err) != core.KindConflict {
		t.Fatalf("release of a running attempt: got %v, want conflict", err)
	}
	if err := b.o.CompleteAttempt(b.ctx, "r2", core.Attempt{}, f2, ok()); err != nil {
		t.Fatal(err)
	}
	run, jobs := states(t, b, r.ID)
	if run.State != core.RunSucceeded || jobs["a"] != core.JobSucceeded {
		t.Fatalf("run %s, job %s", run.State, jobs["a"])
	}
}

// TestReleaseDuringCancelCancelsTheJob: a lease handed back while its run
// is being canceled is not queued again.
func TestReleaseDuringCancelCancelsTheJob(t *testing.T) {
	b := setup(t, t.TempDir())
	r := create(t, b, job("a"))
	l, err := b.o.LeaseAny(b.ctx, "r1", nil, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.o.Cancel(b.ctx, "test", r.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.o.Release(b.ctx, "r1", store.Fence{AttemptID: l.Attempt.ID, LeaseToken: l.Attempt.LeaseToken}); err != nil {
		t.Fatal(err)
	}
	run, jobs := states(t, b, r.ID)
	if run.State != core.RunCanceled || jobs["a"] != core.JobCanceled {
		t.Fatalf("run %s, job %s; want canceled, canceled", run.State, jobs["a"])
	}
}

func TestFailStalePlanning(t *testing.T) {
	b := setup(t, t.TempDir())
	stale, _, err := b.s.CreateRun(b.ctx, "test", store.NewRun{Event: core.EventManual, Jobs: []store.NewJob{job("a")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.o.BeginPlanning(b.ctx, stale.ID); err != nil {
		t.Fatal(err)
	}
	b.clock.add(10 * time.Minute)
	fresh, _, err := b.s.CreateRun(b.ctx, "test", store.NewRun{Event: core.EventManual, Jobs: []store.NewJob{job("a")}})
	if err != nil {
		t.Fatal(err)
	}
	started := create(t, b, job("a"))
	b.clock.add(time.Minute)
	ended, err := b.o.FailStalePlanning(b.ctx, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(ended) != 1 || ended[0] != stale.ID {
		t.Fatalf("ended %v, want only %s", ended, stale.ID)
	}
	for id, want := range map[string]core.RunState{stale.ID: core.RunErrored, fresh.ID: core.RunQueued, started.ID: core.RunRunning} {
		if r, _ := b.s.Run(b.ctx, id); r.State != want {
			t.Errorf("run %s is %s, want %s", id, r.State, want)
		}
	}
}
