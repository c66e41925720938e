package workspace

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/deltaci/deltaci/internal/treehash"
)

func write(t *testing.T, p, content string, perm fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}

// A snapshot holds links out of the tree, as a working tree may; the copy
// keeps them as links and neither reads nor writes through them.
func TestWorkspaceCopyDoesNotFollowSymlinkOutOfSnapshot(t *testing.T) {
	t.Parallel()
	box := t.TempDir()
	outside := filepath.Join(box, "outside")
	write(t, filepath.Join(outside, "secret"), "host data", 0o644)
	src := filepath.Join(box, "snap")
	write(t, filepath.Join(src, "run.sh"), "#!/bin/sh\n", 0o755)
	write(t, filepath.Join(src, "dir/f"), "f", 0o644)
	for name, target := range map[string]string{"abs": outside, "rel": "../outside", "dir/up": "../../outside/secret"} {
		if err := os.Symlink(target, filepath.Join(src, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	before := treehash.Of(t, outside)

	ws := filepath.Join(box, "ws")
	if err := copyTree(src, ws); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(filepath.Join(ws, "dir/up")); err != nil || got != "../../outside/secret" {
		t.Errorf("dir/up = %q, %v; want the link as it is", got, err)
	}
	if fi, err := os.Lstat(filepath.Join(ws, "run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("run.sh lost its executable bit: %v, %v", fi, err)
	}
	if after := treehash.Of(t, outside); after != before {
		t.Error("the copy changed the directory the snapshot's links point to")
	}
}

// A workspace directory left with a link where the snapshot has a
// directory is not written through.
func TestWorkspaceCopyRefusesSymlinkInPlaceOfDirectory(t *testing.T) {
	t.Parallel()
	box := t.TempDir()
	outside := filepath.Join(box, "outside")
	write(t, filepath.Join(outside, "keep"), "host data", 0o644)
	src := filepath.Join(box, "snap")
	write(t, filepath.Join(src, "d/planted"), "planted", 0o644)
	ws := filepath.Join(box, "ws")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(ws, "d")); err != nil {
		t.Fatal(err)
	}
	before := treehash.Of(t, outside)
	if err := copyTree(src, ws); err == nil {
		t.Error("the copy went through a symlink in the workspace")
	}
	if after := treehash.Of(t, outside); after != before {
		t.Error("the copy wrote outside the workspace")
	}
}
