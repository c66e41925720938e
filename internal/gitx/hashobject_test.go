package gitx_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

// TestHashObjectsMatchesGitAdd hashes a working tree, commits it, and
// checks every id against what the commit recorded.
func TestHashObjectsMatchesGitAdd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			r := repo{t: t, dir: t.TempDir()}
			r.git("init", "-q", "-b", "main", "--object-format="+format)
			// A CRLF file normalized by attributes: the blob is not the bytes on disk.
			r.write(".gitattributes", "*.txt text eol=lf\n", 0o644)
			r.write("crlf.txt", "one\r\ntwo\r\n", 0o644)
			r.write("plain", "plain", 0o644)
			r.write("empty", "", 0o644)
			r.write("dir/run.sh", "#!/bin/sh\n", 0o755)
			r.symlink("plain", "link")
			r.symlink("nowhere", "dangling")
			paths := []string{".gitattributes", "crlf.txt", "plain", "empty", "dir/run.sh", "link", "dangling"}
			for _, n := range hostileNames {
				r.write(n, "content of "+n, 0o644)
				paths = append(paths, n)
			}
			paths = append(paths, "plain") // a duplicate is harmless

			got, err := gitx.HashObjects(ctx, r.path("dir"), paths) // paths stay relative to the top
			if err != nil {
				t.Fatal(err)
			}
			r.commitAll("all")
			entries, err := gitx.LsTree(ctx, r.dir, "HEAD")
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for _, e := range entries {
				want[e.Path] = e.ObjectID
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("HashObjects (-committed +hashed):\n%s", diff)
			}
			if raw := r.git("hash-object", "--no-filters", "crlf.txt"); raw == got["crlf.txt"] {
				t.Error("crlf.txt hashed without its filter")
			}
		})
	}
}

func TestHashObjectsErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	r.write("dir/f", "x", 0o644)

	if got, err := gitx.HashObjects(ctx, r.dir, nil); err != nil || len(got) != 0 {
		t.Errorf("HashObjects(nil) = %v, %v; want an empty map", got, err)
	}
	if _, err := gitx.HashObjects(ctx, r.dir, []string{"dir/f", "missing"}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("missing file: err = %v, want KindNotFound", err)
	}
	if _, err := gitx.HashObjects(ctx, r.dir, []string{"dir"}); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("directory: err = %v, want KindInvalid", err)
	}
	if _, err := gitx.HashObjects(ctx, t.TempDir(), []string{"f"}); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("outside a repository: err = %v, want KindInvalid", err)
	}
}
