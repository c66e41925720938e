package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
)

// Sizes of what the job page reads of a log. The browser holds a window of
// the log, never all of it: the page opens with the last tailWindow bytes
// and pages by pageSize in either direction.
const (
	tailWindow = 64 << 10
	pageSize   = 2 << 20
	// readPiece is one read of the log for a download or a search.
	readPiece = 1 << 20
	// maxMatches bounds a search's results.
	maxMatches = 200
	// maxQuery bounds a search's text.
	maxQuery = 256
)

type jobPage struct {
	basePage
	Run       protocol.Run
	Job       protocol.Job
	Attempt   *protocol.Attempt
	RunHref   string
	Href      string
	Decision  string
	MayAct    bool
	CanRerun  bool
	Start     int64 // the window's first byte
	End       int64 // the byte after its last
	Length    int64
	Lines     template.HTML
	Live      bool // the window reaches the end of a log that still grows
	AttemptQ  string
	Query     string
	Matches   []match
	Truncated bool
}

type match struct {
	Offset int64
	Href   string
	HTML   template.HTML
}

// loadJob reads the run and job a request names, and the attempt it asks
// for (?attempt=N) or the latest.
func (u *UI) loadJob(ctx context.Context, r *http.Request) (*jobPage, error) {
	id, name := r.PathValue("id"), r.PathValue("name")
	run, role, err := u.loadRun(ctx, id)
	if err != nil {
		return nil, err
	}
	p := &jobPage{basePage: u.base(r, name+" · run "+short(run.ID)), Run: run, RunHref: runHref(run.ID),
		Href: jobHref(run.ID, name), MayAct: mayAct(role)}
	p.Nav = "runs"
	found := false
	for _, j := range run.Jobs {
		if j.Name == name {
			p.Job, found = j, true
		}
	}
	if !found {
		return nil, core.E(core.KindNotFound, "job", "run %s has no job %q", run.ID, name)
	}
	p.Decision = decision(p.Job)
	p.CanRerun = core.RunState(run.State).Terminal() && run.Project != ""
	want := r.URL.Query().Get("attempt")
	for i := range p.Job.Attempts {
		a := &p.Job.Attempts[i]
		if want == "" || strconv.Itoa(a.Number) == want {
			p.Attempt = a
		}
	}
	if want != "" && p.Attempt == nil {
		return nil, core.E(core.KindNotFound, "job", "job %s of run %s has no attempt %q", name, run.ID, want)
	}
	if p.Attempt != nil {
		p.Length = p.Attempt.LogLength
		p.AttemptQ = strconv.Itoa(p.Attempt.Number)
	}
	return p, nil
}

// window reads the part of the log the page opens with: its tail, or the
// lines from the one holding byte at.
func (u *UI) window(ctx context.Context, p *jobPage, at int64) error {
	if p.Attempt == nil {
		return nil
	}
	var from, to int64
	if at < 0 {
		from, to = max(p.Length-tailWindow, 0), p.Length
	} else {
		if at > p.Length {
			return core.E(core.KindInvalid, "log", "byte %d is past the end of the log (%d bytes)", at, p.Length)
		}
		from, to = max(at-(16<<10), 0), min(at+pageSize, p.Length)
	}
	data, err := u.read(ctx, p.Attempt.ID, from, to)
	if err != nil {
		return err
	}
	// The log read may hold less than the attempt said when it was read.
	to = from + int64(len(data))
	at = min(at, to)
	start := from
	if at < 0 {
		if s, ok := lineStart(data, from, from); ok && s < to {
			start = s
		}
	} else if i := bytes.LastIndexByte(data[:at-from], '\n'); i >= 0 {
		start = from + int64(i) + 1
	} else if from > 0 {
		start = at // a line longer than what was read: start at the byte
	}
	end := to
	if end < p.Length {
		if i := bytes.LastIndexByte(data[start-from:], '\n'); i >= 0 {
			end = start + int64(i) + 1
		}
	}
	times, err := u.cfg.Backend.LogTimes(ctx, p.Attempt.ID, start, end)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	renderLines(&b, data[start-from:end-from], start, times)
	p.Start, p.End, p.Lines = start, end, template.HTML(b.String())
	p.Live = end == p.Length && !core.AttemptState(p.Attempt.State).Terminal()
	return nil
}

// read reads the log's bytes [from, to).
func (u *UI) read(ctx context.Context, attemptID string, from, to int64) ([]byte, error) {
	out := make([]byte, 0, to-from)
	for from < to {
		b, _, err := u.cfg.Backend.ReadLog(ctx, attemptID, from, int(to-from))
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			break
		}
		out = append(out, b...)
		from += int64(len(b))
	}
	return out, nil
}

