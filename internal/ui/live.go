package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Timers of a page's live stream.
const (
	// liveEvery re-reads a page whose data the store does not announce
	// (lists of runs, runners), and any page as a safety net.
	liveEvery = time.Second
	// liveKeepalive keeps proxies from closing an idle stream.
	liveKeepalive = 15 * time.Second
)

// wantsStream reports whether the request is an EventSource's.
func wantsStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// serve answers a page: the whole page, or for an EventSource a stream
// of its "live" part, sent again each time it changes. runID, when set,
// is the run whose changes wake the stream at once.
func (u *UI) serve(w http.ResponseWriter, r *http.Request, page string, runID string, load func(ctx context.Context) (any, error)) error {
	data, err := load(r.Context())
	if err != nil {
		return err
	}
	if !wantsStream(r) {
		u.render(w, r, http.StatusOK, page, data)
		return nil
	}
	return u.stream(w, r, page, runID, data, load)
}

// liveEvent is the data of a stream's "live" event.
type liveEvent struct {
	HTML string `json:"html"`
}

func (u *UI) stream(w http.ResponseWriter, r *http.Request, page, runID string, data any, load func(ctx context.Context) (any, error)) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return fmt.Errorf("the connection cannot stream")
	}
	ctx := r.Context()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	var wake <-chan struct{}
	if runID != "" {
		ch, stop := u.cfg.Backend.Changes(ctx, runID)
		defer stop()
		wake = ch
	}
	tick := time.NewTicker(liveEvery)
	defer tick.Stop()
	keep := time.NewTicker(liveKeepalive)
	defer keep.Stop()
	var last []byte
	for {
		var b bytes.Buffer
		if err := u.renderBlock(&b, page, "live", data); err != nil {
			return nil // the status is out; the client reconnects
		}
		if !bytes.Equal(b.Bytes(), last) {
			last = b.Bytes()
			if err := sendEvent(w, fl, "live", liveEvent{HTML: b.String()}); err != nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-u.cfg.Backend.Draining():
			return nil
		case <-wake:
		case <-tick.C:
		case <-keep.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return nil
			}
			fl.Flush()
			continue
		}
		d, err := load(ctx)
		if err != nil {
			if ctx.Err() == nil {
				_ = sendEvent(w, fl, "failed", liveEvent{HTML: err.Error()})
			}
			return nil
		}
		data = d
	}
}

// sendEvent writes one Server-Sent Event whose data is v as JSON.
func sendEvent(w io.Writer, fl http.Flusher, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b); err != nil {
		return err
	}
	fl.Flush()
	return nil
}
