package gitx

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/treehash"
)

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A branch tracks out/file and out/sub/x, and the working tree has out as
// a link to a directory outside it: the snapshot keeps the link and
// writes nothing through it.
func TestSnapshotDoesNotWriteThroughSymlinkOutOfTree(t *testing.T) {
	t.Parallel()
	repo := gittest.Repo(t, map[string]string{"out/file": "tracked", "out/sub/x": "tracked", "README": "hi"})
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "file"), "host data")
	if err := os.RemoveAll(filepath.Join(repo, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(repo, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../"+filepath.Base(outside), filepath.Join(repo, "rel")); err != nil {
		t.Fatal(err)
	}
	before := treehash.Of(t, outside)

	dest := filepath.Join(t.TempDir(), "snap")
	if _, err := Snapshot(t.Context(), repo, dest); err != nil {
		t.Fatal(err)
	}
	if after := treehash.Of(t, outside); after != before {
		t.Error("the snapshot changed the directory the link points to")
	}
	if got, err := os.Readlink(filepath.Join(dest, "out")); err != nil || got != outside {
		t.Errorf("out = %q, %v; want the link as it is", got, err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "out", "sub")); err == nil {
		t.Error("the snapshot created out/sub through the link")
	}
}

// The working tree changes between listing and copying: a listed
// directory becomes a link out of the tree. The copy must not follow it.
func TestSnapshotDoesNotFollowSymlinkSwappedInWhileCopying(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	writeFile(t, filepath.Join(tree, "d/f"), "in the tree")
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "f"), "host secret")
	src, err := os.OpenRoot(tree)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	entries, _, err := plan(src, slices.Values([]string{"d/f"}))
	if err != nil || len(entries) != 1 {
		t.Fatalf("plan = %v, %v", entries, err)
	}
	if err := os.RemoveAll(filepath.Join(tree, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(tree, "d")); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	dst, err := os.OpenRoot(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := makeDirs(dst, entries); err != nil {
		t.Fatal(err)
	}
	if _, _, err := copyAll(t.Context(), src, dst, entries, nil, nil); err == nil {
		t.Error("copied a file through a link out of the tree")
	}
	if b, err := os.ReadFile(filepath.Join(dest, "d/f")); err == nil {
		t.Errorf("d/f = %q, copied from outside the tree", b)
	}
}