func (u *UI) job(w http.ResponseWriter, r *http.Request) error {
	at := int64(-1)
	if v := r.URL.Query().Get("at"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return core.E(core.KindInvalid, "job", "at must be a byte offset of the log, got %q", v)
		}
		at = n
	}
	if wantsStream(r) {
		// The live part is the job's header; the log has its own stream.
		return u.serve(w, r, "job", r.PathValue("id"), func(ctx context.Context) (any, error) { return u.loadJob(ctx, r) })
	}
	p, err := u.loadJob(r.Context(), r)
	if err != nil {
		return err
	}
	if err := u.window(r.Context(), p, at); err != nil {
		return err
	}
	u.render(w, r, http.StatusOK, "job", p)
	return nil
}

// logPage answers the script's request for the lines before or after the
// window (?before=N or ?after=N): an HTML fragment of whole lines, with
// the range it covers in X-Log-Start and X-Log-End.
func (u *UI) logPage(w http.ResponseWriter, r *http.Request) error {
	p, err := u.loadJob(r.Context(), r)
	if err != nil {
		return err
	}
	if p.Attempt == nil {
		return core.E(core.KindNotFound, "log", "job %s has no attempt, so no log", p.Job.Name)
	}
	q := r.URL.Query()
	offset := func(k string) (int64, bool, error) {
		v := q.Get(k)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > p.Length {
			return 0, false, core.E(core.KindInvalid, "log", "%s must be a byte offset from 0 to %d, got %q", k, p.Length, v)
		}
		return n, true, nil
	}
	before, hasBefore, err := offset("before")
	if err != nil {
		return err
	}
	after, hasAfter, err := offset("after")
	if err != nil {
		return err
	}
	if hasBefore == hasAfter {
		return core.E(core.KindInvalid, "log", "give one of before or after")
	}
	var start, end int64
	var data []byte
	if hasBefore {
		from := max(before-pageSize, 0)
		if data, err = u.read(r.Context(), p.Attempt.ID, from, before); err != nil {
			return err
		}
		start, end = from, from+int64(len(data))
		if s, ok := lineStart(data, from, from); ok {
			start = s
		}
		data = data[start-from:]
	} else {
		to := min(after+pageSize, p.Length)
		if data, err = u.read(r.Context(), p.Attempt.ID, after, to); err != nil {
			return err
		}
		start, end = after, after+int64(len(data))
		if i := bytes.LastIndexByte(data, '\n'); i >= 0 && end < p.Length {
			end = after + int64(i) + 1
			data = data[:i+1]
		}
	}
	times, err := u.cfg.Backend.LogTimes(r.Context(), p.Attempt.ID, start, end)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	renderLines(&b, data, start, times)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Log-Start", strconv.FormatInt(start, 10))
	h.Set("X-Log-End", strconv.FormatInt(end, 10))
	h.Set("X-Log-Length", strconv.FormatInt(p.Length, 10))
	_, _ = w.Write(b.Bytes())
	return nil
}

// tailEvent is the data of a tail's "lines" event: the HTML of the whole
// lines from the offset asked for, and where the next begins.
type tailEvent struct {
	HTML string `json:"html"`
	Next int64  `json:"next"`
}

// tail streams the log's new lines from ?offset=N as they arrive, each
// stamped with the time the server sent it, until the attempt has ended
// and every byte was sent ("end").
func (u *UI) tail(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p, err := u.loadJob(ctx, r)
	if err != nil {
		return err
	}
	if p.Attempt == nil {
		return core.E(core.KindNotFound, "log", "job %s has no attempt, so no log", p.Job.Name)
	}
	offset, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		offset, err = strconv.ParseInt(v, 10, 64)
	}
	if err != nil || offset < 0 || offset > p.Length {
		return core.E(core.KindInvalid, "tail", "offset must be a byte offset from 0 to %d", p.Length)
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return errors.New("the connection cannot stream")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	attemptID := p.Attempt.ID
	wake, stop := u.cfg.Backend.Changes(ctx, p.Run.ID, attemptID)
	defer stop()
	keep := time.NewTicker(liveKeepalive)
	defer keep.Stop()
	for {
		// The attempt's state first: bytes read after it are all there
		// are once it has ended.
		run, err := u.cfg.Backend.Run(ctx, p.Run.ID)
		if err != nil {
			return nil
		}
		ended := attemptEnded(run, attemptID)
		for {
			data, info, err := u.cfg.Backend.ReadLog(ctx, attemptID, offset, readPiece)
			if err != nil {
				return nil
			}
			if !ended || offset+int64(len(data)) < info.Length {
				// Only whole lines, until the last byte of an ended log.
				i := bytes.LastIndexByte(data, '\n')
				data = data[:i+1]
			}
			if len(data) == 0 {
				if ended && offset >= info.Length {
					_ = sendEvent(w, fl, "end", tailEvent{Next: offset})
					return nil
				}
				break
			}
			times, err := u.cfg.Backend.LogTimes(ctx, attemptID, offset, offset+int64(len(data)))
			if err != nil {
				return nil
			}
			var b bytes.Buffer
			renderLines(&b, data, offset, times)
			offset += int64(len(data))
			if err := sendTail(w, fl, offset, tailEvent{HTML: b.String(), Next: offset}); err != nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-u.cfg.Backend.Draining():
			return nil
		case <-wake:
		case <-keep.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return nil
			}
			fl.Flush()
		}
	}
}

