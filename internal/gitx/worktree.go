package gitx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"io/fs"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// WorkTree is what one git status said about a working tree: its HEAD, its
// branch and its uncommitted changes. It lets a local run read them once
// (one git process) for its plan and then check that its snapshot still
// holds what the plan read.
//
// A WorkTree is not safe for concurrent use.
type WorkTree struct {
	// Top is the top level of the working tree.
	Top string
	// Head is the commit HEAD points to, "" before the first commit.
	Head string
	// Branch is the short name of the checked-out branch (also one without
	// commits yet), "" when HEAD is detached.
	Branch string
	// Changes are the dirty paths, as DirtyPaths lists them.
	Changes []Change

	// read holds, per path hashed through HashObjects, what it held then;
	// copied, what Snapshot copied of the same paths.
	read, copied map[string]fingerprint
	// listed holds the paths of HEAD's tree once WalkTree listed them all.
	listed []string
}

// WalkTree is the package's WalkTree of w's HEAD (nothing before the first
// commit). Once it has listed the whole tree, Snapshot copies the files of
// that listing and the changed paths, which are the files git would list
// (the index differs from HEAD only at changed paths), without asking git
// again.
func (w *WorkTree) WalkTree(ctx context.Context, fn func(TreeEntry) error) error {
	w.listed = nil
	if w.Head == "" {
		return nil
	}
	var paths []string
	err := WalkTree(ctx, w.Top, w.Head, func(e TreeEntry) error {
		paths = append(paths, e.Path)
		return fn(e)
	})
	if err != nil {
		return err
	}
	w.listed = paths
	return nil
}

// fingerprint is what a working tree file held when it was hashed: the
// SHA-256 of its bytes (of its target for a symlink) and its kind.
type fingerprint struct {
	sum  [sha256.Size]byte
	kind entryKind
}

// ReadWorkTree runs git status once in top, the top level of a working tree
// (as TopLevel returns it).
func ReadWorkTree(ctx context.Context, top string) (*WorkTree, error) {
	out, err := run(ctx, top, "-c", "status.relativePaths=false", "status", "--porcelain=v2", "--branch", "-z",
		"--no-renames", "--untracked-files=all", "--ignore-submodules=all", "--ignored=no",
		"--", ".", ":(exclude)"+StateDir)
	if err != nil {
		return nil, err
	}
	w := &WorkTree{Top: top}
	if err := w.parse(out); err != nil {
		return nil, err
	}
	return w, nil
}

// parse reads `git status --porcelain=v2 --branch -z --no-renames`: headers
// "# branch.oid X" and "# branch.head Y", then one record per path: "1 XY
// sub mH mI mW hH hI path" for a change, "u XY sub m1 m2 m3 mW h1 h2 h3
// path" for a conflict, "? path" for an untracked file. X compares the
// index with HEAD and Y the working tree with the index; "." is no change.
func (w *WorkTree) parse(out []byte) error {
	index := map[string]int{} // a path can appear twice: "D." and "?"
	recs := bytes.Split(out, []byte{0})
	for i := 0; i < len(recs); i++ {
		rec := string(recs[i])
		bad := func() error {
			return core.E(core.KindInternal, "git status", "unexpected record %.100q", rec)
		}
		if rec == "" {
			continue
		}
		var s ChangeStatus
		var path string
		switch rec[0] {
		case '#':
			if v, ok := strings.CutPrefix(rec, "# branch.oid "); ok && v != "(initial)" {
				w.Head = v
			} else if v, ok := strings.CutPrefix(rec, "# branch.head "); ok && v != "(detached)" {
				w.Branch = v
			}
			continue
		case '?':
			if len(rec) < 3 {
				return bad()
			}
			s, path = Added, rec[2:]
		case '1', '2', 'u':
			fields := map[byte]int{'1': 8, '2': 9, 'u': 10}[rec[0]]
			parts := strings.SplitN(rec, " ", fields+1)
			if len(parts) != fields+1 || len(parts[1]) != 2 {
				return bad()
			}
			path = parts[fields]
			if rec[0] == '2' {
				i++ // a rename's original path, in the next record
			}
			if s = statusOf(rec[0], parts[1][0], parts[1][1]); s == "" {
				continue
			}
		default:
			return bad()
		}
		if strings.HasSuffix(path, "/") || path == StateDir || strings.HasPrefix(path, StateDir+"/") {
			continue // a nested repository, or our own state
		}
		if i, seen := index[path]; seen {
			// Deleted from the index but back on disk as an untracked file.
			w.Changes[i].Status = Modified
			continue
		}
		index[path] = len(w.Changes)
		w.Changes = append(w.Changes, Change{Status: s, Path: path})
	}
	return nil
}

