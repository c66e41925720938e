package gitx_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

func TestLsTree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	r.write("a.txt", "a", 0o644)
	r.write("dir/run.sh", "#!/bin/sh\n", 0o755)
	r.write("dir/sub/empty", "", 0o644)
	r.symlink("a.txt", "link")
	for _, n := range hostileNames {
		r.write("h/"+n, n, 0o644)
	}
	sub := repo{t: t, dir: r.path("sub")}
	if err := os.Mkdir(sub.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sub.git("init", "-q", "-b", "main")
	subHead := sub.commitFile("inner", "inner")
	r.git("-c", "advice.addEmbeddedRepo=false", "add", "sub")
	r.commitAll("first")

	got, err := gitx.LsTree(ctx, r.path("dir"), "HEAD") // from a subdirectory: still the whole tree
	if err != nil {
		t.Fatal(err)
	}
	want := []gitx.TreeEntry{
		{Path: "a.txt", Mode: gitx.ModeFile, Type: gitx.TypeBlob},
		{Path: "dir/run.sh", Mode: gitx.ModeExecutable, Type: gitx.TypeBlob},
		{Path: "dir/sub/empty", Mode: gitx.ModeFile, Type: gitx.TypeBlob, ObjectID: "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"},
		{Path: "link", Mode: gitx.ModeSymlink, Type: gitx.TypeBlob},
		{Path: "sub", Mode: gitx.ModeGitlink, Type: gitx.TypeCommit, ObjectID: subHead},
	}
	for _, n := range hostileNames {
		want = append(want, gitx.TreeEntry{Path: "h/" + n, Mode: gitx.ModeFile, Type: gitx.TypeBlob})
	}
	slices.SortFunc(want, func(a, b gitx.TreeEntry) int { return strings.Compare(a.Path, b.Path) })
	for i := range want {
		if want[i].ObjectID == "" {
			want[i].ObjectID = r.git("rev-parse", "HEAD:"+want[i].Path)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LsTree (-want +got):\n%s", diff)
	}

	if _, err := gitx.LsTree(ctx, r.dir, "nope"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("unknown rev: err = %v, want KindNotFound", err)
	}

	stop := errors.New("stop")
	calls := 0
	err = gitx.WalkTree(ctx, r.dir, "HEAD", func(gitx.TreeEntry) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("WalkTree stopped by fn: err = %v after %d calls, want stop after 1", err, calls)
	}
}

// TestLsTreeLongPath lists a path longer than the read buffer, which only a
// tree built without the file system can hold.
func TestLsTreeLongPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	long := strings.Repeat("d", 70_000) + "/file"
	empty := r.git("hash-object", "-w", "--stdin") // stdin is /dev/null
	r.git("update-index", "--add", "--cacheinfo", "100644,"+empty+",short")
	r.git("update-index", "--add", "--cacheinfo", "100644,"+empty+","+long)
	tree := r.git("write-tree")

	got, err := gitx.LsTree(ctx, r.dir, tree)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Path != long || got[1].Path != "short" {
		t.Fatalf("LsTree returned %d entries, first path of %d bytes", len(got), len(got[0].Path))
	}
}

func TestWalkTreeCanceled(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	for _, f := range []string{"a", "b", "c"} {
		r.write(f, f, 0o644)
	}
	r.commitAll("first")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := gitx.WalkTree(ctx, r.dir, "HEAD", func(gitx.TreeEntry) error {
		cancel()
		return nil
	})
	if core.KindOf(err) != core.KindCanceled {
		t.Errorf("err = %v, want KindCanceled", err)
	}
}
