package storetest

import (
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// RunErrored checks runs recorded as errored before any job was made.
func RunErrored(t *testing.T, open Opener) {
	t.Run("RecordedWithItsMessage", func(t *testing.T) {
		b := setup(t, open)
		msg := ".deltaci.yml@0123456789ab:3:5: unknown key \"rn\" in job build (did you mean run?)"
		nr := store.NewRun{Project: "web", Repo: "/repo", Ref: "refs/heads/main", Commit: "abc1234", Event: core.EventPush, TrustReason: "why"}
		r, err := b.s.CreateErroredRun(b.ctx, "alice", nr, core.ReasonConfigError, msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.s.Run(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != core.RunErrored || got.Reason != core.ReasonConfigError || got.Project != "web" || got.Commit != "abc1234" ||
			got.FinishedAt.IsZero() || !got.StartedAt.IsZero() || got.CreatedAt.IsZero() {
			t.Errorf("run = %+v", got)
		}
		if m, err := b.s.RunMessage(b.ctx, r.ID); err != nil || m != msg {
			t.Errorf("message = %q, %v; want %q", m, err, msg)
		}
		jobs, err := b.s.Jobs(b.ctx, r.ID)
		if err != nil || len(jobs) != 0 {
			t.Errorf("jobs = %v, %v", jobs, err)
		}
		evs, err := b.s.Events(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		var moves []string
		for _, e := range evs {
			if e.Actor != "alice" {
				t.Errorf("event %+v: actor %q", e, e.Actor)
			}
			moves = append(moves, e.From+">"+e.To+":"+string(e.Reason))
		}
		if want := ">queued:,queued>planning:,planning>errored:config_error"; strings.Join(moves, ",") != want {
			t.Errorf("events %s, want %s", strings.Join(moves, ","), want)
		}
		active, err := b.s.ActiveRuns(b.ctx)
		if err != nil || len(active) != 0 {
			t.Errorf("active runs = %v, %v", active, err)
		}
	})
	t.Run("OtherRunsHaveNoMessage", func(t *testing.T) {
		b := setup(t, open)
		r, _ := newRun(t, b, "a")
		if m, err := b.s.RunMessage(b.ctx, r.ID); err != nil || m != "" {
			t.Errorf("message = %q, %v", m, err)
		}
		_, err := b.s.RunMessage(b.ctx, store.NewID())
		wantKind(t, err, core.KindNotFound)
	})
	t.Run("LongMessageIsCut", func(t *testing.T) {
		b := setup(t, open)
		msg := strings.Repeat("é", store.MaxRunMessage)
		r, err := b.s.CreateErroredRun(b.ctx, "test", store.NewRun{Event: core.EventManual}, core.ReasonConfigError, msg)
		if err != nil {
			t.Fatal(err)
		}
		m, err := b.s.RunMessage(b.ctx, r.ID)
		if err != nil || len(m) > store.MaxRunMessage || !strings.HasPrefix(m, "éé") || !strings.HasSuffix(m, "(cut)") || strings.ContainsRune(m, '\uFFFD') {
			t.Errorf("message of %d bytes: %.40q...%v", len(m), m, err)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		b := setup(t, open)
		for name, c := range map[string]struct {
			nr     store.NewRun
			reason core.Reason
			msg    string
		}{
			"no event":   {store.NewRun{}, core.ReasonConfigError, "m"},
			"jobs":       {store.NewRun{Event: core.EventPush, Jobs: []store.NewJob{{Spec: spec("a")}}}, core.ReasonConfigError, "m"},
			"no reason":  {store.NewRun{Event: core.EventPush}, core.ReasonNone, "m"},
			"bad reason": {store.NewRun{Event: core.EventPush}, core.Reason("oops"), "m"},
			"no message": {store.NewRun{Event: core.EventPush}, core.ReasonConfigError, " \n"},
		} {
			_, err := b.s.CreateErroredRun(b.ctx, "test", c.nr, c.reason, c.msg)
			if core.KindOf(err) != core.KindInvalid {
				t.Errorf("%s: err = %v, want invalid", name, err)
			}
		}
	})
}
