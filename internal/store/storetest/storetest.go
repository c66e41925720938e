// Package storetest is the conformance suite every store engine must pass.
// Each engine's tests call Run with a function that opens a fresh store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// Opener returns a fresh, migrated, empty store using the given clock. The
// opener registers its own cleanup.
type Opener func(t *testing.T, now func() time.Time) *store.Store

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type bundle struct {
	s     *store.Store
	clock *clock
	ctx   context.Context
}

func setup(t *testing.T, open Opener) bundle {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	return bundle{s: open(t, c.now), clock: c, ctx: context.Background()}
}

func spec(name string, needs ...string) core.JobSpec {
	return core.JobSpec{
		Name: name, Run: "echo " + name, Needs: needs, Timeout: time.Minute,
		Retry: core.DefaultRetry, Reuse: true, Env: map[string]string{"A": "1"},
		Inputs: []string{"**/*.go"}, RunsOn: []string{"linux"},
	}
}

func newRun(t *testing.T, b bundle, names ...string) (core.Run, []core.Job) {
	t.Helper()
	nr := store.NewRun{Repo: "/repo", Ref: "main", Commit: "abc", Event: core.EventManual}
	for _, n := range names {
		nr.Jobs = append(nr.Jobs, store.NewJob{Spec: spec(n)})
	}
	r, jobs, err := b.s.CreateRun(b.ctx, "test", nr)
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	return r, jobs
}

func mustUpdate(t *testing.T, b bundle, fn func(*store.Tx) error) {
	t.Helper()
	if err := b.s.Update(b.ctx, "test", fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func wantKind(t *testing.T, err error, k core.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want kind %s", k)
	}
	if got := core.KindOf(err); got != k {
		t.Fatalf("got kind %s (%v), want %s", got, err, k)
	}
}

// queuedAttempt walks a new run of one job "a" to running and queues the
// job's first attempt.
func queuedAttempt(t *testing.T, b bundle) (core.Run, core.Job) {
	t.Helper()
	return queuedAttemptOf(t, b, spec("a"))
}

// queuedAttemptOf is queuedAttempt with the job's spec.
func queuedAttemptOf(t *testing.T, b bundle, sp core.JobSpec) (core.Run, core.Job) {
	t.Helper()
	r, jobs, err := b.s.CreateRun(b.ctx, "test", store.NewRun{Repo: "/repo", Ref: "main", Commit: "abc", Event: core.EventManual, Jobs: []store.NewJob{{Spec: sp}}})
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
		_, err := tx.EnqueueAttempt(b.ctx, core.Job{ID: jobs[0].ID, RunID: r.ID, Name: jobs[0].Name, Spec: jobs[0].Spec})
		return err
	})
	return r, jobs[0]
}

// startedAttempt walks a run to running and one job's attempt to running.
func startedAttempt(t *testing.T, b bundle) (core.Run, core.Job, core.Attempt) {
	t.Helper()
	return startedAttemptOf(t, b, spec("a"))
}

