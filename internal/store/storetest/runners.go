package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// RunRunners runs the conformance tests of runner registration, the log
// sweep's listing, queue depth and readiness against one engine.
func RunRunners(t *testing.T, open Opener) {
	t.Run("RegisterRunner", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		in := store.Runner{Name: "r1", Labels: []string{"linux", "executor:shell"}, CredentialHash: "h", ProtocolVersion: 1}
		r, err := b.s.RegisterRunner(b.ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if r.ID == "" || !r.CreatedAt.Equal(b.clock.now()) {
			t.Fatalf("registered %+v: want an id and the clock's time", r)
		}
		got, err := b.s.Runner(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Fatalf("round trip (-registered +read):\n%s", diff)
		}
		b.clock.advance(time.Minute)
		if err := b.s.TouchRunner(b.ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.s.Runner(b.ctx, r.ID); !got.LastSeenAt.Equal(b.clock.now()) {
			t.Fatalf("LastSeenAt = %v after a touch, want %v", got.LastSeenAt, b.clock.now())
		}
		_, err = b.s.Runner(b.ctx, "01a20a28-0000-7000-8000-000000000000")
		wantKind(t, err, core.KindNotFound)
	})

	t.Run("ListAndRemoveRunners", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r1, err := b.s.RegisterRunner(b.ctx, store.Runner{Name: "r1", Labels: []string{"linux"}, CredentialHash: "h1", ProtocolVersion: 1})
		if err != nil {
			t.Fatal(err)
		}
		b.clock.advance(time.Second)
		r2, err := b.s.RegisterRunner(b.ctx, store.Runner{Name: "r2", Labels: []string{}, CredentialHash: "h2", ProtocolVersion: 1})
		if err != nil {
			t.Fatal(err)
		}
		list, err := b.s.Runners(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]store.Runner{r1, r2}, list); diff != "" {
			t.Fatalf("runners, oldest first (-want +got):\n%s", diff)
		}
		if err := b.s.RemoveRunner(b.ctx, r1.ID); err != nil {
			t.Fatal(err)
		}
		wantKind(t, b.s.RemoveRunner(b.ctx, r1.ID), core.KindNotFound)
		_, err = b.s.Runner(b.ctx, r1.ID)
		wantKind(t, err, core.KindNotFound)
		if list, _ := b.s.Runners(b.ctx); len(list) != 1 || list[0].ID != r2.ID {
			t.Fatalf("after removing r1: %+v", list)
		}
	})

	t.Run("SeeRunners", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r1, err := b.s.RegisterRunner(b.ctx, store.Runner{Name: "r1", Labels: []string{"linux"}, CredentialHash: "h", ProtocolVersion: 1})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := b.s.RegisterRunner(b.ctx, store.Runner{Name: "r2", Labels: []string{"linux"}, CredentialHash: "h2", ProtocolVersion: 1})
		if err != nil {
			t.Fatal(err)
		}
		gone, err := b.s.RegisterRunner(b.ctx, store.Runner{Name: "gone", CredentialHash: "h3", ProtocolVersion: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.s.RemoveRunner(b.ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		registered := b.clock.now()
		seen := registered.Add(time.Minute)
		// r2's contact is stamped before its registration, as a replica
		// with a slower clock would: it does not move back. A removed
		// runner is passed over.
		err = b.s.SeeRunners(b.ctx, map[string]time.Time{r1.ID: seen, r2.ID: registered.Add(-time.Minute), gone.ID: seen})
		if err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]time.Time{r1.ID: seen, r2.ID: registered} {
			if got, _ := b.s.Runner(b.ctx, id); !got.LastSeenAt.Equal(want) {
				t.Errorf("runner %s: LastSeenAt = %v, want %v", got.Name, got.LastSeenAt, want)
			}
		}
		if _, err := b.s.Runner(b.ctx, gone.ID); core.KindOf(err) != core.KindNotFound {
			t.Errorf("a removed runner is back after a contact: %v", err)
		}
	})

	t.Run("HeldAttempts", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		held, err := b.s.HeldAttempts(b.ctx)
		if err != nil || len(held) != 0 {
			t.Fatalf("held attempts of an empty store: %v, %v", held, err)
		}
		queuedAttemptOf(t, b, spec("waiting"))
		_, j, a := startedAttemptOf(t, b, spec("build"))
		b.clock.advance(time.Second)
		r2, _ := queuedAttemptOf(t, b, spec("test"))
		c, err := b.s.ClaimAttempt(b.ctx, "runner-2", store.Claim{RunID: r2.ID, RunnerID: "runner-2", TTL: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		held, err = b.s.HeldAttempts(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]store.HeldAttempt{
			"runner-1": {{ID: a.ID, RunID: a.RunID, RunnerID: "runner-1", Job: j.Name, State: core.AttemptRunning, LeasedAt: a.LeasedAt, LeaseExpiresAt: a.LeaseExpiresAt}},
			"runner-2": {{ID: c.Attempt.ID, RunID: r2.ID, RunnerID: "runner-2", Job: "test", State: core.AttemptLeased, LeasedAt: b.clock.now(), LeaseExpiresAt: b.clock.now().Add(20 * time.Second)}},
		}
		if diff := cmp.Diff(want, held); diff != "" {
			t.Fatalf("held attempts (-want +got):\n%s", diff)
		}
		mustUpdate(t, b, func(tx *store.Tx) error {
			_, err := tx.MoveLeased(b.ctx, store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}, core.AttemptSucceeded, "", nil)
			return err
		})
		held, err = b.s.HeldAttempts(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := held["runner-1"]; ok || len(held["runner-2"]) != 1 {
			t.Fatalf("after runner-1's attempt ended, held: %+v", held)
		}
	})

	t.Run("UnsealedLogs", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, _, a := startedAttempt(t, b)
		f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
		mustAppend(t, b.s, f, 0, "hello\n", 6)
		if ids, err := b.s.UnsealedLogs(b.ctx, 10); err != nil || len(ids) != 0 {
			t.Fatalf("UnsealedLogs of a running attempt = %v, %v; want none", ids, err)
		}
		EndAttempt(t, b.s, f)
		ids, err := b.s.UnsealedLogs(b.ctx, 10)
		if err != nil || len(ids) != 1 || ids[0] != a.ID {
			t.Fatalf("UnsealedLogs of an ended attempt = %v, %v; want [%s]", ids, err, a.ID)
		}
		if err := b.s.SealLog(b.ctx, a.ID, "sha256:00"); err != nil {
			t.Fatal(err)
		}
		if ids, err := b.s.UnsealedLogs(b.ctx, 10); err != nil || len(ids) != 0 {
			t.Fatalf("UnsealedLogs after sealing = %v, %v; want none", ids, err)
		}
	})

	t.Run("QueueDepth", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r, jobs := newRun(t, b, "a", "b", "c")
		mustUpdate(t, b, func(tx *store.Tx) error {
			if err := tx.MoveRun(b.ctx, r.ID, core.RunQueued, core.RunPlanning, ""); err != nil {
				return err
			}
			if err := tx.MoveRun(b.ctx, r.ID, core.RunPlanning, core.RunRunning, ""); err != nil {
				return err
			}
			for i, j := range jobs {
				if i == 2 {
					j.Spec.RunsOn = []string{"gpu", "linux"}
				}
				if err := tx.MoveJob(b.ctx, j, core.JobQueued, ""); err != nil {
					return err
				}
				if _, err := tx.EnqueueAttempt(b.ctx, j); err != nil {
					return err
				}
			}
			return nil
		})
		got, err := b.s.QueueDepth(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{"linux": 2, "gpu,linux": 1}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("QueueDepth (-want +got):\n%s", diff)
		}
		if err := b.s.Ready(b.ctx); err != nil {
			t.Fatalf("Ready on a migrated store: %v", err)
		}
	})
}

