package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// Timers of a run's event stream. None is a poll of the run for its
// changes: those come from the store's announcements (store.Watcher).
const (
	// waitingEvery re-reads a run that has queued attempts, for their
	// waiting reasons, which change with runners the run does not see.
	waitingEvery = 2 * time.Second
	// keepaliveEvery keeps proxies from closing an idle stream, and
	// re-reads the run: an announcement can be missed by a watch that
	// began while a transaction of the run was committing (watches.go).
	keepaliveEvery = 15 * time.Second
	// settleAfter re-reads the run once, soon after its watch began, for
	// the same reason.
	settleAfter = time.Second
	// unwatchedEvery re-reads the run when the engine announces nothing.
	unwatchedEvery = 250 * time.Millisecond
	// maxCursor bounds the attempts a Last-Event-ID may name.
	maxCursor = 10000
)

// hub wakes the streams subscribed to a run or an attempt when the store
// announces a change of it.
type hub struct {
	// watched is set once the store's announcements reach publish.
	watched atomic.Bool
	mu      sync.Mutex
	subs    map[string]map[chan struct{}]bool
	keys    map[chan struct{}][]string
}

// publish wakes the subscribers of id, or every subscriber for "".
func (h *hub) publish(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if id == "" {
		for ch := range h.keys {
			wake(ch)
		}
		return
	}
	for ch := range h.subs[id] {
		wake(ch)
	}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// subscribe has ch woken by the changes of id.
func (h *hub) subscribe(ch chan struct{}, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs, h.keys = map[string]map[chan struct{}]bool{}, map[chan struct{}][]string{}
	}
	if h.subs[id] == nil {
		h.subs[id] = map[chan struct{}]bool{}
	}
	if !h.subs[id][ch] {
		h.subs[id][ch] = true
		h.keys[ch] = append(h.keys[ch], id)
	}
}

// unsubscribe forgets every subscription of ch.
func (h *hub) unsubscribe(ch chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range h.keys[ch] {
		delete(h.subs[id], ch)
		if len(h.subs[id]) == 0 {
			delete(h.subs, id)
		}
	}
	delete(h.keys, ch)
}

// runStream is what one stream of a run's events has sent.
type runStream struct {
	s      *Server
	w      http.ResponseWriter
	fl     http.Flusher
	runID  string
	logs   bool
	job    string            // when set, only this job's logs
	sent   map[string]int64  // attempt id: log bytes sent
	jobs   map[string][]byte // job name: the job as last sent, for comparison
	run    []byte            // the run's own fields as last sent
	order  []string          // attempt ids in the run's order, for the cursor
	cursor []int64           // from Last-Event-ID, applied at the first read
}

// getRunEvents streams a run's events as Server-Sent Events: "run", then
// "job" and "log" events as the run moves, and "end" once it has ended
// and every log byte was sent. Each event's id is a cursor of the log
// bytes sent; a client reconnecting with it as Last-Event-ID gets every
// job again and the logs from where it stopped.
func (s *Server) getRunEvents(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.user(r); err != nil {
		return err
	}
	q := r.URL.Query()
	rs := &runStream{s: s, w: w, runID: r.PathValue("id"), logs: true, job: q.Get("job"),
		sent: map[string]int64{}, jobs: map[string][]byte{}}
	switch v := q.Get("logs"); v {
	case "", "1":
	case "0":
		rs.logs = false
	default:
		return core.E(core.KindInvalid, "run events", "logs must be 0 or 1, got %q", v)
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		c, err := parseCursor(v)
		if err != nil {
			return err
		}
		rs.cursor = c
	}
	ctx := r.Context()
	body, err := s.runBody(ctx, rs.runID)
	if err != nil {
		return err
	}
	if rs.job != "" && !hasJob(body, rs.job) {
		return core.E(core.KindNotFound, "run events", "run %s has no job %q", rs.runID, rs.job)
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return core.E(core.KindInternal, "run events", "the connection cannot stream")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rs.fl = fl
	rs.stream(ctx, body)
	return nil
}

func hasJob(run protocol.Run, name string) bool {
	for _, j := range run.Jobs {
		if j.Name == name {
			return true
		}
	}
	return false
}

// parseCursor reads a Last-Event-ID: the log bytes sent of each attempt,
// in the run's order, joined by dots.
func parseCursor(v string) ([]int64, error) {
	parts := strings.Split(v, ".")
	if len(parts) > maxCursor {
		return nil, core.E(core.KindInvalid, "run events", "Last-Event-ID names more than %d attempts", maxCursor)
	}
	out := make([]int64, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 {
			return nil, core.E(core.KindInvalid, "run events", "Last-Event-ID must be byte offsets joined by dots, as the stream sent it; got %.80q", v)
		}
		out[i] = n
	}
	return out, nil
}

// stream sends the run's events until it ends, the client leaves or the
// server drains. It wakes on the store's announcements of the run and its
// attempts, and on a timer only to re-read waiting reasons.
func (rs *runStream) stream(ctx context.Context, body protocol.Run) {
	s := rs.s
	ch := make(chan struct{}, 1)
	s.runEvents.subscribe(ch, rs.runID)
	defer s.runEvents.unsubscribe(ch)
	defer s.watchRun(ctx, rs.runID)()
	settle := time.After(settleAfter)
	if !s.runEvents.watched.Load() {
		// The engine announces nothing: a re-read is the only way to see.
		t := time.NewTicker(unwatchedEvery)
		defer t.Stop()
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					wake(ch)
				}
			}
		}()
	}
	keepalive := time.NewTicker(keepaliveEvery)
	defer keepalive.Stop()
	var waitTimer <-chan time.Time
	first := true
	subscribed := map[string]bool{}
	for {
		// A change announced between the read of body and a subscription
		// woke nobody: read again after subscribing to something new.
		fresh := first
		for _, j := range body.Jobs {
			for _, a := range j.Attempts {
				if !subscribed[a.ID] {
					subscribed[a.ID], fresh = true, true
					s.runEvents.subscribe(ch, a.ID)
				}
			}
		}
		if fresh {
			body = rs.reread(ctx, body)
		}
		if first {
			first = false
			rs.applyCursor(body)
		}
		done, err := rs.send(ctx, body)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, errClientGone) {
				rs.fail(err)
			}
			return
		}
		if done {
			return
		}
		waitTimer = nil
		if hasQueued(body) {
			waitTimer = time.After(waitingEvery)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.draining:
			return
		case <-ch:
		case <-waitTimer:
		case <-settle:
		case <-keepalive.C:
			if _, err := io.WriteString(rs.w, ": keepalive\n\n"); err != nil {
				return
			}
			rs.fl.Flush()
		}
		if body, err = s.runBody(ctx, rs.runID); err != nil {
			if ctx.Err() == nil {
				rs.fail(err)
			}
			return
		}
	}
}

