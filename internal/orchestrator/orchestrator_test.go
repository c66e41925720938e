package orchestrator_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/orchestrator"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type bundle struct {
	o     *orchestrator.Orchestrator
	s     *store.Store
	clock *fakeClock
	ctx   context.Context
}

func setup(t testing.TB, dir string) bundle {
	t.Helper()
	drv, err := sqlite.Open(context.Background(), filepath.Join(dir, "state.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := store.New(drv, store.WithClock(c.now))
	t.Cleanup(func() { s.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return bundle{o: orchestrator.New(s, log, orchestrator.NewNotifier()), s: s, clock: c, ctx: context.Background()}
}

func job(name string, needs ...string) store.NewJob {
	return store.NewJob{Spec: core.JobSpec{Name: name, Run: "true", Needs: needs, Retry: core.DefaultRetry, Reuse: true}}
}

func create(t testing.TB, b bundle, jobs ...store.NewJob) core.Run {
	t.Helper()
	r, _, err := b.s.CreateRun(b.ctx, "test", store.NewRun{Repo: "/r", Event: core.EventManual, Jobs: jobs})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.o.StartRun(b.ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	return r
}

// drain leases and completes attempts with outcomes from pick until the run ends.
func drain(t testing.TB, b bundle, runID string, pick func(core.Job, core.Attempt) orchestrator.Outcome) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		a, j, err := b.o.Lease(b.ctx, runID, "r1", 20*time.Second)
		if core.KindOf(err) == core.KindNotFound {
			run, err := b.s.Run(b.ctx, runID)
			if err != nil {
				t.Fatal(err)
			}
			if !run.State.Terminal() {
				t.Fatalf("nothing queued but run is %s", run.State)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
		out := pick(j, a)
		// The attempt as an API handler saw it: leased before the start,
		// running after it.
		seen := a
		if out.State != core.AttemptErrored && out.State != core.AttemptLost {
			if err := b.o.StartAttempt(b.ctx, "r1", seen, f); err != nil {
				t.Fatal(err)
			}
			seen.State = core.AttemptRunning
		}
		if out.State == core.AttemptLost {
			b.clock.add(time.Minute)
			if _, err := b.o.ReapExpired(b.ctx, 100); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := b.o.CompleteAttempt(b.ctx, "r1", seen, f, out); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("run did not end")
}

func states(t testing.TB, b bundle, runID string) (core.Run, map[string]core.JobState) {
	t.Helper()
	run, err := b.s.Run(b.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := b.s.Jobs(b.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]core.JobState{}
	for _, j := range jobs {
		m[j.Name] = j.State
	}
	return run, m
}

func ok() orchestrator.Outcome { return orchestrator.Outcome{State: core.AttemptSucceeded} }

func fail(code int) orchestrator.Outcome {
	return orchestrator.Outcome{State: core.AttemptFailed, Reason: core.ReasonExitCode, ExitCode: &code}
}

func TestDiamondSucceeds(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir())
	r := create(t, b, job("a"), job("b", "a"), job("c", "a"), job("d", "b", "c"))
	var order []string
	drain(t, b, r.ID, func(j core.Job, _ core.Attempt) orchestrator.Outcome {
		order = append(order, j.Name)
		return ok()
	})
	run, js := states(t, b, r.ID)
	if run.State != core.RunSucceeded {
		t.Fatalf("run = %s", run.State)
	}
	for n, s := range js {
		if s != core.JobSucceeded {
			t.Errorf("job %s = %s", n, s)
		}
	}
	if order[0] != "a" || order[3] != "d" {
		t.Errorf("order = %v", order)
	}
}

func TestPlannedDecisionsApplyAtStart(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir())
	reused, skipped := job("lib"), job("deploy")
	reused.Decision, reused.ReusedFrom = core.JobReused, "earlier-attempt"
	skipped.Decision = core.JobSkipped
	r := create(t, b, reused, job("app", "lib"), skipped, job("after-deploy", "deploy"))
	var ran []string
	drain(t, b, r.ID, func(j core.Job, _ core.Attempt) orchestrator.Outcome {
		ran = append(ran, j.Name)
		return ok()
	})
	run, js := states(t, b, r.ID)
	want := map[string]core.JobState{"lib": core.JobReused, "app": core.JobSucceeded, "deploy": core.JobSkipped, "after-deploy": core.JobSucceeded}
	for n, s := range want {
		if js[n] != s {
			t.Errorf("job %s = %s, want %s", n, js[n], s)
		}
	}
	if run.State != core.RunSucceeded || len(ran) != 2 {
		t.Errorf("run %s, ran %v", run.State, ran)
	}
}

func TestFailureMarksDependentsUpstreamFailed(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir())
	r := create(t, b, job("a"), job("b", "a"), job("c", "b"), job("side"))
	var ran []string
	drain(t, b, r.ID, func(j core.Job, _ core.Attempt) orchestrator.Outcome {
		ran = append(ran, j.Name)
		if j.Name == "a" {
			return fail(2)
		}
		return ok()
	})
	run, js := states(t, b, r.ID)
	want := map[string]core.JobState{"a": core.JobFailed, "b": core.JobUpstreamFailed, "c": core.JobUpstreamFailed, "side": core.JobSucceeded}
	for n, s := range want {
		if js[n] != s {
			t.Errorf("job %s = %s, want %s", n, js[n], s)
		}
	}
	if run.State != core.RunFailed || run.Reason != core.ReasonExitCode {
		t.Errorf("run = %s (%s)", run.State, run.Reason)
	}
	for _, n := range ran {
		if n == "b" || n == "c" {
			t.Errorf("dependent %s ran", n)
		}
	}
}

func TestRunnerLostIsRetriedThenFails(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir())
	r := create(t, b, job("a"))
	n := 0
	drain(t, b, r.ID, func(core.Job, core.Attempt) orchestrator.Outcome {
		n++
		return orchestrator.Outcome{State: core.AttemptLost}
	})
	if n != 3 {
		t.Errorf("attempts = %d, want 3 (1 + runner_lost: 2)", n)
	}
	run, js := states(t, b, r.ID)
	if run.State != core.RunFailed || js["a"] != core.JobFailed {
		t.Errorf("run %s job %s", run.State, js["a"])
	}
}

func TestLateCompletionAfterReapIsFenced(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir())
	r := create(t, b, job("a"))
	a, _, err := b.o.Lease(b.ctx, r.ID, "r1", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	old := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
	if err := b.o.StartAttempt(b.ctx, "r1", a, old); err != nil {
		t.Fatal(err)
	}
	b.clock.add(21 * time.Second)
	if n, err := b.o.ReapExpired(b.ctx, 10); err != nil || n != 1 {
		t.Fatalf("reaped %d, %v", n, err)
	}
	a2, _, err := b.o.Lease(b.ctx, r.ID, "r2", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if a2.Number != 2 {
		t.Fatalf("retry number = %d", a2.Number)
	}
	// a is as the runner last saw it, leased: stale twice over.
	err = b.o.CompleteAttempt(b.ctx, "r1", a, old, fail(1))
	if core.KindOf(err) != core.KindLeaseLost {
		t.Fatalf("late completion: %v", err)
	}
	f2 := store.Fence{AttemptID: a2.ID, LeaseToken: a2.LeaseToken}
	if err := b.o.StartAttempt(b.ctx, "r2", core.Attempt{}, f2); err != nil {
		t.Fatal(err)
	}
	if err := b.o.CompleteAttempt(b.ctx, "r2", core.Attempt{}, f2, ok()); err != nil {
		t.Fatal(err)
	}
	run, _ := states(t, b, r.ID)
	if run.State != core.RunSucceeded {
		t.Errorf("run = %s", run.State)
	}
}

func TestCompletionIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir())
	r := create(t, b, job("a"))
	a, _, err := b.o.Lease(b.ctx, r.ID, "r1", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
	if err := b.o.StartAttempt(b.ctx, "r1", core.Attempt{}, f); err != nil {
		t.Fatal(err)
	}
	lost := orchestrator.Outcome{State: core.AttemptLost, Reason: core.ReasonRunnerLost}
	if err := b.o.CompleteAttempt(b.ctx, "r1", core.Attempt{}, f, lost); err != nil {
		t.Fatal(err)
	}
	before, _ := b.s.Events(b.ctx, r.ID)
	// The runner never saw the answer and sends the same completion again.
	if err := b.o.CompleteAttempt(b.ctx, "r1", core.Attempt{}, f, lost); err != nil {
		t.Fatalf("repeated completion: %v", err)
	}
	after, _ := b.s.Events(b.ctx, r.ID)
	atts, _ := b.s.Attempts(b.ctx, r.ID)
	if len(after) != len(before) || len(atts) != 2 {
		t.Errorf("repeated completion wrote %d events and left %d attempts (want one retry)", len(after)-len(before), len(atts))
	}
	if err := b.o.CompleteAttempt(b.ctx, "r1", core.Attempt{}, f, ok()); core.KindOf(err) != core.KindLeaseLost {
		t.Errorf("a different outcome for an ended attempt: %v", err)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir())
	r := create(t, b, job("a"), job("b"), job("c", "a"))
	a, _, err := b.o.Lease(b.ctx, r.ID, "r1", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
	if err := b.o.StartAttempt(b.ctx, "r1", core.Attempt{}, f); err != nil {
		t.Fatal(err)
	}
	if err := b.o.Cancel(b.ctx, "user", r.ID); err != nil {
		t.Fatal(err)
	}
	b.clock.add(time.Second)
	cancel, beat, err := b.o.Heartbeat(b.ctx, f, 20*time.Second, core.Attempt{})
	if err != nil || !cancel {
		t.Fatalf("heartbeat cancel = %v, %v", cancel, err)
	}
	if want := b.clock.now().Add(20 * time.Second); beat.ID != a.ID || !beat.LeaseExpiresAt.Equal(want) {
		t.Fatalf("heartbeat extended %s to %v, want %s to %v", beat.ID, beat.LeaseExpiresAt, a.ID, want)
	}
	run, js := states(t, b, r.ID)
	if run.State != core.RunCanceling || js["b"] != core.JobCanceled || js["c"] != core.JobCanceled {
		t.Fatalf("run %s jobs %v", run.State, js)
	}
	if err := b.o.CompleteAttempt(b.ctx, "r1", core.Attempt{}, f, orchestrator.Outcome{State: core.AttemptCanceled}); err != nil {
		t.Fatal(err)
	}
	run, js = states(t, b, r.ID)
	if run.State != core.RunCanceled || js["a"] != core.JobCanceled {
		t.Fatalf("run %s jobs %v", run.State, js)
	}
	if err := b.o.Cancel(b.ctx, "user", r.ID); core.KindOf(err) != core.KindConflict {
		t.Errorf("cancel of ended run: %v", err)
	}
}

// TestRandomGraphsProperty runs random DAGs with random outcomes through the
// orchestrator and checks what a user would rely on: every run ends, a job
// runs only after all its needs succeeded, dependents of a failure end
// upstream_failed, the run's outcome matches its jobs, and the events replay
// to exactly the stored states through legal moves only.
func TestRandomGraphsProperty(t *testing.T) {
	t.Parallel()
	// One database for every case: each case is its own run.
	b := setup(t, t.TempDir())
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 8).Draw(rt, "jobs")
		var jobs []store.NewJob
		for k := 0; k < n; k++ {
			var needs []string
			for d := 0; d < k; d++ {
				if rapid.Bool().Draw(rt, fmt.Sprintf("edge%d-%d", d, k)) {
					needs = append(needs, fmt.Sprint("j", d))
				}
			}
			jobs = append(jobs, job(fmt.Sprint("j", k), needs...))
		}
		r := create(t, b, jobs...)
		done := map[string]core.JobState{}
		drain(t, b, r.ID, func(j core.Job, a core.Attempt) orchestrator.Outcome {
			for _, need := range j.Spec.Needs {
				if done[need] != core.JobSucceeded {
					rt.Fatalf("job %s leased before its need %s succeeded (%s)", j.Name, need, done[need])
				}
			}
			switch rapid.IntRange(0, 3).Draw(rt, "outcome") {
			case 0:
				return fail(1)
			case 1:
				return orchestrator.Outcome{State: core.AttemptLost}
			default:
				done[j.Name] = core.JobSucceeded
				return ok()
			}
		})
		run, js := states(t, b, r.ID)
		allOK := true
		for _, j := range jobs {
			s := js[j.Spec.Name]
			if !s.Terminal() {
				rt.Fatalf("job %s not terminal: %s", j.Spec.Name, s)
			}
			upFailed := false
			for _, need := range j.Spec.Needs {
				upFailed = upFailed || !js[need].Successful()
			}
			if upFailed != (s == core.JobUpstreamFailed) {
				rt.Fatalf("job %s is %s with upstream failed = %v", j.Spec.Name, s, upFailed)
			}
			allOK = allOK && s.Successful()
		}
		if allOK != (run.State == core.RunSucceeded) || !run.State.Terminal() {
			rt.Fatalf("run %s with all jobs successful = %v", run.State, allOK)
		}
		checkEventsReplay(rt, b, r.ID)
	})
}

func checkEventsReplay(t *rapid.T, b bundle, runID string) {
	evs, err := b.s.Events(b.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	cur := map[string]string{}
	for _, e := range evs {
		if cur[e.EntityID] != e.From {
			t.Fatalf("event %d moves %s %s from %q but it was %q", e.Seq, e.Entity, e.EntityID, e.From, cur[e.EntityID])
		}
		if e.From != "" {
			var err error
			switch e.Entity {
			case core.EntityRun:
				err = core.CheckRun(core.RunState(e.From), core.RunState(e.To))
			case core.EntityJob:
				err = core.CheckJob(core.JobState(e.From), core.JobState(e.To))
			case core.EntityAttempt:
				err = core.CheckAttempt(core.AttemptState(e.From), core.AttemptState(e.To))
			}
			if err != nil {
				t.Fatalf("event %d: %v", e.Seq, err)
			}
		}
		cur[e.EntityID] = e.To
	}
	run, _ := b.s.Run(b.ctx, runID)
	jobs, _ := b.s.Jobs(b.ctx, runID)
	atts, _ := b.s.Attempts(b.ctx, runID)
	if cur[run.ID] != string(run.State) {
		t.Fatalf("run replays to %s, stored %s", cur[run.ID], run.State)
	}
	for _, j := range jobs {
		if cur[j.ID] != string(j.State) {
			t.Fatalf("job %s replays to %s, stored %s", j.Name, cur[j.ID], j.State)
		}
	}
	for _, a := range atts {
		if cur[a.ID] != string(a.State) {
			t.Fatalf("attempt %s replays to %s, stored %s", a.ID, cur[a.ID], a.State)
		}
	}
}

// TestAdvanceStalledEndsALeftRun: a server that stopped between a
// completion's commit and the run's advance leaves the run running with
// every job ended, or a dependent pending with its needs met; the
// leader's AdvanceStalled moves such runs on.
func TestAdvanceStalledEndsALeftRun(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir())
	r := create(t, b, job("a"), job("b", "a"))
	a, j, err := b.o.Lease(b.ctx, r.ID, "r1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The completion's own transaction, as CompleteAttempt writes it,
	// without the advance that follows its commit.
	end := func(a core.Attempt, j core.Job) {
		t.Helper()
		f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
		err := b.s.Update(b.ctx, "r1", func(tx *store.Tx) error {
			if _, err := tx.MoveLeased(b.ctx, f, core.AttemptRunning, "", nil); err != nil {
				return err
			}
			if _, err := tx.MoveLeased(b.ctx, f, core.AttemptSucceeded, "", nil); err != nil {
				return err
			}
			if err := tx.MoveJob(b.ctx, j, core.JobRunning, ""); err != nil {
				return err
			}
			j.State = core.JobRunning
			return tx.MoveJob(b.ctx, j, core.JobSucceeded, "")
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	end(a, j)
	if _, jobs := states(t, b, r.ID); jobs["b"] != core.JobPending {
		t.Fatalf("b is %s before the advance", jobs["b"])
	}
	if err := b.o.AdvanceStalled(b.ctx); err != nil {
		t.Fatal(err)
	}
	a, j, err = b.o.Lease(b.ctx, r.ID, "r1", time.Minute)
	if err != nil || j.Name != "b" {
		t.Fatalf("after the advance: leased %q, %v; want b", j.Name, err)
	}
	end(a, j)
	if run, _ := states(t, b, r.ID); run.State != core.RunRunning {
		t.Fatalf("run is %s before the advance", run.State)
	}
	if err := b.o.AdvanceStalled(b.ctx); err != nil {
		t.Fatal(err)
	}
	if run, _ := states(t, b, r.ID); run.State != core.RunSucceeded {
		t.Fatalf("run is %s after the advance, want succeeded", run.State)
	}
}
