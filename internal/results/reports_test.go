package results

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/analysis"
)

// TestReportFilesLimits checks which matched report files are kept: each
// within the per-file limit, in path order until the per-attempt limit,
// regular files only; the others are refused with why.
func TestReportFilesLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, size := range map[string]int{"a.xml": 40, "b.xml": 40, "c.xml": 40, "huge.xml": 200, "sub/d.json": 10, "notes.txt": 10} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat("x", size)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link.xml")); err != nil {
		t.Fatal(err)
	}
	lim := analysis.DefaultLimits()
	lim.MaxFileBytes, lim.MaxAttemptBytes = 100, 90
	keep, refused, err := ReportFiles(dir, map[string][]string{"junit": {"*.xml"}, "gotest": {"sub/*.json"}}, lim)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.xml", "b.xml", "sub/d.json"}; !slices.Equal(keep, want) {
		t.Errorf("kept %v, want %v", keep, want)
	}
	want := []string{
		"c.xml: 40 bytes, over the 10 bytes left of the limit of 90 bytes per attempt",
		"huge.xml: 200 bytes, over the limit of 100 bytes per report file",
		"link.xml: not a regular file",
	}
	if !slices.Equal(refused, want) {
		t.Errorf("refused:\n%s\nwant:\n%s", strings.Join(refused, "\n"), strings.Join(want, "\n"))
	}
	keep, refused, err = ReportFiles(dir, nil, lim)
	if err != nil || len(keep) != 0 || keep == nil || refused != nil {
		t.Errorf("no globs: %v, %v, %v", keep, refused, err)
	}
}