// statusOf is the change a status record says, "" when there is none
// relative to HEAD.
func statusOf(rec, x, y byte) ChangeStatus {
	switch {
	case rec == 'u' || x == 'U' || y == 'U' || (x == 'A' && y == 'A') || (x == 'D' && y == 'D'):
		return Unmerged
	case x == 'A' && y == 'D':
		return "" // added to the index, then deleted: nothing relative to HEAD
	case x == 'A':
		return Added
	case x == 'D' || y == 'D':
		return Deleted
	case x == 'T' || y == 'T':
		return TypeChanged
	}
	return Modified
}

// HashObjects is the package's HashObjects for paths of w, and it
// remembers what each file held, for Snapshot to compare with its copy.
func (w *WorkTree) HashObjects(ctx context.Context, paths []string) (map[string]string, error) {
	if w.read == nil {
		w.read = map[string]fingerprint{}
	}
	// Read before git hashes: a file that changes after this point differs
	// in the copy, which is taken later still.
	for _, p := range paths {
		f, err := fingerprintOf(filepath.Join(w.Top, filepath.FromSlash(p)))
		if err != nil {
			return nil, core.Wrap(core.KindInternal, "git hash-object", err)
		}
		w.read[p] = f
	}
	return hashObjects(ctx, w.Top, paths)
}

func fingerprintOf(name string) (fingerprint, error) {
	fi, err := os.Lstat(name)
	if err != nil {
		return fingerprint{}, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(name)
		return fingerprint{sum: sha256.Sum256([]byte(target)), kind: symlink}, err
	}
	f, err := os.Open(name)
	if err != nil {
		return fingerprint{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fingerprint{}, err
	}
	fp := fingerprint{kind: regularFile}
	if fi.Mode()&0o111 != 0 {
		fp.kind = executableFile // as the snapshot tells them apart
	}
	copy(fp.sum[:], h.Sum(nil))
	return fp, nil
}

// Snapshot copies the working tree into dest as the package's Snapshot
// does, with no git process after WalkTree (else one), and remembers what it copied of each file
// hashed through w.HashObjects, for Changed.
func (w *WorkTree) Snapshot(ctx context.Context, dest string) (SnapshotInfo, error) {
	w.copied = map[string]fingerprint{}
	var listed iter.Seq[string]
	if w.listed != nil {
		listed = func(yield func(string) bool) {
			for _, p := range w.listed {
				if !yield(p) {
					return
				}
			}
			for _, c := range w.Changes {
				if !yield(c.Path) {
					return
				}
			}
		}
	}
	return snapshot(ctx, w.Top, dest, len(w.Changes) > 0, listed, w.read, w.copied)
}

// Changed runs git status again, after Snapshot, and lists what differs
// from what w read: paths whose status changed (a file edited, created or
// deleted since), and files hashed through w.HashObjects that the snapshot
// copied with other bytes or another kind, or did not copy. HeadMoved
// reports a new HEAD or branch. A change undone again before this check
// goes unseen, unless it is in a hashed file: the copy itself is compared.
func (w *WorkTree) Changed(ctx context.Context) (TreeChange, error) {
	now, err := ReadWorkTree(ctx, w.Top)
	if err != nil {
		return TreeChange{}, err
	}
	changed := map[string]bool{}
	before := map[string]ChangeStatus{}
	for _, c := range w.Changes {
		before[c.Path] = c.Status
	}
	for _, c := range now.Changes {
		if s, ok := before[c.Path]; !ok || s != c.Status {
			changed[c.Path] = true
		}
		delete(before, c.Path)
	}
	for p := range before {
		changed[p] = true
	}
	for p, f := range w.read {
		if g, ok := w.copied[p]; !ok || g != f {
			changed[p] = true
		}
	}
	return TreeChange{
		HeadMoved: now.Head != w.Head || now.Branch != w.Branch,
		Paths:     slices.Sorted(maps.Keys(changed)),
	}, nil
}

// TreeChange is what changed in a working tree between two moments.
type TreeChange struct {
	HeadMoved bool
	// Paths are the changed paths, sorted.
	Paths []string
}

// None reports that nothing changed.
func (c TreeChange) None() bool { return !c.HeadMoved && len(c.Paths) == 0 }
