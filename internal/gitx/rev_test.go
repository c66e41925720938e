package gitx_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

// clone makes a clone of src (with extra git clone arguments) in a new
// temporary directory.
func clone(t *testing.T, src repo, args ...string) repo {
	t.Helper()
	dst := repo{t: t, dir: t.TempDir()}
	dst.git(append(append([]string{"clone", "-q"}, args...), "file://"+src.dir, dst.dir)...)
	return dst
}

// commitFile writes one file and commits it, returning the new commit id.
func (r repo) commitFile(rel, content string) string {
	r.t.Helper()
	r.write(rel, content, 0o644)
	r.commitAll("edit " + rel)
	return r.git("rev-parse", "HEAD")
}

func TestResolveRev(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	head := r.commitFile("f", "1")
	tree := r.git("rev-parse", "HEAD^{tree}")

	for _, rev := range []string{"HEAD", "main", head, head[:12]} {
		got, err := gitx.ResolveRev(ctx, r.dir, rev)
		if err != nil || got != head {
			t.Errorf("ResolveRev(%q) = %q, %v; want %q", rev, got, err, head)
		}
		if ok, err := gitx.CommitExists(ctx, r.dir, rev); !ok || err != nil {
			t.Errorf("CommitExists(%q) = %v, %v; want true", rev, ok, err)
		}
	}
	missing := strings.Repeat("1", len(head))
	for _, rev := range []string{"nope", missing, tree, "--all", "-x", ""} {
		if _, err := gitx.ResolveRev(ctx, r.dir, rev); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("ResolveRev(%q) err = %v, want KindNotFound", rev, err)
		}
		if ok, err := gitx.CommitExists(ctx, r.dir, rev); ok || err != nil {
			t.Errorf("CommitExists(%q) = %v, %v; want false, nil", rev, ok, err)
		}
	}
}

func TestMergeBaseAndIsAncestor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	root := r.commitFile("f", "1")
	fork := r.commitFile("f", "2")
	r.git("checkout", "-q", "-b", "feature")
	feature := r.commitFile("g", "feature")
	r.git("checkout", "-q", "main")
	main := r.commitFile("f", "3")
	r.git("checkout", "-q", "--orphan", "unrelated")
	unrelated := r.commitFile("u", "alone")

	got, err := gitx.MergeBase(ctx, r.dir, "main", "feature")
	if err != nil || got != fork {
		t.Errorf("MergeBase(main, feature) = %q, %v; want %q", got, err, fork)
	}
	if _, err := gitx.MergeBase(ctx, r.dir, main, unrelated); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("MergeBase of unrelated histories: err = %v, want KindNotFound", err)
	}
	if _, err := gitx.MergeBase(ctx, r.dir, "nope", main); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("MergeBase with an unknown rev: err = %v, want KindNotFound", err)
	}

	for _, c := range []struct {
		a, b string
		want bool
	}{
		{root, main, true}, {fork, feature, true}, {main, main, true},
		{feature, main, false}, {main, root, false}, {unrelated, main, false},
	} {
		if got, err := gitx.IsAncestor(ctx, r.dir, c.a, c.b); err != nil || got != c.want {
			t.Errorf("IsAncestor(%.7s, %.7s) = %v, %v; want %v", c.a, c.b, got, err, c.want)
		}
	}
	if _, err := gitx.IsAncestor(ctx, r.dir, strings.Repeat("2", len(main)), main); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("IsAncestor with a missing commit: err = %v, want KindNotFound", err)
	}
}

