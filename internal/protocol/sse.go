package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"

	"github.com/deltaci/deltaci/internal/core"
)

// maxEventLine bounds one line of the event stream: a log event carries at
// most 256 KiB, which base64 and JSON make about 342 KiB.
const maxEventLine = 4 << 20

// readEvents reads a followed log's Server-Sent Events, calling fn with
// each log event. It returns the end event and true once the stream says
// the log is complete; false with a nil error when the stream ended early
// (the caller resumes). An "error" event is returned as an error.
func readEvents(r io.Reader, fn func(LogEvent) error) (LogEnd, bool, error) {
	var end LogEnd
	done, err := readSSE(r, "follow log", func(event, _ string, data []byte) (bool, error) {
		var (
			stop bool
			err  error
		)
		end, stop, err = dispatch(event, data, fn)
		return stop, err
	})
	return end, done, err
}

// readSSE splits a Server-Sent Events stream into events and calls fn with
// each one's type, id and data, until fn says stop (readSSE then returns
// true), fn fails, or the stream ends (false, with a nil error when it
// ended cleanly). Comments (the server's keepalives) and unknown fields
// are skipped, as SSE says.
func readSSE(r io.Reader, op string, fn func(event, id string, data []byte) (bool, error)) (bool, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	var event, id string
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if data.Len() == 0 && event == "" {
				continue
			}
			if stop, err := fn(event, id, data.Bytes()); err != nil || stop {
				return stop, err
			}
			event = ""
			data.Reset()
		case line[0] == ':':
			// A comment: the server's keepalive.
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				event = string(value)
			case "id":
				id = string(value)
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.Write(value)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return false, core.Wrap(core.KindUnavailable, op, err)
	}
	return false, nil
}

func dispatch(event string, data []byte, fn func(LogEvent) error) (LogEnd, bool, error) {
	switch event {
	case "log", "":
		var ev LogEvent
		if err := json.Unmarshal(data, &ev); err != nil || ev.Offset < 0 {
			return LogEnd{}, false, core.E(core.KindInvalid, "follow log", "malformed log event %.80q", data)
		}
		return LogEnd{}, false, fn(ev)
	case "end":
		var end LogEnd
		if err := json.Unmarshal(data, &end); err != nil {
			return LogEnd{}, false, core.E(core.KindInvalid, "follow log", "malformed end event %.80q", data)
		}
		return end, true, nil
	case "error":
		var d ErrorDetail
		_ = json.Unmarshal(data, &d)
		return LogEnd{}, false, &core.Error{Kind: core.Kind(d.Code), Op: "follow log", Msg: d.Message}
	}
	return LogEnd{}, false, nil // unknown events are skipped, as SSE says
}
