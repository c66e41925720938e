package gitx_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

// TestCheckoutFilesOnlyThose: from a bare mirror, only the entries asked
// for are written, as a checkout writes them (filters of the commit's
// attributes applied, executable bit, symlink, submodule directory), and
// nothing else: no other file, no .gitattributes, no .git.
func TestCheckoutFilesOnlyThose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)
	r.write(".gitattributes", "*.txt ident\n", 0o644)
	r.write("src/a.txt", "a $Id$\n", 0o644)
	r.write("src/run.sh", "#!/bin/sh\necho run\n", 0o755)
	r.write("src/other.txt", "not asked for\n", 0o644)
	r.write("secret/key.txt", "never written\n", 0o644)
	r.symlink("a.txt", "src/link")
	r.commitAll("files")
	// A submodule entry without a submodule checkout, as a mirror holds it.
	r.git("update-index", "--add", "--cacheinfo", "160000,"+trimNL(r.git("rev-parse", "HEAD"))+",src/sub")
	r.git("-c", "commit.gpgsign=false", "commit", "-q", "-m", "submodule")
	head := trimNL(r.git("rev-parse", "HEAD"))
	mirror := filepath.Join(t.TempDir(), "m.git")
	r.git("clone", "-q", "--mirror", r.dir, mirror)

	tree, err := gitx.LsTree(ctx, mirror, head)
	if err != nil {
		t.Fatal(err)
	}
	pick := func(paths ...string) []gitx.TreeEntry {
		var out []gitx.TreeEntry
		for _, e := range tree {
			if slices.Contains(paths, e.Path) {
				out = append(out, e)
			}
		}
		if len(out) != len(paths) {
			t.Fatalf("picked %v of %v", out, paths)
		}
		return out
	}
	dest := filepath.Join(t.TempDir(), "ws")
	err = gitx.CheckoutFiles(ctx, mirror, dest, pick("src/a.txt", "src/run.sh", "src/link", "src/sub"), pick(".gitattributes"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		got = append(got, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".", "src", "src/a.txt", "src/link", "src/run.sh", "src/sub"}
	if !slices.Equal(got, want) {
		t.Errorf("workspace holds %v, want %v", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "src/a.txt")); !strings.HasPrefix(string(b), "a $Id: ") {
		t.Errorf("src/a.txt = %q: the ident filter of .gitattributes was not applied", b)
	}
	if fi, err := os.Stat(filepath.Join(dest, "src/run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("src/run.sh not executable: %v %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(dest, "src/link")); err != nil || l != "a.txt" {
		t.Errorf("src/link = %q, %v; want a link to a.txt", l, err)
	}
	if fi, err := os.Lstat(filepath.Join(dest, "src/sub")); err != nil || !fi.IsDir() {
		t.Errorf("src/sub: %v %v; want an empty directory", fi, err)
	}
	if _, err := os.Stat(dest + ".index"); !os.IsNotExist(err) {
		t.Errorf("the index beside the workspace is left: %v", err)
	}

	// A destination that is not empty is refused.
	if err := gitx.CheckoutFiles(ctx, mirror, dest, pick("src/other.txt"), nil); core.KindOf(err) != core.KindInvalid {
		t.Errorf("checkout into a full directory: %v, want KindInvalid", err)
	}
	// An entry that is not in the repository fails.
	bad := []gitx.TreeEntry{{Path: "x", Mode: gitx.ModeFile, Type: gitx.TypeBlob, ObjectID: strings.Repeat("1", 40)}}
	if err := gitx.CheckoutFiles(ctx, mirror, filepath.Join(t.TempDir(), "ws"), bad, nil); err == nil {
		t.Error("checkout of a blob the repository does not have: no error")
	}
	bad[0].ObjectID = "HEAD"
	if err := gitx.CheckoutFiles(ctx, mirror, filepath.Join(t.TempDir(), "ws"), bad, nil); core.KindOf(err) != core.KindInvalid {
		t.Errorf("checkout of an entry whose id is a revision: %v, want KindInvalid", err)
	}
}
