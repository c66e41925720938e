package gitx_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/gitx"
)

// walk lists what w.WalkTree yields.
func walk(t *testing.T, w *gitx.WorkTree) []gitx.TreeEntry {
	t.Helper()
	var got []gitx.TreeEntry
	if err := w.WalkTree(context.Background(), func(e gitx.TreeEntry) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func readWorkTree(t *testing.T, r repo) *gitx.WorkTree {
	t.Helper()
	w, err := gitx.ReadWorkTree(context.Background(), r.dir)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestWorkTreeListsHeadsTree: the listing a local plan digests, read from
// the index, is exactly git ls-tree's of HEAD on a clean tree (modes,
// symlinks, a submodule, names that break parsers), and lists an unmerged
// path once.
func TestWorkTreeListsHeadsTree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	r.write("a.txt", "a", 0o644)
	r.write("dir/run.sh", "#!/bin/sh\n", 0o755)
	// Around dir/ in both orders: '-' < '/' < '0'.
	r.write("dir-x", "x", 0o644)
	r.write("dir0", "0", 0o644)
	r.symlink("a.txt", "link")
	for _, n := range hostileNames {
		r.write("h/"+n, n, 0o644)
	}
	sub := repo{t: t, dir: r.path("sub")}
	if err := os.Mkdir(sub.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sub.git("init", "-q", "-b", "main")
	sub.commitFile("inner", "inner")
	r.git("-c", "advice.addEmbeddedRepo=false", "add", "sub")
	r.commitAll("first")

	want, err := gitx.LsTree(ctx, r.dir, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, walk(t, readWorkTree(t, r))); diff != "" {
		t.Errorf("WalkTree of a clean tree (-ls-tree +index):\n%s", diff)
	}

	// A conflict: a.txt has three stages in the index.
	r.git("checkout", "-q", "-b", "other")
	r.write("a.txt", "theirs", 0o644)
	r.commitAll("theirs")
	r.git("checkout", "-q", "main")
	r.write("a.txt", "ours", 0o644)
	r.commitAll("ours")
	if out, err := gitCmd(r, "merge", "-q", "other"); err == nil {
		t.Fatalf("merge did not conflict:\n%s", out)
	}
	w := readWorkTree(t, r)
	if diff := cmp.Diff([]gitx.Change{{Status: gitx.Unmerged, Path: "a.txt"}}, w.Changes); diff != "" {
		t.Errorf("Changes during a conflict (-want +got):\n%s", diff)
	}
	head, err := gitx.LsTree(ctx, r.dir, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(head, walk(t, w)); diff != "" {
		t.Errorf("WalkTree during a conflict, want HEAD's side once (-ls-tree +index):\n%s", diff)
	}
}

// gitCmd runs git and returns its output and error, for commands that are
// meant to fail.
func gitCmd(r repo, args ...string) (string, error) {
	cmd := execGit(r.dir, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestFlaggedFilesCountAsTheIndexHoldsThem: files marked assume-unchanged
// or skip-worktree and then edited, deleted, retyped or made executable
// on disk are invisible to git status; the listing gives their committed
// entries and the snapshot writes that committed content, so that a
// digest of the listing describes the copy. Other changes still come
// from disk.
func TestFlaggedFilesCountAsTheIndexHoldsThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	r.write("a.txt", "committed a\n", 0o644)
	r.write("b.txt", "committed b\n", 0o644)
	r.write("gone.txt", "committed gone\n", 0o644)
	r.write("run.sh", "#!/bin/sh\necho committed\n", 0o755)
	r.write("plain.txt", "committed plain\n", 0o644)
	r.symlink("a.txt", "link")
	r.commitAll("first")
	committed, err := gitx.LsTree(ctx, r.dir, "HEAD")
	if err != nil {
		t.Fatal(err)
	}

	r.git("update-index", "--assume-unchanged", "a.txt", "run.sh")
	r.git("update-index", "--skip-worktree", "b.txt", "gone.txt", "link")
	r.write("a.txt", "edited a\n", 0o644)
	r.write("b.txt", "edited b\n", 0o644)
	if err := os.Remove(r.path("gone.txt")); err != nil {
		t.Fatal(err)
	}
	r.write("run.sh", "echo edited\n", 0o644)
	if err := os.Remove(r.path("link")); err != nil {
		t.Fatal(err)
	}
	r.symlink("b.txt", "link")
	r.write("plain.txt", "edited plain\n", 0o644)
	r.write("new.txt", "untracked\n", 0o644)

	w := readWorkTree(t, r)
	if diff := cmp.Diff([]string{"a.txt", "b.txt", "gone.txt", "link", "run.sh"}, w.Flagged); diff != "" {
		t.Errorf("Flagged (-want +got):\n%s", diff)
	}
	wantChanges := []gitx.Change{{Status: gitx.Added, Path: "new.txt"}, {Status: gitx.Modified, Path: "plain.txt"}}
	if diff := cmp.Diff(wantChanges, sortChanges(w.Changes)); diff != "" {
		t.Errorf("Changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantChanges, sortChanges(w.OnDisk())); diff != "" {
		t.Errorf("OnDisk (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(committed, walk(t, w)); diff != "" {
		t.Errorf("WalkTree (-committed +listed):\n%s", diff)
	}

	dest := filepath.Join(t.TempDir(), "snap")
	info, err := w.Snapshot(ctx, dest)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"a.txt": "committed a\n", "b.txt": "committed b\n", "gone.txt": "committed gone\n",
		"run.sh": "#!/bin/sh\necho committed\n", "plain.txt": "edited plain\n", "new.txt": "untracked\n",
	} {
		if got := readFile(t, filepath.Join(dest, name)); got != want {
			t.Errorf("%s = %q in the snapshot, want %q", name, got, want)
		}
	}
	assertMode(t, filepath.Join(dest, "run.sh"), true)
	assertMode(t, filepath.Join(dest, "a.txt"), false)
	if got, err := os.Readlink(filepath.Join(dest, "link")); err != nil || got != "a.txt" {
		t.Errorf("link -> %q (%v), want the committed a.txt", got, err)
	}
	if info.Files != 7 || !info.Dirty {
		t.Errorf("info = %+v, want 7 files of a dirty tree", info)
	}
	if c, err := w.Changed(ctx); err != nil || !c.None() {
		t.Errorf("Changed = %+v, %v; want nothing", c, err)
	}

	// Clearing a flag shows the edit to git status, and to the check of the
	// snapshot: the copy holds the committed content, not the edit.
	r.git("update-index", "--no-assume-unchanged", "a.txt")
	if c, err := w.Changed(ctx); err != nil || !cmp.Equal(c, gitx.TreeChange{Paths: []string{"a.txt"}}) {
		t.Errorf("Changed = %+v, %v; want a.txt, no longer flagged", c, err)
	}
	// Setting one on an edited file hides the edit from git status; the
	// check still sees the flag.
	w = readWorkTree(t, r)
	if _, err := w.Snapshot(ctx, filepath.Join(t.TempDir(), "snap")); err != nil {
		t.Fatal(err)
	}
	r.git("update-index", "--assume-unchanged", "plain.txt")
	if c, err := w.Changed(ctx); err != nil || !cmp.Equal(c, gitx.TreeChange{Paths: []string{"plain.txt"}}) {
		t.Errorf("Changed = %+v, %v; want plain.txt, flagged since", c, err)
	}
}

// TestPackageSnapshotWritesFlaggedFilesFromTheIndex: gitx.Snapshot, without
// a plan, follows the same rule.
func TestPackageSnapshotWritesFlaggedFilesFromTheIndex(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.write("a.txt", "committed\n", 0o644)
	r.commitAll("first")
	r.git("update-index", "--skip-worktree", "a.txt")
	r.write("a.txt", "edited\n", 0o644)
	dest := filepath.Join(t.TempDir(), "snap")
	info, err := gitx.Snapshot(context.Background(), r.dir, dest)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "a.txt")); got != "committed\n" || info.Dirty || info.Files != 1 {
		t.Errorf("a.txt = %q, info %+v; want the committed content, a clean tree of one file", got, info)
	}
}

func TestWorkTreeFlaggedBeforeTheFirstCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	r.write("a.txt", "staged\n", 0o644)
	r.git("add", "a.txt")
	r.git("update-index", "--assume-unchanged", "a.txt")
	r.write("a.txt", "edited\n", 0o644)
	w := readWorkTree(t, r)
	if w.Head != "" || !cmp.Equal(w.Flagged, []string{"a.txt"}) || len(w.OnDisk()) != 0 {
		t.Fatalf("ReadWorkTree = %+v; want no head, a.txt flagged and nothing read from disk", w)
	}
	if got := walk(t, w); len(got) != 1 || got[0].ObjectID != blobOf(t, r, "staged\n") {
		t.Errorf("WalkTree = %+v, want the staged a.txt", got)
	}
	dest := filepath.Join(t.TempDir(), "snap")
	if _, err := w.Snapshot(ctx, dest); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "a.txt")); got != "staged\n" {
		t.Errorf("a.txt = %q, want the staged content", got)
	}
}

// blobOf writes a blob holding content into r's objects and returns its id.
func blobOf(t *testing.T, r repo, content string) string {
	t.Helper()
	cmd := execGit(r.dir, "hash-object", "-w", "--stdin")
	cmd.Stdin = strings.NewReader(content)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
