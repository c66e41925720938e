package gitx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// Object types of tree entries.
const (
	TypeBlob   = "blob"   // a file or a symlink
	TypeCommit = "commit" // a submodule (gitlink)
	TypeTree   = "tree"   // a directory; LsTree and WalkTree recurse instead
)

// Git's file modes, as stored in trees.
const (
	ModeFile       uint32 = 0o100644
	ModeExecutable uint32 = 0o100755
	ModeSymlink    uint32 = 0o120000
	ModeGitlink    uint32 = 0o160000
)

// TreeEntry is one file of a commit's tree.
type TreeEntry struct {
	// Path is relative to the top of the repository, with slashes, exactly
	// as git stores it (any bytes but NUL).
	Path string
	// Mode is git's mode, such as ModeFile or ModeExecutable.
	Mode uint32
	// Type is TypeBlob, or TypeCommit for a submodule.
	Type string
	// ObjectID is the hex id of the blob (or the submodule's commit).
	ObjectID string
}

// LsTree lists every file of commit (or tree) rev recursively, submodules
// included as TypeCommit entries, in git's order: bytewise by path. An
// unknown rev is a KindNotFound error. Use WalkTree to look at entries
// without keeping them all.
func LsTree(ctx context.Context, dir, rev string) ([]TreeEntry, error) {
	var entries []TreeEntry
	err := WalkTree(ctx, dir, rev, func(e TreeEntry) error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// WalkTree calls fn for every file of rev as LsTree lists it, while git is
// still listing, so memory stays bounded whatever the size of the tree. An
// error from fn stops the walk and is returned.
func WalkTree(ctx context.Context, dir, rev string, fn func(TreeEntry) error) error {
	const op = "git ls-tree"
	var fnErr error
	err := stream(ctx, dir, nil, func(r *bufio.Reader) error {
		var long []byte
		for {
			rec, err := readRecord(r, 0, &long)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return core.Wrap(core.KindInternal, op, err)
			}
			e, err := parseTreeEntry(rec)
			if err != nil {
				return err
			}
			if err := fn(e); err != nil {
				fnErr = err
				return err
			}
		}
	}, "ls-tree", "-r", "-z", "--full-tree", "--end-of-options", rev)
	if err != nil && fnErr == nil && exitCode(err) == 128 && strings.Contains(stderrOf(err), "Not a valid object") {
		return &core.Error{Kind: core.KindNotFound, Op: op, Msg: stderrOf(err), Err: err}
	}
	return err
}

// parseTreeEntry reads "<mode> SP <type> SP <object> TAB <path>".
func parseTreeEntry(rec []byte) (TreeEntry, error) {
	meta, _, ok := bytes.Cut(rec, []byte{'\t'})
	if !ok {
		return TreeEntry{}, core.E(core.KindInternal, "git ls-tree", "unexpected entry %.200q", rec)
	}
	mode, rest, ok1 := bytes.Cut(meta, []byte{' '})
	typ, id, ok2 := bytes.Cut(rest, []byte{' '})
	m, err := strconv.ParseUint(string(mode), 8, 32)
	if !ok1 || !ok2 || err != nil || len(id) == 0 {
		return TreeEntry{}, core.E(core.KindInternal, "git ls-tree", "unexpected entry %.200q", rec)
	}
	// One allocation for both strings: a tree of 100,000 files makes
	// 100,000 of these.
	both := string(rec[len(meta)-len(id):])
	e := TreeEntry{Path: both[len(id)+1:], Mode: uint32(m), ObjectID: both[:len(id)]}
	// Constants, so that 100,000 entries do not carry 100,000 copies.
	switch string(typ) {
	case TypeBlob:
		e.Type = TypeBlob
	case TypeCommit:
		e.Type = TypeCommit
	case TypeTree:
		e.Type = TypeTree
	default:
		e.Type = string(typ)
	}
	return e, nil
}
