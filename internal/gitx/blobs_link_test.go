package gitx_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

// TestReadBlobs reads link texts and files the way the planner reads the
// targets of symlinks: all at once, by blob id.
func TestReadBlobs(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.write("big.txt", strings.Repeat("x", 5000), 0o644)
	r.write("empty", "", 0o644)
	r.write("cfg.js", "export default []\n", 0o644)
	r.symlink("../../cfg.js", "link")
	r.commitAll("first")
	ctx := context.Background()
	ids := map[string]string{}
	entries, err := gitx.LsTree(ctx, r.dir, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		ids[e.Path] = e.ObjectID
	}

	got, err := gitx.ReadBlobs(ctx, r.dir, []string{ids["link"], ids["big.txt"], ids["empty"], ids["cfg.js"], ids["link"]}, 4096)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{ids["link"]: []byte("../../cfg.js"), ids["empty"]: {}, ids["cfg.js"]: []byte("export default []\n")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("blobs (-want +got), the one past max left out:\n%s", diff)
	}
	if got, err := gitx.ReadBlobs(ctx, r.dir, nil, 4096); err != nil || len(got) != 0 {
		t.Errorf("no ids: %v, %v", got, err)
	}
	if _, err := gitx.ReadBlobs(ctx, r.dir, []string{strings.Repeat("ab", 20)}, 4096); core.KindOf(err) != core.KindNotFound {
		t.Errorf("missing object: %v, want KindNotFound", err)
	}
	tree := r.git("rev-parse", "HEAD^{tree}")
	if _, err := gitx.ReadBlobs(ctx, r.dir, []string{tree}, 4096); core.KindOf(err) != core.KindNotFound || !strings.Contains(err.Error(), "not a blob") {
		t.Errorf("a tree: %v, want KindNotFound", err)
	}
	if _, err := gitx.ReadBlobs(ctx, r.dir, []string{"HEAD:cfg.js"}, 4096); core.KindOf(err) != core.KindInvalid {
		t.Errorf("not an id: %v, want KindInvalid", err)
	}
}
