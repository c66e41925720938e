package gitx_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

// Names that break parsers: a newline, a CR at the end (eaten by CRLF line
// readers), a leading quote (taken for C quoting), a tab, a backslash,
// invalid UTF-8 and a leading dash.
var hostileNames = []string{
	spacedName, "ends in cr\r", `"quoted"`, "tab\there", `back\slash`, invalidUTF8, "-dash",
}

func sortChanges(c []gitx.Change) []gitx.Change {
	slices.SortFunc(c, func(a, b gitx.Change) int { return strings.Compare(a.Path, b.Path) })
	return c
}

func TestChangedPaths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	r.write("keep", "same", 0o644)
	r.write("modify", "before", 0o644)
	r.write("delete", "gone", 0o644)
	r.write("empty", "", 0o644)
	r.write("old/name", "moved", 0o644)
	r.write("chmod", "x", 0o644)
	r.write("retype", "was a file", 0o644)
	for _, n := range hostileNames {
		r.write(n, "hostile "+n, 0o644)
	}
	r.commitAll("base")
	base := r.git("rev-parse", "HEAD")

	r.write("modify", "after", 0o644)
	r.write("chmod", "x", 0o755)
	r.write("added/deep/file", "new", 0o644)
	for _, p := range []string{"delete", "empty", "retype"} {
		if err := os.Remove(r.path(p)); err != nil {
			t.Fatal(err)
		}
	}
	r.symlink("keep", "retype")
	if err := os.Mkdir(r.path("new"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.git("mv", "old/name", "new/name")
	for _, n := range hostileNames {
		r.write(n, "changed "+n, 0o644)
	}
	r.commitAll("head")

	got, err := gitx.ChangedPaths(ctx, r.path("old"), base, "HEAD") // from a subdirectory
	if err != nil {
		t.Fatal(err)
	}
	want := []gitx.Change{
		{gitx.Modified, "modify"}, {gitx.Modified, "chmod"}, {gitx.Added, "added/deep/file"},
		{gitx.Deleted, "delete"}, {gitx.Deleted, "empty"}, {gitx.TypeChanged, "retype"},
		{gitx.Deleted, "old/name"}, {gitx.Added, "new/name"},
	}
	for _, n := range hostileNames {
		want = append(want, gitx.Change{Status: gitx.Modified, Path: n})
	}
	if diff := cmp.Diff(sortChanges(want), sortChanges(got)); diff != "" {
		t.Errorf("ChangedPaths (-want +got):\n%s", diff)
	}

	if got, err := gitx.ChangedPaths(ctx, r.dir, "HEAD", "HEAD"); err != nil || len(got) != 0 {
		t.Errorf("ChangedPaths(HEAD, HEAD) = %v, %v; want none", got, err)
	}
	if _, err := gitx.ChangedPaths(ctx, r.dir, strings.Repeat("3", len(base)), "HEAD"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("unknown base: err = %v, want KindNotFound", err)
	}
}

func TestChangedPathsHasNoCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	r.commitFile("README", "x")
	base := r.git("rev-parse", "HEAD")
	const n = 1500
	for i := range n {
		r.write(fmt.Sprintf("many/f%04d", i), "x", 0o644)
	}
	r.commitAll("many")
	got, err := gitx.ChangedPaths(ctx, r.dir, base, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Errorf("%d changes, want %d", len(got), n)
	}
}

func TestChangedPathsIgnoresUserConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	r.write("sub/a", "1", 0o644)
	r.commitAll("base")
	base := r.git("rev-parse", "HEAD")
	r.git("mv", "sub/a", "sub/b")
	r.commitAll("rename")
	// Settings that would change what git diff prints, in the repository's
	// own config where our environment cannot override them.
	for _, kv := range [][2]string{
		{"diff.renames", "copies"}, {"diff.relative", "true"}, {"color.ui", "always"},
		{"color.diff", "always"}, {"core.quotePath", "true"}, {"diff.noprefix", "true"},
	} {
		r.git("config", kv[0], kv[1])
	}
	got, err := gitx.ChangedPaths(ctx, r.path("sub"), base, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	want := []gitx.Change{{gitx.Deleted, "sub/a"}, {gitx.Added, "sub/b"}}
	if diff := cmp.Diff(want, sortChanges(got)); diff != "" {
		t.Errorf("ChangedPaths (-want +got):\n%s", diff)
	}
}

func TestDirtyPaths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("WorkingTree", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		r.write(".gitignore", "*.log\n", 0o644)
		for _, f := range []string{"clean", "unstaged", "staged", "deleted", "staged-delete", "uncached", "chmod", "reverted"} {
			r.write(f, f, 0o644)
		}
		for _, n := range hostileNames {
			r.write(n, n, 0o644)
		}
		r.commitAll("base")

		r.write("unstaged", "changed", 0o644)
		r.write("staged", "changed", 0o644)
		r.git("add", "staged")
		r.write("reverted", "changed", 0o644)
		r.git("add", "reverted")
		r.write("reverted", "reverted", 0o644) // staged change, undone on disk
		r.write("chmod", "chmod", 0o755)
		if err := os.Remove(r.path("deleted")); err != nil {
			t.Fatal(err)
		}
		r.git("rm", "-q", "staged-delete")
		r.git("rm", "-q", "--cached", "uncached") // still on disk, now untracked
		r.write("new/deep/file", "new", 0o644)
		r.write("staged-new", "new", 0o644)
		r.git("add", "staged-new")
		r.write("debug.log", "ignored", 0o644)
		r.write(".deltaci/state.db", "ours", 0o644)
		for _, n := range hostileNames {
			r.write("new-"+n, n, 0o644)
		}

		got, err := gitx.DirtyPaths(ctx, r.path("new")) // from a subdirectory
		if err != nil {
			t.Fatal(err)
		}
		want := []gitx.Change{
			{gitx.Modified, "unstaged"}, {gitx.Modified, "staged"}, {gitx.Modified, "reverted"},
			{gitx.Modified, "chmod"}, {gitx.Deleted, "deleted"}, {gitx.Deleted, "staged-delete"},
			{gitx.Modified, "uncached"}, {gitx.Added, "new/deep/file"}, {gitx.Added, "staged-new"},
		}
		for _, n := range hostileNames {
			want = append(want, gitx.Change{Status: gitx.Added, Path: "new-" + n})
		}
		if diff := cmp.Diff(sortChanges(want), sortChanges(got)); diff != "" {
			t.Errorf("DirtyPaths (-want +got):\n%s", diff)
		}
	})

	t.Run("Clean", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		r.commitFile("f", "x")
		if got, err := gitx.DirtyPaths(ctx, r.dir); err != nil || len(got) != 0 {
			t.Errorf("DirtyPaths = %v, %v; want none", got, err)
		}
	})

	t.Run("NoCommitsYet", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		r.write("a", "1", 0o644)
		r.write("b", "2", 0o644)
		r.git("add", "b")
		got, err := gitx.DirtyPaths(ctx, r.dir)
		if err != nil {
			t.Fatal(err)
		}
		want := []gitx.Change{{gitx.Added, "a"}, {gitx.Added, "b"}}
		if diff := cmp.Diff(want, sortChanges(got)); diff != "" {
			t.Errorf("DirtyPaths (-want +got):\n%s", diff)
		}
	})

	t.Run("ErrNotARepository", func(t *testing.T) {
		t.Parallel()
		if _, err := gitx.DirtyPaths(ctx, t.TempDir()); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("err = %v, want KindInvalid", err)
		}
	})
}
