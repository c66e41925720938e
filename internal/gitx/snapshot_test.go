package gitx_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

// Names that break line- or UTF-8-based parsing.
const (
	spacedName  = "a b\nc"
	invalidUTF8 = "bad\xffname"
)

// snapshotFixture builds a repository whose working tree exercises every
// rule of Snapshot.
func snapshotFixture(t *testing.T) repo {
	t.Helper()
	r := newRepo(t)
	r.write(".gitignore", "*.log\nbuild/\n", 0o644)
	r.write("kept.txt", "committed", 0o644)
	r.write("deleted.txt", "gone soon", 0o644)
	r.write("run.sh", "#!/bin/sh\necho hi\n", 0o755)
	r.write("dir/nested.txt", "nested", 0o644)
	r.write(spacedName, "spaced", 0o644)
	r.write(invalidUTF8, "latin1", 0o644)
	r.symlink("kept.txt", "link")

	// A submodule-like gitlink: a nested repository added to the index.
	sub := repo{t: t, dir: r.path("sub")}
	if err := os.Mkdir(sub.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sub.git("init", "-q", "-b", "main")
	sub.write("inner.txt", "inner", 0o644)
	sub.commitAll("inner")
	r.git("-c", "advice.addEmbeddedRepo=false", "add", "sub")
	r.commitAll("first")

	// Same content, new mtime: a plain `git status` would refresh and rewrite the index.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(r.path("dir/nested.txt"), later, later); err != nil {
		t.Fatal(err)
	}
	r.write("kept.txt", "modified, not committed", 0o644)
	if err := os.Remove(r.path("deleted.txt")); err != nil {
		t.Fatal(err)
	}
	r.write("new.txt", "untracked", 0o644)
	r.write("untracked\xfe", "untracked, not UTF-8", 0o644)
	r.symlink("nowhere", "dangling")
	r.write("debug.log", "ignored", 0o644)
	r.write("build/out.bin", "ignored", 0o644)
	return r
}