// startedAttemptOf is startedAttempt with the job's spec.
func startedAttemptOf(t *testing.T, b bundle, sp core.JobSpec) (core.Run, core.Job, core.Attempt) {
	t.Helper()
	r, _ := queuedAttemptOf(t, b, sp)
	c, err := b.s.ClaimAttempt(b.ctx, "runner-1", store.Claim{RunID: r.ID, RunnerID: "runner-1", TTL: 20 * time.Second})
	if err != nil {
		t.Fatalf("ClaimAttempt: %v", err)
	}
	a := c.Attempt
	mustUpdate(t, b, func(tx *store.Tx) error {
		_, err := tx.MoveLeased(b.ctx, store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}, core.AttemptRunning, "", nil)
		return err
	})
	a, err = b.s.Attempt(b.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	j, err := b.s.Jobs(b.ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	return r, j[0], a
}

// Run runs the whole conformance suite against one engine.
func Run(t *testing.T, open Opener) {
	t.Run("CreateRun", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r, jobs := newRun(t, b, "lint", "test")
		got, err := b.s.Run(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("run round trip (-want +got):\n%s", diff)
		}
		gotJobs, err := b.s.Jobs(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(jobs, gotJobs); diff != "" {
			t.Errorf("jobs round trip (-want +got):\n%s", diff)
		}
		if gotJobs[0].State != core.JobPending || gotJobs[1].Name != "test" {
			t.Errorf("jobs = %+v", gotJobs)
		}
		evs, err := b.s.Events(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 3 || evs[0].Entity != core.EntityRun || evs[0].To != "queued" || evs[0].From != "" {
			t.Errorf("events = %+v", evs)
		}
	})

	t.Run("ErrDuplicateJobName", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, _, err := b.s.CreateRun(b.ctx, "test", store.NewRun{Event: "manual", Jobs: []store.NewJob{{Spec: spec("a")}, {Spec: spec("a")}}})
		wantKind(t, err, core.KindInvalid)
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, err := b.s.Run(b.ctx, "nope")
		wantKind(t, err, core.KindNotFound)
		_, err = b.s.Attempt(b.ctx, "nope")
		wantKind(t, err, core.KindNotFound)
		err = b.s.Update(b.ctx, "test", func(tx *store.Tx) error { _, err := tx.Job(b.ctx, "nope"); return err })
		wantKind(t, err, core.KindNotFound)
	})

	t.Run("OneStatementMovesRecordTheirEvents", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r, _ := queuedAttempt(t, b)
		before, err := b.s.Events(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		b.clock.advance(time.Second)
		c, err := b.s.ClaimAttempt(b.ctx, "runner-x", store.Claim{RunnerID: "runner-x", Labels: []string{"linux"}, TTL: time.Minute})
		if err != nil {
			t.Fatalf("ClaimAttempt: %v", err)
		}
		a := c.Attempt
		f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken, RunnerID: "runner-x"}
		b.clock.advance(time.Second)
		err = b.s.UpdateOne(b.ctx, "runner-x", func(tx *store.Tx) error {
			m, err := tx.MoveLeasedWithJob(b.ctx, a, f, core.AttemptRunning, "", nil, core.JobQueued, core.JobRunning, "")
			if err == nil && (!m.AttemptMoved || !m.JobMoved) {
				t.Errorf("start moved attempt %v, job %v; want both", m.AttemptMoved, m.JobMoved)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		a.State = core.AttemptRunning
		b.clock.advance(time.Second)
		// The job is not queued any more: only the attempt moves.
		mustUpdate(t, b, func(tx *store.Tx) error {
			m, err := tx.MoveLeasedWithJob(b.ctx, a, f, core.AttemptFailed, core.ReasonExitCode, nil, core.JobQueued, core.JobFailed, core.ReasonExitCode)
			if err == nil && (!m.AttemptMoved || m.JobMoved) {
				t.Errorf("failure moved attempt %v, job %v; want the attempt only", m.AttemptMoved, m.JobMoved)
			}
			return err
		})
		evs, err := b.s.Events(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs[len(before):] {
			got = append(got, fmt.Sprintf("%s %s %s→%s %s by %s at %d", e.Entity, e.EntityID, e.From, e.To, e.Reason, e.Actor, e.At.Unix()-b.clock.now().Unix()))
		}
		want := []string{
			fmt.Sprintf("attempt %s queued→leased  by runner-x at -2", a.ID),
			fmt.Sprintf("attempt %s leased→running  by runner-x at -1", a.ID),
			fmt.Sprintf("job %s queued→running  by runner-x at -1", a.JobID),
			fmt.Sprintf("attempt %s running→failed exit_code by test at 0", a.ID),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})

	t.Run("CountJobStatesAfterCommit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r, jobs := newRun(t, b, "a", "b")
		var counts map[core.JobState]int
		mustUpdate(t, b, func(tx *store.Tx) error {
			tx.CountJobStatesAfterCommit(b.ctx, r.ID, func(c map[core.JobState]int) { counts = c })
			if counts != nil {
				t.Error("counted before the commit")
			}
			return tx.MoveJob(b.ctx, jobs[0], core.JobSkipped, "")
		})
		if want := map[core.JobState]int{core.JobPending: 1, core.JobSkipped: 1}; !reflect.DeepEqual(counts, want) {
			t.Errorf("counts = %v, want %v", counts, want)
		}
		called := false
		err := b.s.Update(b.ctx, "test", func(tx *store.Tx) error {
			tx.CountJobStatesAfterCommit(b.ctx, r.ID, func(map[core.JobState]int) { called = true })
			return tx.MoveJob(b.ctx, jobs[0], core.JobQueued, "") // skipped is final: refused
		})
		if err == nil || called {
			t.Errorf("a refused transaction: %v, counted %v; want an error and no count", err, called)
		}
	})

	t.Run("OneEventPerTransition", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r, _ := newRun(t, b, "a")
		moves := []core.RunState{core.RunPlanning, core.RunRunning, core.RunCanceling, core.RunCanceled}
		from := core.RunQueued
		for _, to := range moves {
			b.clock.advance(time.Second)
			mustUpdate(t, b, func(tx *store.Tx) error { return tx.MoveRun(b.ctx, r.ID, from, to, core.ReasonCanceled) })
			from = to
		}
		evs, err := b.s.Events(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		var runEvents []string
		for _, e := range evs {
			if e.Entity == core.EntityRun {
				runEvents = append(runEvents, e.From+"→"+e.To)
				if e.Actor != "test" {
					t.Errorf("actor = %q", e.Actor)
				}
			}
		}
		want := []string{"→queued", "queued→planning", "planning→running", "running→canceling", "canceling→canceled"}
		if diff := cmp.Diff(want, runEvents); diff != "" {
			t.Errorf("run events (-want +got):\n%s", diff)
		}
		got, _ := b.s.Run(b.ctx, r.ID)
		if got.State != core.RunCanceled || got.FinishedAt.IsZero() || got.StartedAt.IsZero() || !got.FinishedAt.After(got.StartedAt) {
			t.Errorf("run = %+v", got)
		}
	})

	t.Run("ErrConflictIllegalMove", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r, jobs := newRun(t, b, "a")
		err := b.s.Update(b.ctx, "test", func(tx *store.Tx) error {
			return tx.MoveRun(b.ctx, r.ID, core.RunQueued, core.RunSucceeded, "")
		})
		wantKind(t, err, core.KindConflict)
		if !errors.Is(err, core.ErrConflict) {
			t.Errorf("errors.Is(ErrConflict) = false for %v", err)
		}
		err = b.s.Update(b.ctx, "test", func(tx *store.Tx) error {
			return tx.MoveJob(b.ctx, jobs[0], core.JobSucceeded, "")
		})
		wantKind(t, err, core.KindConflict)
		evs, _ := b.s.Events(b.ctx, r.ID)
		if len(evs) != 2 {
			t.Errorf("illegal moves wrote events: %+v", evs)
		}
	})

	t.Run("ErrConflictStaleFrom", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r, _ := newRun(t, b, "a")
		mustUpdate(t, b, func(tx *store.Tx) error { return tx.MoveRun(b.ctx, r.ID, core.RunQueued, core.RunPlanning, "") })
		err := b.s.Update(b.ctx, "test", func(tx *store.Tx) error {
			return tx.MoveRun(b.ctx, r.ID, core.RunQueued, core.RunPlanning, "")
		})
		wantKind(t, err, core.KindConflict)
	})

	t.Run("RollbackWritesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r, jobs := newRun(t, b, "a")
		boom := errors.New("boom")
		err := b.s.Update(b.ctx, "test", func(tx *store.Tx) error {
			if err := tx.MoveRun(b.ctx, r.ID, core.RunQueued, core.RunPlanning, ""); err != nil {
				return err
			}
			if err := tx.MoveJob(b.ctx, jobs[0], core.JobQueued, ""); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
		got, _ := b.s.Run(b.ctx, r.ID)
		gotJobs, _ := b.s.Jobs(b.ctx, r.ID)
		evs, _ := b.s.Events(b.ctx, r.ID)
		if got.State != core.RunQueued || gotJobs[0].State != core.JobPending || len(evs) != 2 {
			t.Errorf("rolled back transaction left state: run %s job %s, %d events", got.State, gotJobs[0].State, len(evs))
		}
	})

	t.Run("AttemptLifecycle", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r, _, a := startedAttempt(t, b)
		if a.State != core.AttemptRunning || a.Number != 1 || a.RunnerID != "runner-1" || a.StartedAt.IsZero() {
			t.Fatalf("attempt = %+v", a)
		}
		if diff := cmp.Diff([]string{"linux"}, a.Labels); diff != "" {
			t.Errorf("labels: %s", diff)
		}
		code := 3
		mustUpdate(t, b, func(tx *store.Tx) error {
			_, err := tx.MoveLeased(b.ctx, store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}, core.AttemptFailed, core.ReasonExitCode, &code)
			return err
		})
		got, _ := b.s.Attempt(b.ctx, a.ID)
		if got.State != core.AttemptFailed || got.ExitCode == nil || *got.ExitCode != 3 || got.Reason != core.ReasonExitCode || got.FinishedAt.IsZero() {
			t.Errorf("finished attempt = %+v", got)
		}
		// A second completion with the same token finds the lease gone.
		err := b.s.Update(b.ctx, "test", func(tx *store.Tx) error {
			_, err := tx.MoveLeased(b.ctx, store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}, core.AttemptSucceeded, "", nil)
			return err
		})
		wantKind(t, err, core.KindLeaseLost)
		atts, _ := b.s.Attempts(b.ctx, r.ID)
		if len(atts) != 1 || atts[0].State != core.AttemptFailed {
			t.Errorf("attempts = %+v", atts)
		}
	})

	t.Run("ErrLeaseLostWrongToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, _, a := startedAttempt(t, b)
		err := b.s.Update(b.ctx, "test", func(tx *store.Tx) error {
			_, err := tx.MoveLeased(b.ctx, store.Fence{AttemptID: a.ID, LeaseToken: "forged"}, core.AttemptSucceeded, "", nil)
			return err
		})
		wantKind(t, err, core.KindLeaseLost)
		_, err = b.s.Heartbeat(b.ctx, a.ID, "forged", time.Minute)
		wantKind(t, err, core.KindLeaseLost)
		got, _ := b.s.Attempt(b.ctx, a.ID)
		if got.State != core.AttemptRunning {
			t.Errorf("state = %s", got.State)
		}
	})

	t.Run("LeaseExpiryAndHeartbeat", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, _, a := startedAttempt(t, b)
		b.clock.advance(15 * time.Second)
		if exp, _ := b.s.ExpiredLeases(b.ctx, 10); len(exp) != 0 {
			t.Fatalf("expired too early: %+v", exp)
		}
		if _, err := b.s.Heartbeat(b.ctx, a.ID, a.LeaseToken, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		b.clock.advance(15 * time.Second)
		if exp, _ := b.s.ExpiredLeases(b.ctx, 10); len(exp) != 0 {
			t.Fatalf("heartbeat did not extend: %+v", exp)
		}
		b.clock.advance(10 * time.Second)
		exp, err := b.s.ExpiredLeases(b.ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(exp) != 1 || exp[0].ID != a.ID {
			t.Fatalf("expired = %+v", exp)
		}
		mustUpdate(t, b, func(tx *store.Tx) error {
			return tx.MoveAttempt(b.ctx, exp[0], core.AttemptLost, core.ReasonRunnerLost)
		})
		// The old holder's late writes are fenced off.
		_, err = b.s.Heartbeat(b.ctx, a.ID, a.LeaseToken, 20*time.Second)
		wantKind(t, err, core.KindLeaseLost)
		err = b.s.Update(b.ctx, "late", func(tx *store.Tx) error {
			_, err := tx.MoveLeased(b.ctx, store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}, core.AttemptSucceeded, "", nil)
			return err
		})
		wantKind(t, err, core.KindLeaseLost)
	})

	t.Run("RetryCreatesNextNumber", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r, j, a := startedAttempt(t, b)
		err := b.s.Update(b.ctx, "test", func(tx *store.Tx) error {
			_, err := tx.EnqueueAttempt(b.ctx, j)
			return err
		})
		wantKind(t, err, core.KindConflict) // attempt 1 still running
		mustUpdate(t, b, func(tx *store.Tx) error {
			if err := tx.MoveAttempt(b.ctx, a, core.AttemptLost, core.ReasonRunnerLost); err != nil {
				return err
			}
			next, err := tx.EnqueueAttempt(b.ctx, j)
			if err == nil && next.Number != 2 {
				return fmt.Errorf("next attempt number = %d", next.Number)
			}
			return err
		})
		atts, _ := b.s.Attempts(b.ctx, r.ID)
		if len(atts) != 2 || atts[1].State != core.AttemptQueued {
			t.Errorf("attempts = %+v", atts)
		}
	})

	t.Run("ClaimNothingQueued", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r, _ := newRun(t, b, "a")
		_, err := b.s.ClaimAttempt(b.ctx, "r", store.Claim{RunID: r.ID, RunnerID: "r", TTL: time.Second})
		wantKind(t, err, core.KindNotFound)
		_, err = b.s.ClaimAttempt(b.ctx, "r", store.Claim{RunID: r.ID, RunnerID: "r"})
		wantKind(t, err, core.KindInvalid)
	})

	t.Run("ConcurrentClaimsLeaseOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		const jobsN, workers = 40, 8
		names := make([]string, jobsN)
		for i := range names {
			names[i] = fmt.Sprintf("j%02d", i)
		}
		r, jobs := newRun(t, b, names...)
		mustUpdate(t, b, func(tx *store.Tx) error {
			for _, j := range jobs {
				if err := tx.MoveJob(b.ctx, j, core.JobQueued, ""); err != nil {
					return err
				}
				if _, err := tx.EnqueueAttempt(b.ctx, j); err != nil {
					return err
				}
			}
			return nil
		})
		var mu sync.Mutex
		leased := map[string]int{}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for {
					c, err := b.s.ClaimAttempt(b.ctx, "r", store.Claim{RunID: r.ID, RunnerID: fmt.Sprint("r", w), TTL: time.Minute})
					a := c.Attempt
					if core.KindOf(err) == core.KindNotFound {
						return
					}
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					leased[a.ID]++
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if len(leased) != jobsN {
			t.Errorf("leased %d distinct attempts, want %d", len(leased), jobsN)
		}
		for id, n := range leased {
			if n != 1 {
				t.Errorf("attempt %s leased %d times", id, n)
			}
		}
		evs, _ := b.s.Events(b.ctx, r.ID)
		leases := 0
		for _, e := range evs {
			if e.Entity == core.EntityAttempt && e.To == string(core.AttemptLeased) {
				leases++
			}
		}
		if leases != jobsN {
			t.Errorf("%d lease events, want %d", leases, jobsN)
		}
	})

	t.Run("ClaimMatchesLabels", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		specs := map[string][]string{"plain": nil, "linux": {"linux"}, "gpu": {"linux", "gpu"}}
		nr := store.NewRun{Event: core.EventManual}
		for _, n := range []string{"plain", "linux", "gpu"} {
			sp := spec(n)
			sp.RunsOn = specs[n]
			nr.Jobs = append(nr.Jobs, store.NewJob{Spec: sp})
		}
		_, jobs, err := b.s.CreateRun(b.ctx, "test", nr)
		if err != nil {
			t.Fatal(err)
		}
		mustUpdate(t, b, func(tx *store.Tx) error {
			for _, j := range jobs {
				if err := tx.MoveJob(b.ctx, j, core.JobQueued, ""); err != nil {
					return err
				}
				if _, err := tx.EnqueueAttempt(b.ctx, j); err != nil {
					return err
				}
				b.clock.advance(time.Second) // queue order = file order
			}
			return nil
		})
		claim := func(labels ...string) string {
			c, err := b.s.ClaimAttempt(b.ctx, "r", store.Claim{RunnerID: "r", Labels: labels, TTL: time.Minute})
			if core.KindOf(err) == core.KindNotFound {
				return "none"
			}
			if err != nil {
				t.Fatal(err)
			}
			a := c.Attempt
			// The claim hands out the attempt as stored, with its job and run.
			stored, err := b.s.Attempt(b.ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(stored, a) || c.Job.ID != a.JobID || c.Run.ID != a.RunID || c.Job.Spec.Name != c.Job.Name {
				t.Fatalf("claimed %+v with job %s and run %s; stored %+v", a, c.Job.ID, c.Run.ID, stored)
			}
			for _, j := range jobs {
				if j.ID == a.JobID {
					return j.Name
				}
			}
			return "?"
		}
		if got := claim("gpu"); got != "plain" {
			t.Errorf("runner [gpu] got %s, want plain (unlabeled jobs run anywhere)", got)
		}
		if got := claim("gpu"); got != "none" {
			t.Errorf("runner [gpu] got %s, want none (it lacks linux)", got)
		}
		if got := claim(); got != "none" {
			t.Errorf("runner [] got %s", got)
		}
		if got := claim("linux"); got != "linux" {
			t.Errorf("runner [linux] got %s", got)
		}
		if got := claim("big", "gpu", "linux"); got != "gpu" {
			t.Errorf("runner [big gpu linux] got %s", got)
		}
	})

	t.Run("NoDoubleLease", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		// 500 attempts keep the race-detector run short while 32 claimers
		// still race for every row.
		n, runners := 500, 32
		if testing.Short() {
			n = 200
		}
		nr := store.NewRun{Event: core.EventManual}
		for i := 0; i < n; i++ {
			nr.Jobs = append(nr.Jobs, store.NewJob{Spec: core.JobSpec{Name: fmt.Sprint("noop", i), Run: "true", Reuse: true}})
		}
		r, jobs, err := b.s.CreateRun(b.ctx, "test", nr)
		if err != nil {
			t.Fatal(err)
		}
		mustUpdate(t, b, func(tx *store.Tx) error {
			for _, j := range jobs {
				if err := tx.MoveJob(b.ctx, j, core.JobQueued, ""); err != nil {
					return err
				}
				if _, err := tx.EnqueueAttempt(b.ctx, j); err != nil {
					return err
				}
			}
			return nil
		})
		var wg sync.WaitGroup
		var mu sync.Mutex
		leases := map[string]int{}
		errc := make(chan error, runners)
		for w := 0; w < runners; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for {
					c, err := b.s.ClaimAttempt(b.ctx, fmt.Sprint("runner", w), store.Claim{RunnerID: fmt.Sprint("runner", w), TTL: time.Minute})
					a := c.Attempt
					if core.KindOf(err) == core.KindNotFound {
						return
					}
					if err != nil {
						errc <- err
						return
					}
					mu.Lock()
					leases[a.ID]++
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		evs, err := b.s.Events(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		fromEvents := map[string]int{}
		for _, e := range evs {
			if e.Entity == core.EntityAttempt && e.To == string(core.AttemptLeased) {
				fromEvents[e.EntityID]++
			}
		}
		if len(leases) != n || len(fromEvents) != n {
			t.Fatalf("%d attempts leased (%d in events), want %d", len(leases), len(fromEvents), n)
		}
		for id, k := range fromEvents {
			if k != 1 || leases[id] != 1 {
				t.Fatalf("attempt %s leased %d times (events %d)", id, leases[id], k)
			}
		}
	})

	t.Run("JobSpecRoundTrip", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		s := core.JobSpec{
			Name: "full", Run: "make\ntest", Needs: []string{"x"}, Inputs: []string{"a/**"},
			Env: map[string]string{"K": "v"}, Secrets: []string{"TOKEN"}, Outputs: []string{"out/*"},
			Reports: map[string][]string{"junit": {"r.xml"}}, Timeout: 90 * time.Second,
			Retry:  core.RetryPolicy{RunnerLost: 2, InfraError: 1, ExitCodes: []int{75}, Max: 3},
			RunsOn: []string{"linux", "big"}, Sandbox: core.Sandbox{Network: true}, Reuse: false, Hermetic: true, InputsFrom: []string{"lib"},
			Branches: []string{"main"}, Events: []string{"push"},
		}
		r, _, err := b.s.CreateRun(b.ctx, "test", store.NewRun{Event: "push", Jobs: []store.NewJob{{
			Spec: s, Explain: "why", Decision: core.JobReused, Digest: "sha256:abc", ReusedFrom: "attempt-1",
		}}})
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := b.s.Jobs(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(s, jobs[0].Spec); diff != "" {
			t.Errorf("spec round trip (-want +got):\n%s", diff)
		}
		if j := jobs[0]; j.Explain != "why" || j.Decision != core.JobReused || j.Digest != "sha256:abc" || j.ReusedFrom != "attempt-1" {
			t.Errorf("plan fields = %q %q %q %q", j.Explain, j.Decision, j.Digest, j.ReusedFrom)
		}
		_, _, err = b.s.CreateRun(b.ctx, "test", store.NewRun{Event: "push", Jobs: []store.NewJob{{Spec: s, Decision: core.JobRunning}}})
		wantKind(t, err, core.KindInvalid)
	})
}