func TestDefaultBranch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("Main", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		r.commitFile("f", "1")
		r.git("branch", "master")
		r.git("branch", "mainline")
		if got, err := gitx.DefaultBranch(ctx, r.dir); err != nil || got != "refs/heads/main" {
			t.Errorf("DefaultBranch = %q, %v; want refs/heads/main", got, err)
		}
	})

	t.Run("Master", func(t *testing.T) {
		t.Parallel()
		r := repo{t: t, dir: t.TempDir()}
		r.git("init", "-q", "-b", "master")
		r.commitFile("f", "1")
		if got, err := gitx.DefaultBranch(ctx, r.dir); err != nil || got != "refs/heads/master" {
			t.Errorf("DefaultBranch = %q, %v; want refs/heads/master", got, err)
		}
	})

	t.Run("OriginHEAD", func(t *testing.T) {
		t.Parallel()
		src := repo{t: t, dir: t.TempDir()}
		src.git("init", "-q", "-b", "trunk")
		src.commitFile("f", "1")
		dst := clone(t, src)
		dst.git("checkout", "-q", "-b", "main") // a local main does not win over origin/HEAD
		if got, err := gitx.DefaultBranch(ctx, dst.dir); err != nil || got != "refs/remotes/origin/trunk" {
			t.Errorf("DefaultBranch = %q, %v; want refs/remotes/origin/trunk", got, err)
		}
	})

	t.Run("DanglingOriginHEADAndTip", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		c := r.commitFile("f", "1")
		r.git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/gone")
		ref, tip, err := gitx.DefaultBranchTip(ctx, r.dir)
		if err != nil || ref != "refs/heads/main" || tip != c {
			t.Errorf("DefaultBranchTip = %q, %q, %v; want refs/heads/main at %s", ref, tip, err, c)
		}
	})

	t.Run("ErrNone", func(t *testing.T) {
		t.Parallel()
		r := repo{t: t, dir: t.TempDir()}
		r.git("init", "-q", "-b", "trunk")
		r.commitFile("f", "1")
		if _, err := gitx.DefaultBranch(ctx, r.dir); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("err = %v, want KindNotFound", err)
		}
	})
}

func TestUpstream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := newRepo(t)
	src.commitFile("f", "1")
	dst := clone(t, src)
	if got, err := gitx.Upstream(ctx, dst.dir); err != nil || got != "refs/remotes/origin/main" {
		t.Errorf("Upstream = %q, %v; want refs/remotes/origin/main", got, err)
	}
	if _, err := gitx.Upstream(ctx, src.dir); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Upstream without one: err = %v, want KindNotFound", err)
	}
	dst.git("checkout", "-q", "--detach")
	if _, err := gitx.Upstream(ctx, dst.dir); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Upstream when detached: err = %v, want KindNotFound", err)
	}
}

func TestShallowAndDeepen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := newRepo(t)
	var commits []string
	for i := range 5 {
		commits = append(commits, src.commitFile("f", strings.Repeat("x", i+1)))
	}
	dst := clone(t, src, "--depth", "1")

	if shallow, err := gitx.IsShallow(ctx, src.dir); err != nil || shallow {
		t.Errorf("IsShallow(full) = %v, %v; want false", shallow, err)
	}
	if shallow, err := gitx.IsShallow(ctx, dst.dir); err != nil || !shallow {
		t.Fatalf("IsShallow(depth 1) = %v, %v; want true", shallow, err)
	}
	if ok, _ := gitx.CommitExists(ctx, dst.dir, commits[2]); ok {
		t.Fatal("a depth-1 clone has HEAD~2")
	}
	if err := gitx.Deepen(ctx, dst.dir, "origin", 2); err != nil {
		t.Fatal(err)
	}
	if ok, err := gitx.CommitExists(ctx, dst.dir, commits[2]); !ok || err != nil {
		t.Errorf("after deepening by 2, HEAD~2 exists = %v, %v", ok, err)
	}
	if ok, _ := gitx.CommitExists(ctx, dst.dir, commits[1]); ok {
		t.Error("deepening by 2 fetched HEAD~3 too")
	}

	for _, c := range []struct {
		remote string
		by     int
	}{{"origin", 0}, {"--upload-pack=evil", 1}, {"", 1}} {
		if err := gitx.Deepen(ctx, dst.dir, c.remote, c.by); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("Deepen(%q, %d) err = %v, want KindInvalid", c.remote, c.by, err)
		}
	}
	if err := gitx.Deepen(ctx, dst.dir, "no-such-remote", 1); err == nil {
		t.Error("Deepen from a missing remote: want an error")
	}
}

func TestShortRef(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"refs/heads/main": "main", "refs/remotes/origin/main": "origin/main",
		"refs/tags/v1": "v1", "HEAD": "HEAD", "abc123": "abc123",
	} {
		if got := gitx.ShortRef(in); got != want {
			t.Errorf("ShortRef(%q) = %q, want %q", in, got, want)
		}
	}
}
