package gitx_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/gitx"
)

func TestReadWorkTree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("NoCommitsYet", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		r.write("a", "1", 0o644)
		w, err := gitx.ReadWorkTree(ctx, r.dir)
		if err != nil || w.Head != "" || w.Branch != "main" || len(w.Changes) != 1 {
			t.Errorf("ReadWorkTree = %+v, %v; want no head, branch main, one change", w, err)
		}
	})

	t.Run("HeadBranchAndDetached", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		r.write("a", "1", 0o644)
		r.commitAll("one")
		head := r.git("rev-parse", "HEAD")
		w, err := gitx.ReadWorkTree(ctx, r.dir)
		if err != nil || w.Head != head || w.Branch != "main" || len(w.Changes) != 0 || w.Top != r.dir {
			t.Errorf("ReadWorkTree = %+v, %v; want %s on main, clean", w, err, head)
		}
		r.git("checkout", "-q", "--detach")
		if w, err := gitx.ReadWorkTree(ctx, r.dir); err != nil || w.Head != head || w.Branch != "" {
			t.Errorf("detached: ReadWorkTree = %+v, %v; want %s, no branch", w, err, head)
		}
	})
}

// TestWorkTreeSnapshot: the snapshot of a WorkTree a plan walked and
// hashed holds the same files as gitx.Snapshot's, which does neither, and
// Changed says what moved between the reading and the copy, the copied
// bytes of hashed files included.
func TestWorkTreeSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := snapshotFixture(t)
	r.write("staged.txt", "staged, new", 0o644)
	r.git("add", "staged.txt")

	read := func() *gitx.WorkTree {
		t.Helper()
		w, err := gitx.ReadWorkTree(ctx, r.dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WalkTree(ctx, func(gitx.TreeEntry) error { return nil }); err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, c := range w.Changes {
			if fi, err := os.Lstat(r.path(c.Path)); err == nil && !fi.IsDir() {
				paths = append(paths, c.Path)
			}
		}
		if _, err := w.HashObjects(ctx, paths); err != nil {
			t.Fatal(err)
		}
		return w
	}

	w := read()
	viaGit := filepath.Join(t.TempDir(), "git")
	if _, err := gitx.Snapshot(ctx, r.dir, viaGit); err != nil {
		t.Fatal(err)
	}
	viaPlan := filepath.Join(t.TempDir(), "plan")
	info, err := w.Snapshot(ctx, viaPlan)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Dirty {
		t.Error("the snapshot of a dirty tree says it is clean")
	}
	if diff := cmp.Diff(tree(t, viaGit), tree(t, viaPlan)); diff != "" {
		t.Errorf("snapshot from the plan's listing (-git +plan):\n%s", diff)
	}
	if c, err := w.Changed(ctx); err != nil || !c.None() {
		t.Errorf("Changed = %+v, %v; want nothing", c, err)
	}

	check := func(name string, edit func(), want gitx.TreeChange) {
		t.Helper()
		w := read()
		if _, err := w.Snapshot(ctx, filepath.Join(t.TempDir(), "s")); err != nil {
			t.Fatal(err)
		}
		edit()
		c, err := w.Changed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("%s: Changed (-want +got):\n%s", name, diff)
		}
	}
	check("CleanFileEdited", func() { r.write("dir/nested.txt", "edited", 0o644) },
		gitx.TreeChange{Paths: []string{"dir/nested.txt"}})
	check("UntrackedFileCreated", func() { r.write("newer.txt", "new", 0o644) },
		gitx.TreeChange{Paths: []string{"newer.txt"}})
	check("HeadMoved", func() { r.commitAll("more") }, gitx.TreeChange{HeadMoved: true, Paths: []string{
		"dangling", "deleted.txt", "dir/nested.txt", "kept.txt", "new.txt", "newer.txt", "staged.txt", "untracked\xfe",
	}})

	// A dirty file edited after it was hashed and before the copy: git
	// status says the same, the copy tells.
	r.write("kept.txt", "dirty, hashed", 0o644)
	w = read()
	r.write("kept.txt", "dirty, edited before the copy", 0o644)
	if _, err := w.Snapshot(ctx, filepath.Join(t.TempDir(), "s")); err != nil {
		t.Fatal(err)
	}
	r.write("kept.txt", "dirty, hashed", 0o644) // and back: only the copy differs
	if c, err := w.Changed(ctx); err != nil || !cmp.Equal(c, gitx.TreeChange{Paths: []string{"kept.txt"}}) {
		t.Errorf("Changed = %+v, %v; want kept.txt, whose copy is not what was hashed", c, err)
	}
}
