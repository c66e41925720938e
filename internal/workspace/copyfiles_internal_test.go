package workspace

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/gitx"
)

// TestCopyFilesOnlyThose: a hermetic workspace copied from a snapshot
// holds the entries asked for and nothing else, executables and links as
// they are, a submodule as an empty directory; an entry the snapshot lacks
// is an error naming it.
func TestCopyFilesOnlyThose(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "snap")
	write(t, filepath.Join(src, "src/a.txt"), "a\n", 0o644)
	write(t, filepath.Join(src, "src/run.sh"), "#!/bin/sh\n", 0o755)
	write(t, filepath.Join(src, "shared/cfg.txt"), "cfg\n", 0o644)
	write(t, filepath.Join(src, "docs/readme.md"), "not asked for\n", 0o644)
	if err := os.Symlink("../shared/cfg.txt", filepath.Join(src, "src/cfg")); err != nil {
		t.Fatal(err)
	}
	entries := []gitx.TreeEntry{
		{Path: "shared/cfg.txt", Mode: gitx.ModeFile},
		{Path: "src/a.txt", Mode: gitx.ModeFile},
		{Path: "src/cfg", Mode: gitx.ModeSymlink},
		{Path: "src/run.sh", Mode: gitx.ModeExecutable},
		{Path: "vendor/sub", Mode: gitx.ModeGitlink},
	}
	dst := filepath.Join(t.TempDir(), "ws")
	if err := CopyFiles(src, dst, entries); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() || d != nil && d.Type()&fs.ModeSymlink != 0 {
			rel, _ := filepath.Rel(dst, p)
			got = append(got, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"shared/cfg.txt", "src/a.txt", "src/cfg", "src/run.sh"}; !slices.Equal(got, want) {
		t.Errorf("workspace files %v, want %v", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "src/cfg")); err != nil || string(b) != "cfg\n" {
		t.Errorf("src/cfg through its link: %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "src/run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("src/run.sh not executable: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "vendor/sub")); err != nil || !fi.IsDir() {
		t.Errorf("vendor/sub: %v %v, want an empty directory", fi, err)
	}

	err = CopyFiles(src, filepath.Join(t.TempDir(), "ws"), []gitx.TreeEntry{{Path: "gone.txt", Mode: gitx.ModeFile}})
	if err == nil || !strings.Contains(err.Error(), `"gone.txt" is among the job's inputs but not in the snapshot`) {
		t.Errorf("an entry the snapshot lacks: %v", err)
	}
}

// BenchmarkWorkspace compares a whole copy of a 2,500-file snapshot with a
// hermetic workspace of 50 of its files (create and remove, as an attempt
// does).
func BenchmarkWorkspace(b *testing.B) {
	src := filepath.Join(b.TempDir(), "snap")
	var entries []gitx.TreeEntry
	for d := range 50 {
		for f := range 50 {
			p := filepath.Join("pkg", strconv.Itoa(d), "f"+strconv.Itoa(f)+".txt")
			if err := os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, p), []byte(strings.Repeat("x", 2000)), 0o644); err != nil {
				b.Fatal(err)
			}
			if d == 7 {
				entries = append(entries, gitx.TreeEntry{Path: filepath.ToSlash(p), Mode: gitx.ModeFile})
			}
		}
	}
	slices.SortFunc(entries, func(a, b gitx.TreeEntry) int { return strings.Compare(a.Path, b.Path) })
	dst := filepath.Join(b.TempDir(), "ws")
	for _, c := range []struct {
		name  string
		build func() error
	}{
		{"Copy2500", func() error { return copyTree(src, dst) }},
		{"Hermetic50of2500", func() error { return CopyFiles(src, dst, entries) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := c.build(); err != nil {
					b.Fatal(err)
				}
				if err := os.RemoveAll(dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
