package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/protocol"
)

// TestPrintRunners: the table says each runner's state, how long ago it
// was heard from and what it runs.
func TestPrintRunners(t *testing.T) {
	t.Parallel()
	now := time.Now()
	runners := []protocol.RunnerInfo{
		{ID: "r1", Name: "box-1", Labels: []string{"executor:shell"}, LastSeenAt: now.Add(-12 * time.Second), State: protocol.RunnerBusy,
			Attempts: []protocol.RunnerAttempt{{RunID: "run-a", Job: "build"}, {RunID: "run-b", Job: "test"}}},
		{ID: "r2", Name: "box-2", LastSeenAt: now.Add(-3 * time.Hour), State: protocol.RunnerOffline, Attempts: []protocol.RunnerAttempt{}},
	}
	var b strings.Builder
	if err := printRunners(&b, runners, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 rows:\n%s", b.String())
	}
	for i, want := range [][]string{
		{"ID", "NAME", "LABELS", "STATE", "LAST SEEN", "RUNNING"},
		{"r1", "box-1", "executor:shell", "busy (2)", "ago", "run-a/build run-b/test"},
		{"r2", "box-2", "offline", "3h ago", "-"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
}

func TestAgo(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "just now", 59 * time.Second: "59s ago", 61 * time.Minute: "1h ago", 72 * time.Hour: "3d ago", 5 * time.Minute: "5m ago",
	} {
		if got := ago(d); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}
