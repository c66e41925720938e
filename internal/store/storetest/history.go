package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// historyRun creates a run of project at ref and moves it to state.
func historyRun(t *testing.T, b bundle, project, ref, event string, state core.RunState) core.Run {
	t.Helper()
	r, _, err := b.s.CreateRun(b.ctx, "test", store.NewRun{
		Project: project, Repo: "/" + project, Ref: ref, Commit: "abc", Event: event,
		Jobs: []store.NewJob{{Spec: spec("a")}},
	})
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	path := map[core.RunState][]core.RunState{
		core.RunQueued:   nil,
		core.RunRunning:  {core.RunPlanning, core.RunRunning},
		core.RunFailed:   {core.RunPlanning, core.RunRunning, core.RunFailed},
		core.RunCanceled: {core.RunCanceled},
	}[state]
	from := core.RunQueued
	for _, to := range path {
		mustUpdate(t, b, func(tx *store.Tx) error { return tx.MoveRun(b.ctx, r.ID, from, to, "") })
		from = to
	}
	r.State = state
	return r
}

// allPages follows the cursor from the first page and returns every run
// shown, failing on a page that is not newest first.
func allPages(t *testing.T, b bundle, f store.RunFilter) []string {
	t.Helper()
	var ids []string
	var last core.Run
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("the cursor never ends")
		}
		page, err := b.s.ListRuns(b.ctx, f)
		if err != nil {
			t.Fatalf("ListRuns(%+v): %v", f, err)
		}
		for _, r := range page.Runs {
			if last.ID != "" && (r.CreatedAt.After(last.CreatedAt) || r.CreatedAt.Equal(last.CreatedAt) && r.ID >= last.ID) {
				t.Fatalf("run %s (%s) follows %s (%s): not newest first", r.ID, r.CreatedAt, last.ID, last.CreatedAt)
			}
			last = r
			ids = append(ids, r.ID)
		}
		if page.Next == "" {
			return ids
		}
		if len(page.Runs) != max(f.Limit, 1) && f.Limit != 0 {
			t.Fatalf("a page of %d runs before the last, want %d", len(page.Runs), f.Limit)
		}
		f.Cursor = page.Next
	}
}

func reversed(runs []core.Run) []string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[len(runs)-1-i] = r.ID
	}
	return ids
}

