package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
)

func collect(t *testing.T, stream string) ([]byte, LogEnd, bool, error) {
	t.Helper()
	var got []byte
	next := int64(0)
	end, done, err := readEvents(strings.NewReader(stream), func(ev LogEvent) error {
		if ev.Offset != next {
			t.Fatalf("event at offset %d, want %d", ev.Offset, next)
		}
		got = append(got, ev.Data...)
		next += int64(len(ev.Data))
		return nil
	})
	return got, end, done, err
}

func TestReadEvents(t *testing.T) {
	stream := ": keepalive\n\n" +
		"event: log\nid: 6\ndata: {\"offset\":0,\"data\":\"aGVsbG8K\"}\n\n" +
		"event: unknown\ndata: whatever\n\n" +
		"event: log\r\nid: 12\ndata: {\"offset\":6,\"data\":\"d29ybGQK\"}\n\n" +
		"event: end\ndata: {\"length\":12,\"digest\":\"sha256:ab\",\"state\":\"succeeded\"}\n\n" +
		"event: log\ndata: {\"offset\":12,\"data\":\"eA==\"}\n\n"
	got, end, done, err := collect(t, strings.ReplaceAll(stream, "\r\n", "\n"))
	if err != nil || !done {
		t.Fatalf("done=%v err=%v", done, err)
	}
	if string(got) != "hello\nworld\n" {
		t.Fatalf("log %q", got)
	}
	if end != (LogEnd{Length: 12, Digest: "sha256:ab", State: "succeeded"}) {
		t.Fatalf("end %+v", end)
	}
}

func TestReadEventsEndsEarly(t *testing.T) {
	_, _, done, err := collect(t, "event: log\ndata: {\"offset\":0,\"data\":\"aGk=\"}\n\n")
	if done || err != nil {
		t.Fatalf("a stream cut before its end event: done=%v err=%v, want false, nil (resume)", done, err)
	}
}

func TestReadEventsErrors(t *testing.T) {
	_, _, _, err := collect(t, "event: error\ndata: {\"code\":\"not_found\",\"message\":\"no attempt\"}\n\n")
	if core.KindOf(err) != core.KindNotFound {
		t.Fatalf("error event: got %v", err)
	}
	_, _, _, err = collect(t, "event: log\ndata: {not json\n\n")
	if core.KindOf(err) != core.KindInvalid {
		t.Fatalf("malformed event: got %v", err)
	}
	_, _, _, err = collect(t, "event: log\ndata: "+strings.Repeat("x", maxEventLine+1)+"\n\n")
	if core.KindOf(err) != core.KindUnavailable {
		t.Fatalf("overlong line: got %v", err)
	}
}

// FuzzReadEvents feeds arbitrary streams: the reader must never panic, must
// deliver only well-formed events, and must not report an end it was not sent.
func FuzzReadEvents(f *testing.F) {
	f.Add([]byte("event: log\nid: 2\ndata: {\"offset\":0,\"data\":\"aGk=\"}\n\nevent: end\ndata: {\"length\":2,\"state\":\"succeeded\"}\n\n"))
	f.Add([]byte(": c\n\ndata: {\"offset\":0,\"data\":\"\"}\n\n"))
	f.Add([]byte("event: error\ndata: {\"code\":\"x\"}\n\n"))
	f.Add([]byte("data: a\ndata: b\n\n"))
	f.Add([]byte("event: log\ndata: {\"offset\":-1,\"data\":\"aGk=\"}\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		end, done, err := readEvents(bytes.NewReader(b), func(ev LogEvent) error {
			if ev.Offset < 0 {
				t.Fatalf("delivered a negative offset %d", ev.Offset)
			}
			return nil
		})
		if done && !bytes.Contains(b, []byte("end")) {
			t.Fatalf("reported an end (%+v) for a stream without one", end)
		}
		if done && err != nil {
			t.Fatalf("done with an error: %v", err)
		}
		var ce *core.Error
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("error of type %T, want *core.Error", err)
		}
	})
}

func TestDecodeErrorKinds(t *testing.T) {
	for _, c := range []struct {
		status int
		code   string
		want   core.Kind
	}{
		{409, CodeLeaseLost, core.KindLeaseLost},
		{409, "conflict", core.KindConflict},
		{401, "unauthorized", core.KindUnauthorized},
		{403, "forbidden", core.KindUnauthorized},
		{404, "not_found", core.KindNotFound},
		{400, "invalid", core.KindInvalid},
		{413, CodeTooLarge, core.KindInvalid},
		{503, "unavailable", core.KindUnavailable},
		{500, "internal", core.KindInternal},
	} {
		if got := kindOf(c.status, c.code); got != c.want {
			t.Errorf("kindOf(%d, %s) = %s, want %s", c.status, c.code, got, c.want)
		}
	}
}

func TestLogEventJSON(t *testing.T) {
	// Data travels as base64, so any bytes survive the JSON of an event.
	in := LogEvent{Offset: 7, Data: []byte{0, 0xff, '\n', 0x1b}}
	b, _ := json.Marshal(in)
	var out LogEvent
	if err := json.Unmarshal(b, &out); err != nil || out.Offset != 7 || !bytes.Equal(out.Data, in.Data) {
		t.Fatalf("round trip %s → %+v, %v", b, out, err)
	}
}

// FuzzReadRunEvents feeds arbitrary run streams: the reader must never
// panic, must deliver only well-formed events, and must report an end only
// with the run it names.
func FuzzReadRunEvents(f *testing.F) {
	f.Add([]byte("event: run\nid: 1\ndata: {\"id\":\"r\",\"state\":\"running\"}\n\nevent: job\ndata: {\"name\":\"a\",\"state\":\"queued\"}\n\nevent: log\ndata: {\"attempt\":\"x\",\"offset\":0,\"data\":\"aGk=\"}\n\nevent: end\ndata: {\"id\":\"r\",\"state\":\"succeeded\"}\n\n"))
	f.Add([]byte(": keepalive\n\nevent: job\ndata: {\"name\":\"\"}\n\n"))
	f.Add([]byte("event: error\ndata: {\"code\":\"not_found\",\"message\":\"no run\"}\n\n"))
	f.Add([]byte("event: log\ndata: {\"attempt\":\"x\",\"offset\":-5}\n\n"))
	f.Add([]byte("event: mystery\ndata: 1\n\nevent: end\ndata: {}\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		run, done, err := readRunEvents(bytes.NewReader(b), func(_ string, ev RunEvent) error {
			switch {
			case ev.Type == EventJob && (ev.Job == nil || ev.Job.Name == ""):
				t.Fatalf("delivered a job event without a job name: %+v", ev)
			case ev.Type == EventLog && (ev.Log == nil || ev.Log.Attempt == "" || ev.Log.Offset < 0):
				t.Fatalf("delivered a malformed log event: %+v", ev.Log)
			case (ev.Type == EventRun || ev.Type == EventEnd) && (ev.Run == nil || ev.Run.ID == ""):
				t.Fatalf("delivered a %s event without a run id", ev.Type)
			}
			return nil
		})
		if done && (err != nil || run.ID == "") {
			t.Fatalf("done with run %q and error %v", run.ID, err)
		}
		if !done && run.ID != "" {
			t.Fatalf("not done but returned run %q", run.ID)
		}
		var ce *core.Error
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("error of type %T, want *core.Error", err)
		}
	})
}