// tree lists every non-directory under dir, relative, with its size or -1
// for a symlink.
func tree(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	files := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = fi.Size()
		if d.Type()&fs.ModeSymlink != 0 {
			files[filepath.ToSlash(rel)] = -1
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("WorkingTreeAsItIs", func(t *testing.T) {
		t.Parallel()
		r := snapshotFixture(t)
		indexBefore := readFile(t, r.path(".git/index"))
		dest := filepath.Join(t.TempDir(), "snap") // does not exist yet

		info, err := gitx.Snapshot(ctx, r.path("dir"), dest) // from a subdirectory: the whole tree
		if err != nil {
			t.Fatal(err)
		}

		want := map[string]int64{
			".gitignore":     int64(len("*.log\nbuild/\n")),
			"kept.txt":       int64(len("modified, not committed")),
			"run.sh":         int64(len("#!/bin/sh\necho hi\n")),
			"dir/nested.txt": int64(len("nested")),
			spacedName:       int64(len("spaced")),
			invalidUTF8:      int64(len("latin1")),
			"link":           -1,
			"new.txt":        int64(len("untracked")),
			"untracked\xfe":  int64(len("untracked, not UTF-8")),
			"dangling":       -1,
		}
		got := tree(t, dest)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("snapshot contents (-want +got):\n%s", diff)
		}
		if _, err := os.Lstat(filepath.Join(dest, "sub")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("submodule copied (lstat: %v)", err)
		}

		var wantBytes int64
		for _, n := range want {
			wantBytes += max(n, 0)
		}
		wantInfo := gitx.SnapshotInfo{Root: r.dir, Files: len(want), Bytes: wantBytes, Skipped: 1, Dirty: true}
		info.Root = realPath(t, info.Root)
		wantInfo.Root = realPath(t, wantInfo.Root)
		if diff := cmp.Diff(wantInfo, info); diff != "" {
			t.Errorf("SnapshotInfo (-want +got):\n%s", diff)
		}

		if got := readFile(t, filepath.Join(dest, "kept.txt")); got != "modified, not committed" {
			t.Errorf("kept.txt = %q, want the uncommitted content", got)
		}
		if got := readFile(t, filepath.Join(dest, invalidUTF8)); got != "latin1" {
			t.Errorf("non-UTF-8 file = %q", got)
		}
		assertMode(t, filepath.Join(dest, "run.sh"), true)
		assertMode(t, filepath.Join(dest, "kept.txt"), false)
		for link, target := range map[string]string{"link": "kept.txt", "dangling": "nowhere"} {
			if got, err := os.Readlink(filepath.Join(dest, link)); err != nil || got != target {
				t.Errorf("symlink %s -> %q (%v), want -> %q", link, got, err, target)
			}
		}

		// Jobs write to their snapshot; the user's tree must not notice.
		if err := os.WriteFile(filepath.Join(dest, "kept.txt"), []byte("written by a job"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dest, "run.sh"), []byte("truncated"), 0o755); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, r.path("kept.txt")); got != "modified, not committed" {
			t.Errorf("source kept.txt changed to %q", got)
		}
		if got := readFile(t, r.path("run.sh")); got != "#!/bin/sh\necho hi\n" {
			t.Errorf("source run.sh changed to %q", got)
		}
		if readFile(t, r.path(".git/index")) != indexBefore {
			t.Error("Snapshot rewrote the user's index")
		}
	})

	t.Run("CleanTree", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		r.write("f", "x", 0o644)
		r.commitAll("first")
		dest := t.TempDir() // exists and is empty
		info, err := gitx.Snapshot(ctx, r.dir, dest)
		if err != nil {
			t.Fatal(err)
		}
		if info.Dirty || info.Files != 1 || info.Bytes != 1 {
			t.Errorf("info = %+v, want a clean tree with one 1-byte file", info)
		}
	})

	t.Run("NoCommitsYet", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		r.write("f", "x", 0o644)
		info, err := gitx.Snapshot(ctx, r.dir, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if !info.Dirty || info.Files != 1 {
			t.Errorf("info = %+v, want a dirty tree with one file", info)
		}
	})

	t.Run("TrackedFileBeyondSymlink", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		r.write("d/f", "tracked", 0o644)
		r.commitAll("first")
		outside := t.TempDir()
		if err := os.WriteFile(filepath.Join(outside, "f"), []byte("outside the tree"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(r.path("d")); err != nil {
			t.Fatal(err)
		}
		r.symlink(outside, "d")
		dest := t.TempDir()
		if _, err := gitx.Snapshot(ctx, r.dir, dest); err != nil {
			t.Fatal(err)
		}
		// Like git, the snapshot does not look through the symlink.
		if diff := cmp.Diff(map[string]int64{"d": -1}, tree(t, dest)); diff != "" {
			t.Errorf("snapshot contents (-want +got):\n%s", diff)
		}
	})

	t.Run("ErrDestNotEmpty", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		dest := t.TempDir()
		if err := os.WriteFile(filepath.Join(dest, "x"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := gitx.Snapshot(ctx, r.dir, dest); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("err = %v, want KindInvalid", err)
		}
	})

	t.Run("ErrDestIsAFile", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		dest := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(dest, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := gitx.Snapshot(ctx, r.dir, dest); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("err = %v, want KindInvalid", err)
		}
	})

	t.Run("ErrNotARepository", func(t *testing.T) {
		t.Parallel()
		dest := filepath.Join(t.TempDir(), "snap")
		if _, err := gitx.Snapshot(ctx, t.TempDir(), dest); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("err = %v, want KindInvalid", err)
		}
		if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("dest created for a failed snapshot (lstat: %v)", err)
		}
	})
}

func assertMode(t *testing.T, p string, executable bool) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode()&0o100 != 0; got != executable || !fi.Mode().IsRegular() {
		t.Errorf("%s: mode %v, want executable=%v", filepath.Base(p), fi.Mode(), executable)
	}
}

func TestSnapshotLeavesOutStateDir(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.write("keep.txt", "k", 0o644)
	r.write(".deltaci/state.db", "db", 0o644)
	r.write(".deltaci-not-state/x", "x", 0o644)
	dest := filepath.Join(t.TempDir(), "snap")
	if _, err := gitx.Snapshot(context.Background(), r.dir, dest); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, ".deltaci")); !os.IsNotExist(err) {
		t.Errorf(".deltaci copied into the snapshot: %v", err)
	}
	for _, f := range []string{"keep.txt", ".deltaci-not-state/x"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("%s missing: %v", f, err)
		}
	}
}
