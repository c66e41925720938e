package gitx

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// CheckoutFiles writes files, entries of a commit's tree in the repository
// at dir (a bare mirror will do), into dest as a checkout of that commit
// would write them, and nothing else: no .git, no other file of the tree.
// Files go through the repository's filters (line endings, ident, smudge)
// as the commit's .gitattributes files, given as attributes, say, whether
// or not files holds them; symlinks are written as links, executables keep
// their bit, and a submodule is an empty directory.
//
// dest must be empty or not exist; the index git needs meanwhile is a file
// beside it, dest+".index", removed afterwards. On error dest may hold a
// partial checkout, which the caller removes.
func CheckoutFiles(ctx context.Context, dir, dest string, files, attributes []TreeEntry) error {
	const op = "checkout files"
	abs, err := filepath.Abs(dest)
	if err != nil {
		return core.Wrap(core.KindInternal, op, err)
	}
	if err := prepareDest(abs); err != nil {
		return &core.Error{Kind: core.KindInvalid, Op: op, Msg: "destination " + dest, Err: err}
	}
	if len(files) == 0 {
		return nil
	}
	index := abs + ".index"
	_ = os.Remove(index)
	defer os.Remove(index)
	env := []string{"GIT_INDEX_FILE=" + index}

	// The index holds the files and the attributes; only the files are
	// checked out.
	var info, paths bytes.Buffer
	seen := make(map[string]bool, len(files)+len(attributes))
	for _, set := range [][]TreeEntry{files, attributes} {
		for _, e := range set {
			if seen[e.Path] {
				continue
			}
			seen[e.Path] = true
			if e.Path == "" || strings.ContainsRune(e.Path, 0) || !isHexID(e.ObjectID) {
				return core.E(core.KindInvalid, op, "bad tree entry %s %s", strconv.Quote(e.Path), strconv.Quote(e.ObjectID))
			}
			typ := TypeBlob
			if e.Mode == ModeGitlink {
				typ = TypeCommit
			}
			info.WriteString(strconv.FormatUint(uint64(e.Mode), 8) + " " + typ + " " + e.ObjectID + "\t" + e.Path)
			info.WriteByte(0)
		}
	}
	for _, e := range files {
		paths.WriteString(e.Path)
		paths.WriteByte(0)
	}
	if _, err := runInput(ctx, dir, env, &info, "update-index", "-z", "--index-info"); err != nil {
		return err
	}
	if _, err := runInput(ctx, dir, env, &paths, "--work-tree="+abs, "checkout-index", "-z", "--stdin"); err != nil {
		return err
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return core.Wrap(core.KindInternal, op, err)
	}
	defer root.Close()
	for _, e := range files {
		// git names a path it could not write on stderr, and may still exit 0.
		if _, err := root.Lstat(filepath.FromSlash(e.Path)); err != nil {
			return core.E(core.KindInternal, op, "%s was not written: %v", strconv.Quote(e.Path), err)
		}
	}
	return nil
}
