package planner

import (
	"slices"
	"strings"
	"testing"

	"github.com/bmatcuk/doublestar/v4"
	"pgregory.net/rapid"
)

func TestNewGlob(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		pattern string
		want    glob
	}{
		{"go.mod", glob{kind: globLiteral, prefix: "go.mod"}},
		{"services/api/**", glob{kind: globSubtree, prefix: "services/api/"}},
		{"**", glob{kind: globSubtree}},
		{"**/*.go", glob{kind: globSuffix, tail: ".go"}},
		{"docs/**/*.md", glob{kind: globSuffix, prefix: "docs/", tail: ".md"}},
		{"**/Makefile", glob{kind: globBaseName, tail: "Makefile"}},
		{"**/*.{js,ts}", glob{kind: globBaseName, tail: "*.{js,ts}"}},
		{"src/*.go", glob{kind: globGeneral, prefix: "src/"}},
		{"src/foo*", glob{kind: globGeneral, prefix: "src/"}},
		{"a/**/b/**", glob{kind: globGeneral, prefix: "a/"}},
		{"{a,b}/**", glob{kind: globGeneral}},
		{`a/\*.go`, glob{kind: globGeneral, prefix: "a/"}},
		{"a/**b", glob{kind: globGeneral, prefix: "a/"}},
	} {
		got := newGlob(c.pattern)
		c.want.pattern = c.pattern
		if got != c.want {
			t.Errorf("newGlob(%q) = %+v, want %+v", c.pattern, got, c.want)
		}
	}
}

// TestGlobIndexMatchesDoublestar checks the index against matching every
// path with every glob.
func TestGlobIndexMatchesDoublestar(t *testing.T) {
	t.Parallel()
	segment := rapid.SampledFrom([]string{"a", "b", "ab", "a.go", "b.md", ".go", "x.y", "dir"})
	globPart := rapid.SampledFrom([]string{
		"a", "b", "ab", "dir", "*", "**", "?", "*.go", "*.md", "a*", "{a,b}", "[ab]", "{a,dir/b}", `\*`, "*b",
	})
	rapid.Check(t, func(t *rapid.T) {
		var patterns []string
		for _, parts := range rapid.SliceOfN(rapid.SliceOfN(globPart, 1, 4), 1, 12).Draw(t, "globs") {
			p := strings.Join(parts, "/")
			if doublestar.ValidatePattern(p) && !slices.Contains(patterns, p) {
				patterns = append(patterns, p)
			}
		}
		var paths []string
		for _, parts := range rapid.SliceOfN(rapid.SliceOfN(segment, 1, 4), 1, 30).Draw(t, "paths") {
			paths = append(paths, strings.Join(parts, "/"))
		}
		// Listings come sorted; the per-directory cache must not care.
		if rapid.Bool().Draw(t, "sorted") {
			slices.Sort(paths)
		}
		m := newGlobIndex(patterns).matcher()
		for _, path := range paths {
			var got []string
			m.match(path, func(g int32) { got = append(got, patterns[g]) })
			var want []string
			for _, p := range patterns {
				if ok, _ := doublestar.Match(p, path); ok {
					want = append(want, p)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("path %q: index matched %q, doublestar %q", path, got, want)
			}
		}
	})
}
