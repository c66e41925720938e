package pipeline

import (
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
