package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// RunForges checks the webhook inbox and the Status Reporter's outbox.
func RunForges(t *testing.T, open Opener) {
	t.Run("DeliveryStoredOncePerProject", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		d := store.Delivery{Project: "web", Forge: "github", Delivery: "d-1", Event: `{"type":"push"}`}
		if _, added, err := b.s.AddDelivery(b.ctx, d); err != nil || !added {
			t.Fatalf("first delivery: added %v, %v", added, err)
		}
		if _, added, err := b.s.AddDelivery(b.ctx, d); err != nil || added {
			t.Fatalf("replayed delivery: added %v, %v; want false", added, err)
		}
		// Another project's delivery with the same id is its own.
		d.Project = "api"
		if _, added, err := b.s.AddDelivery(b.ctx, d); err != nil || !added {
			t.Fatalf("same id, other project: added %v, %v", added, err)
		}
		if n, err := b.s.InboxDepth(b.ctx); err != nil || n != 2 {
			t.Errorf("inbox depth = %d, %v; want 2", n, err)
		}
		_, _, err := b.s.AddDelivery(b.ctx, store.Delivery{Project: "web", Forge: "github", Event: "{}"})
		wantKind(t, err, core.KindInvalid)
	})

	t.Run("DeliveriesOfAProjectInOrder", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		add := func(project, id string) {
			t.Helper()
			if _, _, err := b.s.AddDelivery(b.ctx, store.Delivery{Project: project, Forge: "gitea", Delivery: id, Event: "{}"}); err != nil {
				t.Fatal(err)
			}
			b.clock.advance(time.Millisecond)
		}
		add("web", "w1")
		add("web", "w2")
		add("api", "a1")
		first, err := b.s.ClaimDelivery(b.ctx, time.Minute)
		if err != nil || first.Delivery != "w1" || first.Tries != 1 {
			t.Fatalf("first claim = %+v, %v; want w1", first, err)
		}
		// w2 waits for w1, so api's delivery comes next.
		second, err := b.s.ClaimDelivery(b.ctx, time.Minute)
		if err != nil || second.Delivery != "a1" {
			t.Fatalf("second claim = %+v, %v; want a1", second, err)
		}
		_, err = b.s.ClaimDelivery(b.ctx, time.Minute)
		wantKind(t, err, core.KindNotFound)
		// A failure that may pass: w1 is tried again after the wait, and w2
		// still waits behind it.
		if err := b.s.RetryDelivery(b.ctx, first, 10*time.Second, "fetch timed out"); err != nil {
			t.Fatal(err)
		}
		_, err = b.s.ClaimDelivery(b.ctx, time.Minute)
		wantKind(t, err, core.KindNotFound)
		b.clock.advance(10 * time.Second)
		again, err := b.s.ClaimDelivery(b.ctx, time.Minute)
		if err != nil || again.Delivery != "w1" || again.Tries != 2 || again.Message != "fetch timed out" {
			t.Fatalf("claim after the wait = %+v, %v; want w1, try 2", again, err)
		}
		if err := b.s.FinishDelivery(b.ctx, again, store.DeliveryDone, "run-1", ""); err != nil {
			t.Fatal(err)
		}
		next, err := b.s.ClaimDelivery(b.ctx, time.Minute)
		if err != nil || next.Delivery != "w2" {
			t.Fatalf("claim after w1 = %+v, %v; want w2", next, err)
		}
		// The first claim of w1 lost its lease long ago.
		wantKind(t, b.s.FinishDelivery(b.ctx, first, store.DeliveryFailed, "", "late"), core.KindLeaseLost)
		got, err := b.s.Deliveries(b.ctx, "web", 10)
		if err != nil || len(got) != 2 || got[0].Delivery != "w2" || got[1].State != store.DeliveryDone || got[1].RunID != "run-1" {
			t.Errorf("deliveries = %+v, %v", got, err)
		}
	})

	t.Run("ExpiredDeliveryLeaseIsClaimedAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		if _, _, err := b.s.AddDelivery(b.ctx, store.Delivery{Project: "web", Forge: "gitlab", Delivery: "x", Event: "{}"}); err != nil {
			t.Fatal(err)
		}
		lost, err := b.s.ClaimDelivery(b.ctx, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		b.clock.advance(time.Minute + time.Millisecond)
		d, err := b.s.ClaimDelivery(b.ctx, time.Minute)
		if err != nil || d.ID != lost.ID || d.Tries != 2 {
			t.Fatalf("reclaim = %+v, %v", d, err)
		}
		wantKind(t, b.s.RetryDelivery(b.ctx, lost, 0, "late"), core.KindLeaseLost)
		if err := b.s.FinishDelivery(b.ctx, d, store.DeliveryFailed, "", "no .deltaci.yml"); err != nil {
			t.Fatal(err)
		}
		if n, err := b.s.InboxDepth(b.ctx); err != nil || n != 0 {
			t.Errorf("inbox depth = %d, %v; want 0", n, err)
		}
		b.clock.advance(time.Hour)
		if n, err := b.s.PruneForgeRows(b.ctx, b.s.Now()); err != nil || n != 1 {
			t.Errorf("pruned %d, %v; want 1", n, err)
		}
	})

	t.Run("RenewedDeliveryIsNotClaimedAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		if _, _, err := b.s.AddDelivery(b.ctx, store.Delivery{Project: "web", Forge: "github", Delivery: "r", Event: "{}"}); err != nil {
			t.Fatal(err)
		}
		d, err := b.s.ClaimDelivery(b.ctx, 30*time.Second)
		if err != nil || d.Claim == "" {
			t.Fatalf("claim = %+v, %v", d, err)
		}
		b.clock.advance(20 * time.Second)
		if d, err = b.s.RenewDelivery(b.ctx, d, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		// Past the first lease, within the renewed one.
		b.clock.advance(20 * time.Second)
		_, err = b.s.ClaimDelivery(b.ctx, 30*time.Second)
		wantKind(t, err, core.KindNotFound)
		// Its holder stops renewing: another claims it, and the old
		// claim can neither renew nor finish.
		b.clock.advance(11 * time.Second)
		other, err := b.s.ClaimDelivery(b.ctx, 30*time.Second)
		if err != nil || other.Claim == d.Claim {
			t.Fatalf("claim after the lapse = %+v, %v", other, err)
		}
		_, err = b.s.RenewDelivery(b.ctx, d, 30*time.Second)
		wantKind(t, err, core.KindLeaseLost)
		wantKind(t, b.s.FinishDelivery(b.ctx, d, store.DeliveryDone, "run", ""), core.KindLeaseLost)
		if err := b.s.FinishDelivery(b.ctx, other, store.DeliveryDone, "run", ""); err != nil {
			t.Fatal(err)
		}
		// A finished delivery is over, whoever holds an old claim.
		wantKind(t, b.s.RetryDelivery(b.ctx, other, 0, "again"), core.KindLeaseLost)
	})

	t.Run("EveryMoveWritesTheOutbox", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		run, jobs := forgeRun(t, b, "lint", "test")
		rows := statuses(t, b, run.ID)
		if len(rows) != 3 || rows[0].JobID != "" || rows[0].Version != 1 || rows[1].Version != 1 || rows[0].Posted != 0 {
			t.Fatalf("outbox after create = %+v; want the run and its two jobs at version 1", rows)
		}
		mustUpdate(t, b, func(tx *store.Tx) error {
			return tx.MoveJob(b.ctx, jobs[0], core.JobSkipped, core.ReasonNone)
		})
		byJob := map[string]store.StatusRow{}
		for _, r := range statuses(t, b, run.ID) {
			byJob[r.JobID] = r
		}
		if byJob[jobs[0].ID].Version != 2 || byJob[jobs[1].ID].Version != 1 || byJob[""].Version != 1 {
			t.Errorf("outbox after one job's move = %+v", byJob)
		}
		// A run without a forge writes none.
		plain, _ := newRun(t, b, "x")
		if rows := statuses(t, b, plain.ID); len(rows) != 0 {
			t.Errorf("a run without a forge has outbox rows %+v", rows)
		}
		if _, err := b.s.RunForge(b.ctx, plain.ID); core.KindOf(err) != core.KindNotFound {
			t.Errorf("RunForge of a run without a forge: %v", err)
		}
		f, err := b.s.RunForge(b.ctx, run.ID)
		if err != nil || f.Kind != "gitea" || f.Commit != run.Commit || f.TokenSecret != "GITEA_TOKEN" {
			t.Errorf("RunForge = %+v, %v", f, err)
		}
	})

	t.Run("ErroredRunWritesTheOutbox", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		nr := store.NewRun{Project: "web", Repo: "/repo", Ref: "refs/heads/main", Commit: "abc1234", Event: core.EventPush, Forge: testForge()}
		r, err := b.s.CreateErroredRun(b.ctx, "forge", nr, core.ReasonConfigError, ".deltaci.yml:1:1: bad")
		if err != nil {
			t.Fatal(err)
		}
		rows := statuses(t, b, r.ID)
		if len(rows) != 1 || rows[0].JobID != "" || rows[0].Version != 3 {
			t.Errorf("outbox = %+v; want the run's context at version 3 (queued, planning, errored)", rows)
		}
	})

	t.Run("PostedNeverGoesBack", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		run, jobs := forgeRun(t, b, "lint")
		claimed, err := b.s.ClaimStatuses(b.ctx, 10, time.Minute)
		if err != nil || len(claimed) != 2 {
			t.Fatalf("claim = %+v, %v; want 2", claimed, err)
		}
		if again, err := b.s.ClaimStatuses(b.ctx, 10, time.Minute); err != nil || len(again) != 0 {
			t.Fatalf("leased rows claimed again: %+v, %v", again, err)
		}
		// The job moves while its status is being posted: the post covered
		// version 1 only, so the context is due again.
		mustUpdate(t, b, func(tx *store.Tx) error { return tx.MoveJob(b.ctx, jobs[0], core.JobSkipped, core.ReasonNone) })
		for _, c := range claimed {
			if err := b.s.FinishStatus(b.ctx, c, "pending queued", ""); err != nil {
				t.Fatal(err)
			}
		}
		due, err := b.s.ClaimStatuses(b.ctx, 10, time.Minute)
		if err != nil || len(due) != 1 || due[0].JobID != jobs[0].ID || due[0].Version != 2 || due[0].Posted != 1 || due[0].PostedState != "pending queued" {
			t.Fatalf("due after the move = %+v, %v; want the job at version 2, posted 1", due, err)
		}
		if err := b.s.FinishStatus(b.ctx, due[0], "success skipped", ""); err != nil {
			t.Fatal(err)
		}
		// A late finish of an older version leaves posted where it is.
		stale := due[0]
		stale.Version = 1
		wantKind(t, b.s.FinishStatus(b.ctx, stale, "pending queued", ""), core.KindLeaseLost)
		for _, r := range statuses(t, b, run.ID) {
			if r.Posted != r.Version {
				t.Errorf("row %+v not posted", r)
			}
		}
		if n, oldest, err := b.s.StatusBacklog(b.ctx); err != nil || n != 0 || !oldest.IsZero() {
			t.Errorf("backlog = %d, %v, %v; want 0", n, oldest, err)
		}
	})

	t.Run("RetryWaitsAndExpiredLeasesPass", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		run, _ := forgeRun(t, b)
		rows, err := b.s.ClaimStatuses(b.ctx, 10, time.Minute)
		if err != nil || len(rows) != 1 {
			t.Fatalf("claim = %+v, %v", rows, err)
		}
		if err := b.s.RetryStatus(b.ctx, rows[0], 30*time.Second, "forge answered 503"); err != nil {
			t.Fatal(err)
		}
		if n, oldest, err := b.s.StatusBacklog(b.ctx); err != nil || n != 1 || !oldest.Equal(run.CreatedAt) {
			t.Errorf("backlog = %d, %v, %v; want 1 since %v", n, oldest, err, run.CreatedAt)
		}
		if got, _ := b.s.ClaimStatuses(b.ctx, 10, time.Minute); len(got) != 0 {
			t.Fatalf("claimed before its retry time: %+v", got)
		}
		b.clock.advance(30 * time.Second)
		first, err := b.s.ClaimStatuses(b.ctx, 10, time.Minute)
		if err != nil || len(first) != 1 || first[0].Tries != 2 || first[0].LastError != "forge answered 503" {
			t.Fatalf("claim after the wait = %+v, %v", first, err)
		}
		// Its holder stalls past the lease: another claims it, and the
		// stalled one can no longer record anything.
		b.clock.advance(time.Minute + time.Millisecond)
		second, err := b.s.ClaimStatuses(b.ctx, 10, time.Minute)
		if err != nil || len(second) != 1 {
			t.Fatalf("claim after the lease = %+v, %v", second, err)
		}
		wantKind(t, b.s.FinishStatus(b.ctx, first[0], "success", ""), core.KindLeaseLost)
		if err := b.s.FinishStatus(b.ctx, second[0], "", "forge answered 404: Not Found"); err != nil {
			t.Fatal(err)
		}
		r := statuses(t, b, run.ID)[0]
		if r.Posted != r.Version || r.LastError != "forge answered 404: Not Found" {
			t.Errorf("row after giving up = %+v", r)
		}
	})

	t.Run("ConcurrentClaimsNeverShareARow", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		names := make([]string, 40)
		for i := range names {
			names[i] = "job" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		}
		forgeRun(t, b, names...)
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					rows, err := b.s.ClaimStatuses(b.ctx, 3, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if len(rows) == 0 {
						return
					}
					mu.Lock()
					for _, r := range rows {
						seen[r.JobID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != 41 {
			t.Errorf("claimed %d contexts, want 41", len(seen))
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("context %q claimed %d times", id, n)
			}
		}
	})
}