// RunHistory checks run history: pages newest first, filters and cursors.
func RunHistory(t *testing.T, open Opener) {
	t.Run("PagesNewestFirst", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		var runs []core.Run
		for i := range 7 {
			// Runs created in the same millisecond are ordered by id.
			if i%3 == 0 {
				b.clock.advance(time.Second)
			}
			runs = append(runs, historyRun(t, b, "web", "refs/heads/main", core.EventPush, core.RunQueued))
		}
		want := reversed(runs)
		for _, limit := range []int{1, 2, 3, 7, 0} {
			if got := allPages(t, b, store.RunFilter{Limit: limit}); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("limit %d: pages show\n%v\nwant\n%v", limit, got, want)
			}
		}
		page, err := b.s.ListRuns(b.ctx, store.RunFilter{Limit: 7})
		if err != nil || page.Next != "" || len(page.Runs) != 7 {
			t.Fatalf("a page holding every run: %d runs, next %q, %v; want 7 and no next", len(page.Runs), page.Next, err)
		}
	})

	t.Run("CursorStableUnderInserts", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		var before []core.Run
		for range 5 {
			b.clock.advance(time.Millisecond)
			before = append(before, historyRun(t, b, "web", "main", core.EventPush, core.RunQueued))
		}
		f := store.RunFilter{Limit: 2}
		var seen []string
		for {
			page, err := b.s.ListRuns(b.ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Runs {
				seen = append(seen, r.ID)
			}
			// Runs made between pages are newer: they belong before the
			// first page and never shift the following ones.
			historyRun(t, b, "web", "main", core.EventPush, core.RunQueued)
			if page.Next == "" {
				break
			}
			f.Cursor = page.Next
		}
		if want := reversed(before); strings.Join(seen, ",") != strings.Join(want, ",") {
			t.Fatalf("paging while runs are created showed\n%v\nwant\n%v", seen, want)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		webMain := historyRun(t, b, "web", "refs/heads/main", core.EventPush, core.RunFailed)
		b.clock.advance(time.Millisecond)
		webDev := historyRun(t, b, "web", "refs/heads/dev", core.EventManual, core.RunRunning)
		b.clock.advance(time.Millisecond)
		apiMain := historyRun(t, b, "api", "refs/heads/main", core.EventPush, core.RunCanceled)
		b.clock.advance(time.Millisecond)
		tag := historyRun(t, b, "api", "v1.0", core.EventManual, core.RunFailed)
		for _, c := range []struct {
			name string
			f    store.RunFilter
			want []core.Run
		}{
			{"None", store.RunFilter{}, []core.Run{tag, apiMain, webDev, webMain}},
			{"Project", store.RunFilter{Project: "web"}, []core.Run{webDev, webMain}},
			{"BranchName", store.RunFilter{Ref: "main"}, []core.Run{apiMain, webMain}},
			{"FullRef", store.RunFilter{Ref: "refs/heads/dev"}, []core.Run{webDev}},
			{"OtherRef", store.RunFilter{Ref: "v1.0"}, []core.Run{tag}},
			{"State", store.RunFilter{State: "failed"}, []core.Run{tag, webMain}},
			{"Event", store.RunFilter{Event: "manual"}, []core.Run{tag, webDev}},
			{"All", store.RunFilter{Project: "web", Ref: "main", State: "failed", Event: "push"}, []core.Run{webMain}},
			{"NoMatch", store.RunFilter{Project: "web", State: "canceled"}, nil},
			{"UnknownProject", store.RunFilter{Project: "nope"}, nil},
			{"Paged", store.RunFilter{Project: "api", Limit: 1}, []core.Run{tag, apiMain}},
		} {
			t.Run(c.name, func(t *testing.T) {
				var want []string
				for _, r := range c.want {
					want = append(want, r.ID)
				}
				if got := allPages(t, b, c.f); strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("ListRuns(%+v) = %v, want %v", c.f, got, want)
				}
			})
		}
		page, err := b.s.ListRuns(b.ctx, store.RunFilter{Project: "web", State: "failed"})
		if err != nil || len(page.Runs) != 1 {
			t.Fatalf("ListRuns: %v, %v", page.Runs, err)
		}
		if got := page.Runs[0]; got.Project != "web" || got.Ref != "refs/heads/main" || got.State != core.RunFailed || got.Event != core.EventPush || got.Commit != "abc" {
			t.Errorf("listed run = %+v, want it as stored", got)
		}
	})

	t.Run("ErrInvalidFilter", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		for _, c := range []struct {
			f    store.RunFilter
			want string
		}{
			{store.RunFilter{State: "bogus"}, `"bogus"`},
			{store.RunFilter{Event: "tag"}, `"tag"`},
			{store.RunFilter{Limit: store.MaxRunPage + 1}, "201"},
			{store.RunFilter{Limit: -1}, "-1"},
			{store.RunFilter{Cursor: "not a cursor"}, `"not a cursor"`},
			{store.RunFilter{Cursor: "cjE6eDp5"}, "cjE6eDp5"}, // "r1:x:y"
		} {
			_, err := b.s.ListRuns(b.ctx, c.f)
			wantKind(t, err, core.KindInvalid)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("ListRuns(%+v): %v, want it to name %s", c.f, err, c.want)
			}
		}
	})

	t.Run("TraceParent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		r, jobs, err := b.s.CreateRun(b.ctx, "test", store.NewRun{
			Project: "web", Repo: "/web", Ref: "main", Commit: "abc", Event: core.EventPush, TraceParent: tp,
			Jobs: []store.NewJob{{Spec: spec("a")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if r.TraceParent != tp {
			t.Errorf("CreateRun returned TraceParent %q, want %q", r.TraceParent, tp)
		}
		if got, err := b.s.Run(b.ctx, r.ID); err != nil || got.TraceParent != tp {
			t.Errorf("Run(%s).TraceParent = %q, %v; want %q", r.ID, got.TraceParent, err, tp)
		}
		if _, got, err := b.s.JobRun(b.ctx, jobs[0].ID); err != nil || got.TraceParent != tp {
			t.Errorf("JobRun(%s) run's TraceParent = %q, %v; want %q", jobs[0].ID, got.TraceParent, err, tp)
		}
		// A lease, on whichever server, parents the job's spans on it.
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
			_, err := tx.EnqueueAttempt(b.ctx, jobs[0])
			return err
		})
		c, err := b.s.ClaimAttempt(b.ctx, "runner-1", store.Claim{RunID: r.ID, RunnerID: "runner-1", TTL: 20 * time.Second})
		if err != nil || c.Run.TraceParent != tp {
			t.Errorf("ClaimAttempt's run has TraceParent %q, %v; want %q", c.Run.TraceParent, err, tp)
		}
		errored, err := b.s.CreateErroredRun(b.ctx, "test", store.NewRun{
			Project: "web", Repo: "/web", Ref: "main", Commit: "abc", Event: core.EventPush, TraceParent: tp,
		}, core.ReasonConfigError, "bad pipeline")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := b.s.Run(b.ctx, errored.ID); err != nil || got.TraceParent != tp {
			t.Errorf("an errored run's TraceParent = %q, %v; want %q", got.TraceParent, err, tp)
		}
		// Runs made while tracing was off have none.
		plain, _ := newRun(t, b, "b")
		if got, err := b.s.Run(b.ctx, plain.ID); err != nil || got.TraceParent != "" {
			t.Errorf("a run made without a trace has TraceParent %q, %v", got.TraceParent, err)
		}
	})

	t.Run("RerunOf", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		orig := historyRun(t, b, "web", "main", core.EventPush, core.RunFailed)
		r, _, err := b.s.CreateRun(b.ctx, "test", store.NewRun{
			Project: "web", Repo: "/web", Ref: "main", Commit: "abc", Event: core.EventPush, RerunOf: orig.ID,
			Jobs: []store.NewJob{{Spec: spec("a")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.s.Run(b.ctx, r.ID)
		if err != nil || got.RerunOf != orig.ID {
			t.Fatalf("Run(%s).RerunOf = %q, %v; want %s", r.ID, got.RerunOf, err, orig.ID)
		}
		if got, _ := b.s.Run(b.ctx, orig.ID); got.RerunOf != "" {
			t.Errorf("a run that is no rerun has RerunOf %q", got.RerunOf)
		}
		page, err := b.s.ListRuns(b.ctx, store.RunFilter{Limit: 1})
		if err != nil || len(page.Runs) != 1 || page.Runs[0].RerunOf != orig.ID {
			t.Fatalf("ListRuns shows %+v, %v; want the rerun with its origin", page.Runs, err)
		}
	})
}
