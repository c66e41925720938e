package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// Page sizes of run history.
const (
	DefaultRunPage = 50
	MaxRunPage     = 200
)

// RunFilter selects a page of run history. Empty fields match every run.
type RunFilter struct {
	Project string
	// Ref is a run's ref, or a branch name, which also matches the runs
	// of refs/heads/<name>.
	Ref   string
	State string // a core.RunState
	Event string // push, pull_request or manual
	// Limit is the page size: DefaultRunPage when zero, at most MaxRunPage.
	Limit int
	// Cursor is the Next of the previous page; empty for the first page.
	Cursor string
}

// RunPage is one page of run history, newest first.
type RunPage struct {
	Runs []core.Run
	// Next is the cursor of the following page, empty on the last one.
	Next string
}

// RunQuery is one engine read of run history: up to Limit runs older than
// (BeforeAt, BeforeID) in (created_at, id) order, newest first, matching
// every non-empty filter.
type RunQuery struct {
	Project, Ref, State, Event string
	BeforeAt                   int64 // Unix milliseconds
	BeforeID                   string
	Limit                      int
}

// ListRuns returns a page of run history, newest first. Pages follow each
// other by the position of the last run shown (its creation time and id),
// so runs created while a client pages never make it see a run twice or
// miss one that was there when it started. Errors: core.KindInvalid for an
// unknown state or event, a limit out of range or a cursor this store did
// not make.
func (s *Store) ListRuns(ctx context.Context, f RunFilter) (RunPage, error) {
	const op = "list runs"
	if f.State != "" {
		if _, err := core.ParseRunState(f.State); err != nil {
			return RunPage{}, core.E(core.KindInvalid, op, "unknown state %q (want one of %s)", f.State, runStateList())
		}
	}
	switch f.Event {
	case "", core.EventPush, core.EventPullRequest, core.EventManual:
	default:
		return RunPage{}, core.E(core.KindInvalid, op, "unknown event %q (want push, pull_request or manual)", f.Event)
	}
	limit := f.Limit
	switch {
	case limit == 0:
		limit = DefaultRunPage
	case limit < 0 || limit > MaxRunPage:
		return RunPage{}, core.E(core.KindInvalid, op, "limit %d is out of range: give 1 to %d", f.Limit, MaxRunPage)
	}
	q := RunQuery{Project: f.Project, Ref: f.Ref, State: f.State, Event: f.Event, BeforeAt: math.MaxInt64, Limit: limit + 1}
	if f.Cursor != "" {
		at, id, err := parseRunCursor(f.Cursor)
		if err != nil {
			return RunPage{}, core.E(core.KindInvalid, op, "cursor %q is not one this server gave: %v", f.Cursor, err)
		}
		q.BeforeAt, q.BeforeID = at, id
	}
	runs, err := s.drv.Read().ListRuns(ctx, q)
	if err != nil {
		return RunPage{}, fmt.Errorf("%s: %w", op, err)
	}
	page := RunPage{Runs: runs}
	if len(runs) > limit {
		page.Runs = runs[:limit]
		last := page.Runs[limit-1]
		page.Next = runCursor(last.CreatedAt, last.ID)
	}
	return page, nil
}

func runStateList() string {
	var names []string
	for _, st := range core.RunStates() {
		names = append(names, string(st))
	}
	return strings.Join(names, ", ")
}

// runCursor is opaque to clients: the last run's creation time and id.
func runCursor(created time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("r1:" + strconv.FormatInt(Millis(created), 10) + ":" + id))
}

func parseRunCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", fmt.Errorf("not base64")
	}
	rest, ok := strings.CutPrefix(string(b), "r1:")
	if !ok {
		return 0, "", fmt.Errorf("unknown version")
	}
	ms, id, ok := strings.Cut(rest, ":")
	at, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || at < 0 || id == "" {
		return 0, "", fmt.Errorf("malformed")
	}
	return at, id, nil
}