func testForge() *store.RunForge {
	return &store.RunForge{Kind: "gitea", APIURL: "http://127.0.0.1:3000/api/v1", Repo: "alice/web", Commit: "0123456789abcdef0123456789abcdef01234567", TokenSecret: "GITEA_TOKEN"}
}

func forgeRun(t *testing.T, b bundle, names ...string) (core.Run, []core.Job) {
	t.Helper()
	f := testForge()
	nr := store.NewRun{Project: "web", Repo: "/repo", Ref: "refs/heads/main", Commit: f.Commit, Event: core.EventPush, Forge: f}
	for _, n := range names {
		nr.Jobs = append(nr.Jobs, store.NewJob{Spec: spec(n)})
	}
	r, jobs, err := b.s.CreateRun(b.ctx, "test", nr)
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	return r, jobs
}

func statuses(t *testing.T, b bundle, runID string) []store.StatusRow {
	t.Helper()
	rows, err := b.s.RunStatuses(b.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// RunDeliveryRuns checks that a delivery makes one run, however often it
// is claimed.
func RunDeliveryRuns(t *testing.T, open Opener) {
	b := setup(t, open)
	if _, _, err := b.s.AddDelivery(b.ctx, store.Delivery{Project: "web", Forge: "github", Delivery: "d", Event: "{}"}); err != nil {
		t.Fatal(err)
	}
	first, err := b.s.ClaimDelivery(b.ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Its planner stalls past the lease; another claims it and makes the run.
	b.clock.advance(time.Minute + time.Millisecond)
	second, err := b.s.ClaimDelivery(b.ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	nr := store.NewRun{Project: "web", Repo: "/repo", Ref: "refs/heads/main", Commit: "abc1234", Event: core.EventPush, Delivery: &second,
		Jobs: []store.NewJob{{Spec: spec("a")}}}
	run, _, err := b.s.CreateRun(b.ctx, "forge", nr)
	if err != nil {
		t.Fatal(err)
	}
	// The stalled planner's run is refused, and nothing of it is written.
	nr.Delivery = &first
	_, _, err = b.s.CreateRun(b.ctx, "forge", nr)
	wantKind(t, err, core.KindLeaseLost)
	_, err = b.s.CreateErroredRun(b.ctx, "forge", store.NewRun{Project: "web", Event: core.EventPush, Delivery: &first}, core.ReasonConfigError, "bad")
	wantKind(t, err, core.KindLeaseLost)
	page, err := b.s.ListRuns(b.ctx, store.RunFilter{Project: "web", Limit: 10})
	if err != nil || len(page.Runs) != 1 || page.Runs[0].ID != run.ID {
		t.Errorf("runs = %+v, %v; want only %s", page, err, run.ID)
	}
	ds, err := b.s.Deliveries(b.ctx, "web", 10)
	if err != nil || len(ds) != 1 || ds[0].State != store.DeliveryDone || ds[0].RunID != run.ID {
		t.Errorf("deliveries = %+v, %v", ds, err)
	}
	if _, err := b.s.ClaimDelivery(b.ctx, time.Minute); core.KindOf(err) != core.KindNotFound {
		t.Errorf("a done delivery was claimed again: %v", err)
	}
}
