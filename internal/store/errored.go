package store

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/deltaci/deltaci/internal/core"
)

// MaxRunMessage bounds the message an errored run keeps: a pipeline file
// with many errors says the first of them in full.
const MaxRunMessage = 8 << 10

// CreateErroredRun records a run that ended before any job was made, with
// reason and message saying why (a configuration error, with the place in
// the file): it moves through the run state machine, queued, planning,
// errored, in one transaction, so run history shows it like any run.
func (s *Store) CreateErroredRun(ctx context.Context, actor string, nr NewRun, reason core.Reason, message string) (core.Run, error) {
	const op = "create errored run"
	switch {
	case nr.Event == "":
		return core.Run{}, core.E(core.KindInvalid, op, "event is required")
	case len(nr.Jobs) > 0:
		return core.Run{}, core.E(core.KindInvalid, op, "an errored run has no jobs, got %d", len(nr.Jobs))
	case reason == core.ReasonNone:
		return core.Run{}, core.E(core.KindInvalid, op, "an errored run needs a reason")
	case strings.TrimSpace(message) == "":
		return core.Run{}, core.E(core.KindInvalid, op, "an errored run needs a message")
	}
	if _, err := core.ParseReason(string(reason)); err != nil {
		return core.Run{}, core.Wrap(core.KindInvalid, op, err)
	}
	message = clip(message, MaxRunMessage)
	var run core.Run
	err := s.Update(ctx, actor, func(tx *Tx) error {
		run = core.Run{
			ID: NewID(), Repo: nr.Repo, Ref: nr.Ref, Commit: nr.Commit, Event: nr.Event,
			Trusted: nr.Trusted, Project: nr.Project, TrustReason: nr.TrustReason, TraceParent: nr.TraceParent,
			State: core.RunQueued, CreatedAt: tx.now,
		}
		if err := tx.q.InsertRun(ctx, run); err != nil {
			return err
		}
		if err := s.runSources(ctx, tx.q, run.ID, nr); err != nil {
			return err
		}
		if err := tx.record(ctx, core.EntityRun, run.ID, run.ID, "", string(core.RunQueued), ""); err != nil {
			return err
		}
		if err := tx.MoveRun(ctx, run.ID, core.RunQueued, core.RunPlanning, core.ReasonNone); err != nil {
			return err
		}
		if err := tx.MoveRun(ctx, run.ID, core.RunPlanning, core.RunErrored, reason); err != nil {
			return err
		}
		if err := tx.q.SetRunMessage(ctx, run.ID, message); err != nil {
			return err
		}
		var err error
		run, err = tx.q.GetRun(ctx, run.ID)
		return err
	})
	if err != nil {
		return core.Run{}, fmt.Errorf("%s: %w", op, err)
	}
	return run, nil
}

// RunMessage is why a run errored, in words ("" for a run that did not
// error so, or one recorded before messages were kept).
func (s *Store) RunMessage(ctx context.Context, id string) (string, error) {
	return s.drv.Read().GetRunMessage(ctx, id)
}

// clip cuts s to at most max bytes at a rune boundary, saying so.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const more = "\n... (cut)"
	cut := max - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}