// reread reads the run again after new subscriptions, so no change falls
// between the last read and them.
func (rs *runStream) reread(ctx context.Context, body protocol.Run) protocol.Run {
	if b, err := rs.s.runBody(ctx, rs.runID); err == nil {
		return b
	}
	return body
}

func (rs *runStream) applyCursor(body protocol.Run) {
	i := 0
	for _, j := range body.Jobs {
		for _, a := range j.Attempts {
			if i < len(rs.cursor) {
				rs.sent[a.ID] = rs.cursor[i]
			}
			i++
		}
	}
}

func hasQueued(body protocol.Run) bool {
	for _, j := range body.Jobs {
		for _, a := range j.Attempts {
			if a.State == string(core.AttemptQueued) {
				return true
			}
		}
	}
	return false
}

var errClientGone = errors.New("the client went away")

// send writes what changed since the last send: the run's own fields,
// then job by job in the run's order each attempt's new log bytes and
// then the job if it changed, so that a job's log comes before its end.
// It reports true after the "end" event.
func (rs *runStream) send(ctx context.Context, body protocol.Run) (bool, error) {
	rs.order = rs.order[:0]
	for _, j := range body.Jobs {
		for _, a := range j.Attempts {
			rs.order = append(rs.order, a.ID)
		}
	}
	own := body
	own.Jobs = nil
	if b, _ := json.Marshal(own); !bytes.Equal(b, rs.run) {
		rs.run = b
		if err := rs.event(protocol.EventRun, body); err != nil {
			return false, err
		}
	}
	complete := true
	for _, j := range body.Jobs {
		if rs.logs && (rs.job == "" || rs.job == j.Name) {
			for _, a := range j.Attempts {
				if a.State == string(core.AttemptQueued) {
					continue
				}
				length, err := rs.sendLog(ctx, j.Name, a)
				if err != nil {
					return false, err
				}
				if length < a.LogLength || !core.AttemptState(a.State).Terminal() {
					complete = false
				}
			}
		}
		if b := jobKey(j); !bytes.Equal(b, rs.jobs[j.Name]) {
			rs.jobs[j.Name] = b
			if err := rs.event(protocol.EventJob, j); err != nil {
				return false, err
			}
		}
	}
	if !core.RunState(body.State).Terminal() || !complete {
		return false, nil
	}
	return true, rs.event(protocol.EventEnd, body)
}

// jobKey is a job as compared between sends: log growth alone is not a
// change of the job (the log events carry it).
func jobKey(j protocol.Job) []byte {
	as := make([]protocol.Attempt, len(j.Attempts))
	for i, a := range j.Attempts {
		a.LogLength, a.LogDigest = 0, ""
		as[i] = a
	}
	j.Attempts = as
	b, _ := json.Marshal(j)
	return b
}

// sendLog sends an attempt's log bytes past those sent, and returns how
// many were sent in all.
func (rs *runStream) sendLog(ctx context.Context, job string, a protocol.Attempt) (int64, error) {
	off := rs.sent[a.ID]
	if off == a.LogLength {
		// Nothing new as of the read of the run: each append announces
		// itself, so a later one wakes the stream again. (Past the
		// length, the read below says whether the cursor is wrong.)
		return off, nil
	}
	for {
		data, _, err := rs.s.readLog(ctx, a.ID, off, readChunk)
		if err != nil {
			var oe *store.LogOffsetError
			if errors.As(err, &oe) {
				return off, core.E(core.KindInvalid, "run events", "Last-Event-ID says %d bytes of attempt %s were sent, but its log holds %d", off, a.ID, oe.Length)
			}
			return off, err
		}
		if len(data) == 0 {
			return off, nil
		}
		// The event's id counts its own bytes as sent.
		rs.sent[a.ID] = off + int64(len(data))
		if err := rs.event(protocol.EventLog, protocol.RunLog{Job: job, Attempt: a.ID, Number: a.Number, Offset: off, Data: data}); err != nil {
			return off, err
		}
		off += int64(len(data))
	}
}

// cursorID is the current Last-Event-ID: the log bytes sent per attempt.
func (rs *runStream) cursorID() string {
	var b strings.Builder
	for i, id := range rs.order {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.FormatInt(rs.sent[id], 10))
	}
	return b.String()
}

func (rs *runStream) event(name string, v any) error {
	if err := sse(rs.w, rs.fl, name, rs.cursorID(), v); err != nil {
		return errClientGone
	}
	return nil
}

// fail ends the stream with an "error" event saying why.
func (rs *runStream) fail(err error) {
	_ = sse(rs.w, rs.fl, protocol.EventError, "", protocol.ErrorDetail{Code: string(core.KindOf(err)), Message: err.Error()})
}