// RunMoveLeased checks that what MoveLeased returns is the row as stored,
// since callers use it instead of reading the attempt again.
func RunMoveLeased(t *testing.T, open Opener) {
	t.Run("MoveLeasedReturnsTheStoredRow", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, _, a := startedAttempt(t, b)
		f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
		b.clock.advance(time.Second)
		code := 3
		var moved core.Attempt
		mustUpdate(t, b, func(tx *store.Tx) error {
			var err error
			moved, err = tx.MoveLeased(b.ctx, f, core.AttemptFailed, core.ReasonExitCode, &code)
			return err
		})
		stored, err := b.s.Attempt(b.ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(stored, moved); diff != "" {
			t.Fatalf("MoveLeased returned a different attempt than it stored (-stored +returned):\n%s", diff)
		}
	})

	t.Run("MoveLeasedWithJob", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, j, a := startedAttempt(t, b)
		mustUpdate(t, b, func(tx *store.Tx) error { return tx.MoveJob(b.ctx, j, core.JobRunning, "") })
		before, err := b.s.Events(b.ctx, a.RunID)
		if err != nil {
			t.Fatal(err)
		}
		b.clock.advance(time.Second)
		f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken, RunnerID: a.RunnerID}
		var m store.Moved
		mustUpdate(t, b, func(tx *store.Tx) error {
			var err error
			m, err = tx.MoveLeasedWithJob(b.ctx, a, f, core.AttemptSucceeded, core.ReasonNone, nil, core.JobRunning, core.JobSucceeded, core.ReasonNone)
			return err
		})
		if !m.AttemptMoved || !m.JobMoved {
			t.Fatalf("moved attempt %v, job %v; want both", m.AttemptMoved, m.JobMoved)
		}
		stored, err := b.s.Attempt(b.ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		storedJob, err := b.s.Job(b.ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(stored, m.Attempt); diff != "" {
			t.Fatalf("returned attempt differs from the stored one (-stored +returned):\n%s", diff)
		}
		if diff := cmp.Diff(storedJob, m.Job); diff != "" {
			t.Fatalf("returned job differs from the stored one (-stored +returned):\n%s", diff)
		}
		after, err := b.s.Events(b.ctx, a.RunID)
		if err != nil {
			t.Fatal(err)
		}
		added := after[len(before):]
		if len(added) != 2 || added[0].EntityID != a.ID || added[0].To != string(core.AttemptSucceeded) ||
			added[1].EntityID != j.ID || added[1].From != string(core.JobRunning) || added[1].To != string(core.JobSucceeded) {
			t.Fatalf("events added: %+v", added)
		}
	})

	t.Run("MoveLeasedWithJobLeavesAJobNotInFrom", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, j, a := startedAttempt(t, b) // the job is still queued
		f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
		var m store.Moved
		mustUpdate(t, b, func(tx *store.Tx) error {
			var err error
			m, err = tx.MoveLeasedWithJob(b.ctx, a, f, core.AttemptFailed, core.ReasonExitCode, nil, core.JobRunning, core.JobFailed, core.ReasonExitCode)
			return err
		})
		if !m.AttemptMoved || m.JobMoved {
			t.Fatalf("moved attempt %v, job %v; want the attempt only", m.AttemptMoved, m.JobMoved)
		}
		if got, _ := b.s.Job(b.ctx, j.ID); got.State != core.JobQueued {
			t.Fatalf("job is %s, want queued", got.State)
		}
	})

	// end runs EndLeasedWithJob (a running attempt's success with its
	// job) as the one statement of an UpdateOne, as completions do.
	end := func(t *testing.T, b bundle, a core.Attempt, noOutputs bool) store.Moved {
		t.Helper()
		f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken, RunnerID: a.RunnerID}
		var m store.Moved
		err := b.s.UpdateOne(b.ctx, "test", func(tx *store.Tx) error {
			var err error
			m, err = tx.EndLeasedWithJob(b.ctx, a, f, core.AttemptSucceeded, core.ReasonNone, nil, core.JobRunning, core.JobSucceeded, core.ReasonNone, noOutputs)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// unmoved checks that nothing of a refused end was written.
	unmoved := func(t *testing.T, b bundle, m store.Moved, a core.Attempt, jobState core.JobState, events int) {
		t.Helper()
		got, _ := b.s.Attempt(b.ctx, a.ID)
		gotJob, _ := b.s.Job(b.ctx, a.JobID)
		evs, _ := b.s.Events(b.ctx, a.RunID)
		if m.AttemptMoved || m.JobMoved || got.State != core.AttemptRunning || gotJob.State != jobState || len(evs) != events {
			t.Fatalf("moved attempt %v, job %v; stored attempt %s, job %s, %d events (want running, %s, %d)",
				m.AttemptMoved, m.JobMoved, got.State, gotJob.State, len(evs), jobState, events)
		}
	}

	t.Run("EndLeasedWithJobMovesBothOrNeither", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, j, a := startedAttempt(t, b) // the job is still queued
		before, _ := b.s.Events(b.ctx, a.RunID)
		unmoved(t, b, end(t, b, a, false), a, core.JobQueued, len(before))
		mustUpdate(t, b, func(tx *store.Tx) error { return tx.MoveJob(b.ctx, j, core.JobRunning, "") })
		if m := end(t, b, a, true); !m.AttemptMoved || !m.JobMoved || m.Job.State != core.JobSucceeded {
			t.Fatalf("moved attempt %v, job %v (%s); want both, the job succeeded", m.AttemptMoved, m.JobMoved, m.Job.State)
		}
	})

	t.Run("EndLeasedWithJobKeepsOutputsForTheirManifest", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		sp := spec("a")
		sp.Outputs = []string{"dist/**"}
		_, j, a := startedAttemptOf(t, b, sp)
		mustUpdate(t, b, func(tx *store.Tx) error { return tx.MoveJob(b.ctx, j, core.JobRunning, "") })
		before, _ := b.s.Events(b.ctx, a.RunID)
		unmoved(t, b, end(t, b, a, true), a, core.JobRunning, len(before))
		if m := end(t, b, a, false); !m.AttemptMoved || !m.JobMoved {
			t.Fatalf("without noOutputs: moved attempt %v, job %v; want both", m.AttemptMoved, m.JobMoved)
		}
	})

	t.Run("MoveLeasedWithJobWritesNothingOffTheFence", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, j, a := startedAttempt(t, b)
		mustUpdate(t, b, func(tx *store.Tx) error { return tx.MoveJob(b.ctx, j, core.JobRunning, "") })
		before, _ := b.s.Events(b.ctx, a.RunID)
		for _, f := range []store.Fence{
			{AttemptID: a.ID, LeaseToken: "stale"},
			{AttemptID: a.ID, LeaseToken: a.LeaseToken, RunnerID: "another runner"},
		} {
			seen := a
			seen.LeaseToken, seen.RunnerID = f.LeaseToken, f.RunnerID
			var m store.Moved
			mustUpdate(t, b, func(tx *store.Tx) error {
				var err error
				m, err = tx.MoveLeasedWithJob(b.ctx, seen, f, core.AttemptSucceeded, core.ReasonNone, nil, core.JobRunning, core.JobSucceeded, core.ReasonNone)
				return err
			})
			if m.AttemptMoved || m.JobMoved {
				t.Fatalf("fence %+v: moved attempt %v, job %v", f, m.AttemptMoved, m.JobMoved)
			}
		}
		after, _ := b.s.Events(b.ctx, a.RunID)
		got, _ := b.s.Attempt(b.ctx, a.ID)
		gotJob, _ := b.s.Job(b.ctx, j.ID)
		if len(after) != len(before) || got.State != core.AttemptRunning || gotJob.State != core.JobRunning {
			t.Fatalf("off the fence: attempt %s, job %s, %d events added", got.State, gotJob.State, len(after)-len(before))
		}
	})
}
