package gitx_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

func TestMirrorsCheckoutExactCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	r.write("f.txt", "one\n", 0o644)
	r.write("run.sh", "#!/bin/sh\n", 0o755)
	r.commitAll("first")
	first := trimNL(r.git("rev-parse", "HEAD"))
	m := gitx.Mirrors{Dir: t.TempDir()}
	mirror, err := m.Ensure(ctx, r.dir, first)
	if err != nil {
		t.Fatal(err)
	}
	// A new commit upstream is fetched on demand.
	r.write("f.txt", "two\n", 0o644)
	r.commitAll("second")
	second := trimNL(r.git("rev-parse", "HEAD"))
	if again, err := m.Ensure(ctx, r.dir, second); err != nil || again != mirror {
		t.Fatalf("ensure second = %s, %v", again, err)
	}
	// Parallel checkouts of both commits from the one mirror.
	var wg sync.WaitGroup
	for i, c := range []string{first, second, first} {
		wg.Add(1)
		go func(i int, c string) {
			defer wg.Done()
			dest := filepath.Join(t.TempDir(), "ws")
			if err := m.Checkout(ctx, mirror, c, dest); err != nil {
				t.Error(err)
				return
			}
			b, _ := os.ReadFile(filepath.Join(dest, "f.txt"))
			want := map[string]string{first: "one\n", second: "two\n"}[c]
			if string(b) != want {
				t.Errorf("checkout %d of %s: f.txt = %q", i, c, b)
			}
			if fi, err := os.Stat(filepath.Join(dest, "run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
				t.Errorf("run.sh not executable: %v %v", fi, err)
			}
			if err := m.Release(ctx, mirror, dest); err != nil {
				t.Error(err)
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Errorf("worktree left after release: %v", err)
			}
		}(i, c)
	}
	wg.Wait()
	if _, err := m.Ensure(ctx, r.dir, "0000000000000000000000000000000000000000"); core.KindOf(err) != core.KindNotFound {
		t.Errorf("unknown commit: %v", err)
	}
	if _, err := m.Ensure(ctx, "--upload-pack=evil", first); core.KindOf(err) != core.KindInvalid {
		t.Errorf("option-like repository: %v", err)
	}
}

func TestMirrorPruneForgetsRemovedWorktrees(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	r.write("f", "x", 0o644)
	r.commitAll("one")
	head := trimNL(r.git("rev-parse", "HEAD"))
	m := gitx.Mirrors{Dir: t.TempDir()}
	mirror, err := m.Ensure(ctx, r.dir, head)
	if err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(t.TempDir(), "ws")
	if err := m.Checkout(ctx, mirror, head, ws); err != nil {
		t.Fatal(err)
	}
	// A runner killed mid-job: the workspace is removed without Release.
	if err := os.RemoveAll(ws); err != nil {
		t.Fatal(err)
	}
	if err := m.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", mirror, "worktree", "list", "--porcelain").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if strings.Contains(string(out), ws) {
		t.Fatalf("the removed worktree is still listed after Prune:\n%s", out)
	}
	// The same path can be checked out again.
	if err := m.Checkout(ctx, mirror, head, ws); err != nil {
		t.Fatalf("checkout into the pruned path: %v", err)
	}
}

// TestMirrorsRelativeDir: a relative cache directory (a server's default
// data directory) works, although git runs elsewhere.
func TestMirrorsRelativeDir(t *testing.T) {
	r := newRepo(t)
	r.write("f", "x", 0o644)
	r.commitAll("one")
	head := trimNL(r.git("rev-parse", "HEAD"))
	t.Chdir(t.TempDir())
	m := gitx.Mirrors{Dir: filepath.Join("data", "mirrors")}
	if _, err := m.Fetch(context.Background(), r.dir); err != nil {
		t.Fatalf("Fetch with a relative cache directory: %v", err)
	}
	mirror, err := m.Ensure(context.Background(), r.dir, head)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(mirror) {
		t.Fatalf("mirror path %q is relative", mirror)
	}
}
