package gitx_test

import (
	"context"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

func TestFileAt(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.write("dir/f.txt", "one\n", 0o644)
	r.commitAll("first")
	first := r.git("rev-parse", "HEAD")
	r.write("dir/f.txt", "two\n", 0o644)
	r.commitAll("second")
	ctx := context.Background()
	b, err := gitx.FileAt(ctx, r.dir, trimNL(first), "dir/f.txt", 1<<20)
	if err != nil || string(b) != "one\n" {
		t.Errorf("FileAt(first) = %q, %v", b, err)
	}
	b, err = gitx.FileAt(ctx, r.dir, "HEAD", "dir/f.txt", 1<<20)
	if err != nil || string(b) != "two\n" {
		t.Errorf("FileAt(HEAD) = %q, %v", b, err)
	}
	if _, err := gitx.FileAt(ctx, r.dir, "HEAD", "dir/f.txt", 2); core.KindOf(err) != core.KindInvalid || !strings.Contains(err.Error(), "more than the 2") {
		t.Errorf("FileAt past max = %v, want it refused unread", err)
	}
	if _, err := gitx.FileAt(ctx, r.dir, "HEAD", "nope", 1<<20); core.KindOf(err) != core.KindNotFound {
		t.Errorf("missing path: %v", err)
	}
	if _, err := gitx.FileAt(ctx, r.dir, "--output=x", "f", 1<<20); core.KindOf(err) != core.KindInvalid {
		t.Errorf("option-like revision: %v", err)
	}
}

func trimNL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
