package pipeline

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"needs", "needs", 0},
		{"neds", "needs", 1},
		{"evn", "env", 1}, // a transposition counts once
		{"runs_on", "runs-on", 1},
		{"kitten", "sitting", 3},
		{"ça", "ca", 1}, // runes, not bytes
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := distance(tt.b, tt.a); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         string
		candidates []string
		want       string
	}{
		{"neds", jobKeys, "needs"},
		{"Needs", jobKeys, "needs"},
		{"timout", jobKeys, "timeout"},
		{"branch", jobKeys, "branches"},
		{"script", jobKeys, "run"},
		{"script", topKeys, ""}, // a synonym only where its target is valid
		{"foo", jobKeys, ""},
		{"lnt", []string{"lint", "test"}, "lint"},
		{"tset", []string{"lint", "test"}, "test"},
		{strings.Repeat("a", 1000), []string{strings.Repeat("a", 999)}, ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.in, tt.candidates); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestSuggestionsAreBounded checks that thousands of unknown needs among
// hundreds of jobs cost bounded work, the first still getting a hint.
func TestSuggestionsAreBounded(t *testing.T) {
	// Not parallel: it measures allocations.
	var b strings.Builder
	b.WriteString("version: 1\njobs:\n")
	for i := range 500 {
		fmt.Fprintf(&b, "  job-number-%d: {run: x}\n", i)
	}
	b.WriteString("  z:\n    run: x\n    needs: [")
	for i := range 5000 {
		fmt.Fprintf(&b, "job-numbex-%d, ", i)
	}
	b.WriteString("]\n")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Parse("ci.yml", []byte(b.String()))
	runtime.ReadMemStats(&after)
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 5000 {
		t.Fatalf("err = %.200v, want 5000 problems", err)
	}
	if want := `did you mean "job-number-0"?`; list[0].Hint != want {
		t.Errorf("first hint = %q, want %q", list[0].Hint, want)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("parsing allocated %d MiB, want under 64", got>>20)
	}
}
