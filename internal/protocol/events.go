package protocol

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// Event names of a run's event stream (GET /runs/{id}/events).
const (
	// EventRun carries the whole Run: first on every connection, then
	// whenever the run's own fields (its state) change.
	EventRun = "run"
	// EventJob carries a Job whenever its state, reason, waiting reason
	// or attempts change. A job's log is sent before the event that says
	// the job ended.
	EventJob = "job"
	// EventLog carries a RunLog: bytes appended to an attempt's log.
	EventLog = "log"
	// EventEnd carries the final Run: the run ended and every log byte
	// was sent. The server closes the stream after it.
	EventEnd = "end"
	// EventError carries an ErrorDetail: why the stream stops early.
	EventError = "error"
)

// RunLog is the data of a "log" event of a run's stream: Data (base64 in
// JSON) is the piece of the log of attempt Attempt, number Number of job
// Job, that starts at byte Offset.
type RunLog struct {
	Job     string `json:"job"`
	Attempt string `json:"attempt"`
	Number  int    `json:"number"`
	Offset  int64  `json:"offset"`
	Data    []byte `json:"data"`
}

// RunEvent is one event of a run's stream: Type is one of the Event
// names, and Run, Job or Log holds its data.
type RunEvent struct {
	Type string
	Run  *Run
	Job  *Job
	Log  *RunLog
}

// FollowRunOptions narrows a run's event stream.
type FollowRunOptions struct {
	// NoLogs leaves the log events out.
	NoLogs bool
	// Job, when set, sends only that job's log events.
	Job string
}

// FollowRun streams a run's events to fn until the run has ended and
// every log byte was delivered, and returns the final run. A dropped
// stream (a server restart) is resumed where it stopped, with the last
// event id; events already delivered may come again (a job event with
// the same state), never log bytes. An unreachable server is asked again
// every second until ctx ends, as across its restart; fn's error stops it.
func (c *Client) FollowRun(ctx context.Context, runID string, o FollowRunOptions, fn func(RunEvent) error) (Run, error) {
	q := url.Values{}
	if o.NoLogs {
		q.Set("logs", "0")
	}
	if o.Job != "" {
		q.Set("job", o.Job)
	}
	lastID := ""
	for {
		var h http.Header
		if lastID != "" {
			h = http.Header{"Last-Event-ID": {lastID}}
		}
		resp, err := c.do(ctx, call{method: http.MethodGet, path: "/runs/" + url.PathEscape(runID) + "/events", query: q, header: h})
		if err != nil {
			if IsTransient(err) && ctx.Err() == nil {
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
				continue
			}
			return Run{}, err
		}
		end, done, err := readRunEvents(resp.Body, func(id string, ev RunEvent) error {
			if id != "" {
				lastID = id
			}
			return fn(ev)
		})
		resp.Body.Close()
		if done || err != nil && !IsTransient(err) {
			return end, err
		}
		if ctx.Err() != nil {
			return Run{}, core.Wrap(core.KindCanceled, "follow run", ctx.Err())
		}
	}
}

// readRunEvents reads a run's Server-Sent Events, calling fn with each
// and its id. It returns the final run and true at the "end" event; false
// with a nil error when the stream ended early (the caller resumes).
func readRunEvents(r io.Reader, fn func(id string, ev RunEvent) error) (Run, bool, error) {
	var final Run
	done, err := readSSE(r, "follow run", func(event, id string, data []byte) (bool, error) {
		ev, err := decodeRunEvent(event, data)
		if err != nil {
			return false, err
		}
		if ev.Type == EventEnd {
			final = *ev.Run
			return true, fn(id, ev)
		}
		if ev.Type != "" {
			return false, fn(id, ev)
		}
		return false, nil
	})
	if !done {
		final = Run{}
	}
	return final, done, err
}

// decodeRunEvent parses one event's data; an unknown event has an empty
// Type and is skipped, as SSE says.
func decodeRunEvent(event string, data []byte) (RunEvent, error) {
	bad := func() (RunEvent, error) {
		return RunEvent{}, core.E(core.KindInvalid, "follow run", "malformed %s event %.80q", event, data)
	}
	switch event {
	case EventRun, EventEnd:
		var r Run
		if err := json.Unmarshal(data, &r); err != nil || r.ID == "" {
			return bad()
		}
		return RunEvent{Type: event, Run: &r}, nil
	case EventJob:
		var j Job
		if err := json.Unmarshal(data, &j); err != nil || j.Name == "" {
			return bad()
		}
		return RunEvent{Type: event, Job: &j}, nil
	case EventLog:
		var l RunLog
		if err := json.Unmarshal(data, &l); err != nil || l.Attempt == "" || l.Offset < 0 {
			return bad()
		}
		return RunEvent{Type: event, Log: &l}, nil
	case EventError:
		var d ErrorDetail
		_ = json.Unmarshal(data, &d)
		return RunEvent{}, &core.Error{Kind: core.Kind(d.Code), Op: "follow run", Msg: d.Message}
	}
	return RunEvent{}, nil
}

// JobLog returns the log of the latest attempt of a run's job from offset,
// as far as the server holds it.
func (c *Client) JobLog(ctx context.Context, runID, job string, offset int64) ([]byte, error) {
	resp, err := c.do(ctx, call{method: http.MethodGet, path: "/runs/" + url.PathEscape(runID) + "/jobs/" + url.PathEscape(job) + "/log",
		query: url.Values{"offset": {strconv.FormatInt(offset, 10)}}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, core.Wrap(core.KindUnavailable, "read log", err)
	}
	return b, nil
}
