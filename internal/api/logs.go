package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/jsonhttp"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// putLog appends one chunk of an attempt's log at ?offset=N.
func (s *Server) putLog(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, _, err := s.attemptWriter(r, id, true); err != nil {
		return err
	}
	offset, err := queryOffset(r)
	if err != nil {
		return err
	}
	tok := r.Header.Get(protocol.LeaseTokenHeader)
	if tok == "" {
		return core.E(core.KindInvalid, "append log", "the %s header is required", protocol.LeaseTokenHeader)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/octet-stream" {
			return &jsonhttp.MediaTypeError{Got: ct, Want: []string{"application/octet-stream"}}
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxLogChunk))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return core.Wrap(core.KindInvalid, "append log: reading the body", err)
	}
	n, err := s.st.AppendLog(r.Context(), store.Fence{AttemptID: id, LeaseToken: tok}, offset, data)
	if err != nil {
		return err
	}
	if n == offset+int64(len(data)) {
		s.metrics.LogBytes.Add(float64(len(data)))
	}
	writeJSON(w, http.StatusOK, protocol.LogResponse{Length: n})
	return nil
}

func queryOffset(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("offset")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, core.E(core.KindInvalid, "log offset", "offset must be a non-negative integer, got %q", v)
	}
	return n, nil
}

// readChunk is how much of a log one read returns.
const readChunk = 256 << 10

// getLog returns an attempt's log from ?offset=N: the bytes held so far, or
// with follow=1 a Server-Sent Events stream of "log" events until an "end"
// event once the attempt has ended and every byte was sent.
func (s *Server) getLog(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.attemptReader(r, id); err != nil {
		return err
	}
	return s.serveLog(w, r, id)
}

// getJobLog is getLog for the latest attempt of a run's job, named by the
// run and the job's name.
func (s *Server) getJobLog(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.user(r); err != nil {
		return err
	}
	runID, name := r.PathValue("id"), r.PathValue("name")
	ctx := r.Context()
	if _, err := s.st.Run(ctx, runID); err != nil {
		return err
	}
	jobs, err := s.st.Jobs(ctx, runID)
	if err != nil {
		return err
	}
	var job *core.Job
	for i := range jobs {
		if jobs[i].Name == name {
			job = &jobs[i]
		}
	}
	if job == nil {
		return core.E(core.KindNotFound, "job log", "run %s has no job %q", runID, name)
	}
	attempts, err := s.st.Attempts(ctx, runID)
	if err != nil {
		return err
	}
	var latest *core.Attempt
	for i := range attempts {
		if a := &attempts[i]; a.JobID == job.ID && (latest == nil || a.Number > latest.Number) {
			latest = a
		}
	}
	if latest == nil {
		return core.E(core.KindNotFound, "job log", "job %s of run %s has no attempt, so no log (it is %s)", name, runID, job.State)
	}
	return s.serveLog(w, r, latest.ID)
}

// serveLog answers a read of attempt id's log, plain or followed.
func (s *Server) serveLog(w http.ResponseWriter, r *http.Request, id string) error {
	offset, err := queryOffset(r)
	if err != nil {
		return err
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if offset, err = strconv.ParseInt(v, 10, 64); err != nil || offset < 0 {
			return core.E(core.KindInvalid, "log", "Last-Event-ID must be a byte offset, got %q", v)
		}
	}
	ctx := r.Context()
	if _, err := s.st.Attempt(ctx, id); err != nil {
		return err
	}
	switch f := r.URL.Query().Get("follow"); f {
	case "", "0", "1":
	default:
		return core.E(core.KindInvalid, "log", "follow must be 0 or 1, got %q", f)
	}
	if r.URL.Query().Get("follow") != "1" {
		return s.copyLog(ctx, w, id, offset)
	}
	return s.followLog(ctx, w, id, offset)
}