func sendTail(w io.Writer, fl http.Flusher, id int64, ev tailEvent) error {
	if _, err := fmt.Fprintf(w, "id: %d\n", id); err != nil {
		return err
	}
	return sendEvent(w, fl, "lines", ev)
}

func attemptEnded(run protocol.Run, attemptID string) bool {
	for _, j := range run.Jobs {
		for _, a := range j.Attempts {
			if a.ID == attemptID {
				return core.AttemptState(a.State).Terminal()
			}
		}
	}
	return true // gone: nothing more will come
}

// raw downloads the attempt's whole log as it is now, a piece at a time.
func (u *UI) raw(w http.ResponseWriter, r *http.Request) error {
	p, err := u.loadJob(r.Context(), r)
	if err != nil {
		return err
	}
	if p.Attempt == nil {
		return core.E(core.KindNotFound, "log", "job %s has no attempt, so no log", p.Job.Name)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.FormatInt(p.Length, 10))
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fileName(p.Job.Name)+"-"+p.AttemptQ+".log"))
	for off := int64(0); off < p.Length; {
		b, _, err := u.cfg.Backend.ReadLog(r.Context(), p.Attempt.ID, off, int(min(readPiece, p.Length-off)))
		if err != nil || len(b) == 0 {
			panic(http.ErrAbortHandler) // the status is out: cut the body short
		}
		if _, err := w.Write(b); err != nil {
			return nil
		}
		off += int64(len(b))
	}
	return nil
}

// fileName keeps the characters of a job's name that are safe in a file
// name.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// search finds the lines of the log that hold ?q (ignoring case and
// colours), reading it a piece at a time, and lists them with links into
// the log.
func (u *UI) search(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p, err := u.loadJob(ctx, r)
	if err != nil {
		return err
	}
	p.Query = r.URL.Query().Get("q")
	if len(p.Query) > maxQuery {
		return core.E(core.KindInvalid, "search", "the search text is longer than %d bytes", maxQuery)
	}
	if p.Query != "" && p.Attempt != nil {
		needle := bytes.ToLower([]byte(p.Query))
		var carry []byte
		var carryAt int64
		st := plain
		for off := int64(0); off < p.Length && len(p.Matches) < maxMatches; {
			b, _, err := u.cfg.Backend.ReadLog(ctx, p.Attempt.ID, off, int(min(readPiece, p.Length-off)))
			if err != nil {
				return err
			}
			if len(b) == 0 {
				break
			}
			buf := append(carry, b...)
			base := carryAt
			if len(carry) == 0 {
				base = off
			}
			off += int64(len(b))
			pos := 0
			for len(p.Matches) < maxMatches {
				i := bytes.IndexByte(buf[pos:], '\n')
				if i < 0 && off < p.Length {
					break
				}
				end := len(buf)
				if i >= 0 {
					end = pos + i
				}
				line := buf[pos:end]
				if bytes.Contains(bytes.ToLower(stripANSI(line)), needle) {
					at := base + int64(pos)
					var h bytes.Buffer
					renderANSI(&h, bytes.TrimSuffix(line, []byte("\r")), &st)
					st = plain
					p.Matches = append(p.Matches, match{Offset: at, HTML: template.HTML(h.String()),
						Href: p.Href + "?attempt=" + p.AttemptQ + "&at=" + strconv.FormatInt(at, 10) + "#o" + strconv.FormatInt(at, 10)})
				}
				if i < 0 {
					pos = len(buf)
					break
				}
				pos = end + 1
			}
			carry = append([]byte(nil), buf[pos:]...)
			carryAt = base + int64(pos)
		}
		p.Truncated = len(p.Matches) >= maxMatches
	}
	u.render(w, r, http.StatusOK, "search", p)
	return nil
}
