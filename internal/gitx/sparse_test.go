package gitx_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/gitx"
)

// sparseRepo commits a tree with a directory, src/bad/, that the sparse
// checkouts below leave out: a file, an executable, a symlink and a
// nested directory.
func sparseRepo(t *testing.T) repo {
	t.Helper()
	r := newRepo(t)
	r.write("README", "readme\n", 0o644)
	r.write("src/a.txt", "a\n", 0o644)
	r.write("src/good/g.txt", "good\n", 0o644)
	r.write("src/bad/x.txt", "bad\n", 0o644)
	r.write("src/bad/run.sh", "#!/bin/sh\necho bad\n", 0o755)
	r.write("src/bad/deep/y.txt", "deep\n", 0o644)
	r.symlink("x.txt", "src/bad/link")
	r.commitAll("first")
	return r
}

// sparseFiles is what the snapshot of sparseRepo holds, sparse or not: a
// size per file, -1 for the symlink.
var sparseFiles = map[string]int64{
	"README": 7, "src/a.txt": 2, "src/good/g.txt": 5,
	"src/bad/x.txt": 4, "src/bad/run.sh": 19, "src/bad/deep/y.txt": 5, "src/bad/link": -1,
}

// TestSparseCheckout: under sparse checkout, cone or not, with a sparse
// index or not, the files left out are absent from disk and flagged
// skip-worktree. They count as the index holds them: the listing is
// HEAD's tree, and the snapshot holds them with their committed content,
// as a full checkout would.
func TestSparseCheckout(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		set  []string
	}{
		{"NonCone", []string{"--no-cone", "/*", "!/src/bad/"}},
		{"Cone", []string{"--cone", "src/good"}},
		{"ConeSparseIndex", []string{"--cone", "--sparse-index", "src/good"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := sparseRepo(t)
			head, err := gitx.LsTree(ctx, r.dir, "HEAD")
			if err != nil {
				t.Fatal(err)
			}
			r.git(append([]string{"sparse-checkout", "set"}, c.set...)...)
			if _, err := os.Lstat(r.path("src/bad")); !os.IsNotExist(err) {
				t.Fatalf("src/bad is on disk under sparse checkout (lstat: %v)", err)
			}

			w := readWorkTree(t, r)
			want := []string{"src/bad/deep/y.txt", "src/bad/link", "src/bad/run.sh", "src/bad/x.txt"}
			if diff := cmp.Diff(want, w.Flagged); diff != "" {
				t.Errorf("Flagged (-want +got):\n%s", diff)
			}
			if len(w.Changes) != 0 {
				t.Errorf("Changes = %v, want none", w.Changes)
			}
			if diff := cmp.Diff(head, walk(t, w)); diff != "" {
				t.Errorf("WalkTree (-HEAD +listed):\n%s", diff)
			}
			dest := filepath.Join(t.TempDir(), "snap")
			info, err := w.Snapshot(ctx, dest)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sparseFiles, tree(t, dest)); diff != "" {
				t.Errorf("snapshot (-want +got):\n%s", diff)
			}
			if got := readFile(t, filepath.Join(dest, "src/bad/x.txt")); got != "bad\n" {
				t.Errorf("src/bad/x.txt = %q", got)
			}
			assertMode(t, filepath.Join(dest, "src/bad/run.sh"), true)
			if got, err := os.Readlink(filepath.Join(dest, "src/bad/link")); err != nil || got != "x.txt" {
				t.Errorf("src/bad/link -> %q (%v)", got, err)
			}
			if info.Files != len(sparseFiles) || info.Bytes != 42 || info.Dirty {
				t.Errorf("info = %+v, want %d files, 42 bytes, clean", info, len(sparseFiles))
			}
			if c, err := w.Changed(ctx); err != nil || !c.None() {
				t.Errorf("Changed = %+v, %v; want nothing", c, err)
			}
			// The working tree and the index are as they were.
			if _, err := os.Lstat(r.path("src/bad")); !os.IsNotExist(err) {
				t.Errorf("the snapshot wrote src/bad into the working tree (lstat: %v)", err)
			}
			if diff := cmp.Diff(w.Flagged, readWorkTree(t, r).Flagged); diff != "" {
				t.Errorf("flags after the snapshot (-before +after):\n%s", diff)
			}
		})
	}
}

// TestSparseCheckoutStagedChange: after git reset --soft, a file sparse
// checkout leaves out holds, in the index, content HEAD does not have.
// git status shows it staged; it still counts as the index holds it, since
// the working tree has nothing there. The check of the snapshot sees a
// new version staged while the status stays the same.
func TestSparseCheckoutStagedChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := sparseRepo(t)
	r.write("src/bad/x.txt", "two\n", 0o644)
	r.commitAll("two")
	r.git("sparse-checkout", "set", "--no-cone", "/*", "!/src/bad/")
	r.git("reset", "-q", "--soft", "HEAD~1")

	w := readWorkTree(t, r)
	if diff := cmp.Diff([]gitx.Change{{Status: gitx.Modified, Path: "src/bad/x.txt"}}, w.Changes); diff != "" {
		t.Errorf("Changes (-want +got):\n%s", diff)
	}
	if len(w.OnDisk()) != 0 {
		t.Errorf("OnDisk = %v, want nothing read from the working tree", w.OnDisk())
	}
	var listed string
	for _, e := range walk(t, w) {
		if e.Path == "src/bad/x.txt" {
			listed = e.ObjectID
		}
	}
	if want := blobOf(t, r, "two\n"); listed != want {
		t.Errorf("src/bad/x.txt listed as %s, want the staged %s", listed, want)
	}
	dest := filepath.Join(t.TempDir(), "snap")
	if _, err := w.Snapshot(ctx, dest); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "src/bad/x.txt")); got != "two\n" {
		t.Errorf("src/bad/x.txt = %q in the snapshot, want the staged content", got)
	}

	// Another version staged, the flag kept: git status says "modified"
	// as before, the index entry differs.
	three := blobOf(t, r, "three\n")
	r.git("update-index", "--cacheinfo", "100644,"+three+",src/bad/x.txt")
	r.git("update-index", "--skip-worktree", "src/bad/x.txt")
	if c, err := w.Changed(ctx); err != nil || !cmp.Equal(c, gitx.TreeChange{Paths: []string{"src/bad/x.txt"}}) {
		t.Errorf("Changed = %+v, %v; want src/bad/x.txt, staged again", c, err)
	}
}
