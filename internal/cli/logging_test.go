package cli

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// TestJSONLogDurations: durations are logged as milliseconds under a
// key that says so, at any depth, and other values are left alone.
func TestJSONLogDurations(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log := newJSONLogger(&b)
	log.Info("retrying", slog.Duration("in", 1500*time.Millisecond), slog.Any("grace", 250*time.Microsecond),
		slog.Group("lease", slog.Duration("ttl", 20*time.Second)), slog.Int("attempt", 3))
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, b.Bytes())
	}
	want := map[string]any{"in_ms": 1500.0, "grace_ms": 0.25, "attempt": 3.0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v in %s", k, got[k], v, b.Bytes())
		}
	}
	if lease, _ := got["lease"].(map[string]any); lease["ttl_ms"] != 20000.0 {
		t.Errorf("lease.ttl_ms = %v in %s", lease["ttl_ms"], b.Bytes())
	}
	if _, ok := got["in"]; ok {
		t.Errorf("the nanosecond key is still there: %s", b.Bytes())
	}
}
