package httpapi

import (
	"net/http"
	"net/url"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// Page sizes of the log routes; the store refuses larger pages too.
const (
	defaultPage = 1000
	maxPage     = 10000
)

// page reads ?after= and ?limit=.
func page(q url.Values) (after, limit int64, err error) {
	limit = defaultPage
	if q.Has("after") {
		if after, err = parseOffset(q.Get("after")); err != nil {
			return 0, 0, core.E(core.KindInvalid, "after", "after %.40q is not a sequence number", q.Get("after"))
		}
	}
	if q.Has("limit") {
		n, ok := digits(q.Get("limit"))
		if !ok || n < 1 || n > maxPage {
			return 0, 0, core.E(core.KindInvalid, "limit", "limit %.40q is not a number from 1 to %d", q.Get("limit"), maxPage)
		}
		limit = n
	}
	return after, limit, nil
}

// events pages through the whole log in order: pass the last seq seen as
// ?after= to continue.
func (s *server) events(w http.ResponseWriter, r *http.Request) error {
	after, limit, err := page(r.URL.Query())
	if err != nil {
		return err
	}
	evs, err := s.meta.Events(r.Context(), after, limit)
	if err != nil {
		return err
	}
	return writeEvents(w, evs)
}

// audit lists the events that carry an actor, filtered by subject (a ref
// without a tag is its :latest), actor and time (?since=, an RFC 3339 time
// or a duration back from now, as the CLI takes it).
func (s *server) audit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	after, limit, err := page(q)
	if err != nil {
		return err
	}
	f := eventlog.AuditFilter{Subject: q.Get("subject"), Actor: q.Get("actor"), After: after, Limit: limit}
	if q.Has("since") {
		t, err := eventlog.ParseSince(q.Get("since"), s.meta.Now())
		if err != nil {
			return err
		}
		f.Since = t.UnixMilli()
	}
	evs, err := s.meta.Audit(r.Context(), f)
	if err != nil {
		return err
	}
	return writeEvents(w, evs)
}

func writeEvents(w http.ResponseWriter, evs []eventlog.Event) error {
	out := EventList{Events: make([]Event, len(evs))}
	for i, e := range evs {
		b, err := eventBody(e)
		if err != nil {
			return err
		}
		out.Events[i] = b
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