// copyLog writes the log from offset to the length it has now, a piece at
// a time, so a large log never sits in memory.
func (s *Server) copyLog(ctx context.Context, w http.ResponseWriter, id string, offset int64) error {
	data, info, err := s.readLog(ctx, id, offset, readChunk)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(info.Length-offset, 10))
	end := info.Length
	for {
		if _, err := w.Write(data); err != nil {
			return nil // the client went away
		}
		offset += int64(len(data))
		if offset >= end || len(data) == 0 {
			return nil
		}
		if data, _, err = s.readLog(ctx, id, offset, int(min(readChunk, end-offset))); err != nil {
			// The status is out; cutting the body short tells the client.
			panic(http.ErrAbortHandler)
		}
	}
}

// readLog reads up to max bytes from offset: from the chunks while the log
// is open, from the artifact store once it is sealed. It also returns the
// log's state.
func (s *Server) readLog(ctx context.Context, id string, offset int64, max int) ([]byte, store.LogInfo, error) {
	info, err := s.st.LogInfo(ctx, id)
	if err != nil {
		return nil, info, err
	}
	if offset > info.Length {
		return nil, info, &store.LogOffsetError{Length: info.Length}
	}
	if info.Digest == "" {
		data, _, err := s.st.ReadLog(ctx, id, offset, max)
		if !errors.Is(err, store.ErrLogSealed) {
			return data, info, err
		}
		if info, err = s.st.LogInfo(ctx, id); err != nil {
			return nil, info, err
		}
	}
	d, err := digest.Parse(info.Digest)
	if err != nil {
		return nil, info, err
	}
	n := min(int64(max), info.Length-offset)
	if n <= 0 {
		return nil, info, nil
	}
	rc, _, err := s.cfg.Registry.Data.Open(ctx, d, offset, n)
	if err != nil {
		return nil, info, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	return data, info, err
}

func (s *Server) followLog(ctx context.Context, w http.ResponseWriter, id string, offset int64) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return core.E(core.KindInternal, "follow log", "the connection cannot stream")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	// Woken by the store's announcements of the attempt's log and run;
	// re-read on a timer only when the engine announces nothing.
	wakeup := make(chan struct{}, 1)
	s.runEvents.subscribe(wakeup, id)
	defer s.runEvents.unsubscribe(wakeup)
	if a, err := s.st.Attempt(ctx, id); err == nil {
		s.runEvents.subscribe(wakeup, a.RunID)
		defer s.watchRun(ctx, a.RunID)()
	}
	poll := time.NewTicker(unwatchedEvery)
	defer poll.Stop()
	if s.runEvents.watched.Load() {
		poll.Stop()
	}
	// The keepalive re-reads too, and so does settle once: see
	// keepaliveEvery.
	keepalive := time.NewTicker(keepaliveEvery)
	defer keepalive.Stop()
	settle := time.After(settleAfter)
	for {
		data, info, err := s.readLog(ctx, id, offset, readChunk)
		if err != nil {
			// The stream is open: say why it ends, as an event, with the
			// code and details a plain read would answer.
			d := protocol.ErrorDetail{Code: string(core.KindOf(err)), Message: err.Error()}
			var oe *store.LogOffsetError
			if errors.As(err, &oe) {
				d.Code, d.Details = protocol.CodeLogOffset, map[string]any{"length": oe.Length}
			}
			return sse(w, fl, "error", "", d)
		}
		if len(data) > 0 {
			if err := sse(w, fl, "log", strconv.FormatInt(offset+int64(len(data)), 10), protocol.LogEvent{Offset: offset, Data: data}); err != nil {
				return nil
			}
			offset += int64(len(data))
			continue
		}
		a, err := s.st.Attempt(ctx, id)
		if err != nil {
			return nil
		}
		if a.State.Terminal() && offset >= info.Length {
			return sse(w, fl, "end", "", protocol.LogEnd{Length: info.Length, Digest: info.Digest, State: string(a.State)})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.draining:
			return nil
		case <-poll.C:
		case <-wakeup:
		case <-settle:
		case <-keepalive.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return nil
			}
			fl.Flush()
		}
	}
}

// sse writes one Server-Sent Event whose data is v as JSON.
func sse(w io.Writer, fl http.Flusher, event, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if id != "" {
		_, err = fmt.Fprintf(w, "event: %s\nid: %s\ndata: %s\n\n", event, id, b)
	} else {
		_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
	}
	fl.Flush()
	return err
}
