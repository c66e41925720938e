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
	"sync"

	"github.com/deltaci/deltaci/internal/core"
)

// WorkTree is what git said about a working tree at one moment: its HEAD,
// its branch, its uncommitted changes (git status) and its index (git
// ls-files), read by two git processes at once. It lets a local run read
// them once for its plan and then check that its snapshot still holds what
// the plan read.
//
// Paths git does not compare with the working tree, Flagged, count as the
// index holds them, whatever is on disk there: the listing (WalkTree) gives
// their index entry and Snapshot writes their content from the index. They
// are the files marked assume-unchanged or skip-worktree, and so every file
// that sparse checkout leaves out. Every other file counts as the working
// tree holds it.
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
	// Changes are the dirty paths, as DirtyPaths lists them. A flagged
	// path is among them only when its index entry differs from HEAD's
	// (a staged change git status shows).
	Changes []Change
	// Flagged are the files of the index, sorted, that git does not compare
	// with the working tree: marked assume-unchanged (git ls-files -v shows
	// a lowercase letter) or skip-worktree (S), which is how sparse
	// checkout, cone or not, leaves files out.
	Flagged []string

	// index is the output of git ls-files --stage -v -z.
	index []byte
	// flagged holds the index entry ("<tag> <mode> <id> <stage>") of each
	// flagged path.
	flagged map[string]string
	// read holds, per path hashed through HashObjects, what it held then;
	// copied, what Snapshot copied of the same paths.
	read, copied map[string]fingerprint
}

// ReadWorkTree reads the working tree whose top level is top (as TopLevel
// returns it): git status and git ls-files, at once.
func ReadWorkTree(ctx context.Context, top string) (*WorkTree, error) {
	var (
		index    []byte
		indexErr error
		reading  sync.WaitGroup
	)
	reading.Go(func() { index, indexErr = run(ctx, top, "ls-files", "--stage", "-v", "-z") })
	w, err := readStatus(ctx, top)
	reading.Wait()
	if err != nil {
		return nil, err
	}
	if indexErr != nil {
		return nil, indexErr
	}
	if err := w.parseIndex(index); err != nil {
		return nil, err
	}
	return w, nil
}

// readStatus runs git status once in top: a WorkTree without its index.
func readStatus(ctx context.Context, top string) (*WorkTree, error) {
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

// indexRecords yields the records of git ls-files --stage -v -z: "<tag>
// <mode> <id> <stage>\t<path>", split as path and meta ("<tag> <mode>
// <id> <stage>"), both slices of index. An unmerged path has one record
// per stage.
func indexRecords(index []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for len(index) > 0 {
			rec := index
			if i := bytes.IndexByte(index, 0); i >= 0 {
				rec, index = index[:i], index[i+1:]
			} else {
				index = nil
			}
			meta, path, ok := bytes.Cut(rec, []byte{'\t'})
			if !ok {
				meta, path = rec, nil // parseIndex refuses it
			}
			if !yield(path, meta) {
				return
			}
		}
	}
}

// indexMeta is the parsed meta of an index record.
type indexMeta struct {
	tag   byte
	mode  uint32
	id    []byte
	stage byte
}

func parseIndexMeta(meta []byte) (indexMeta, bool) {
	// "<tag> <mode> <id> <stage>"; the tag is one letter.
	if len(meta) < 2 || meta[1] != ' ' {
		return indexMeta{}, false
	}
	mode, rest, ok1 := bytes.Cut(meta[2:], []byte{' '})
	id, stage, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || len(mode) == 0 || len(mode) > 7 || len(id) == 0 || len(stage) != 1 || stage[0] < '0' || stage[0] > '3' {
		return indexMeta{}, false
	}
	m := indexMeta{tag: meta[0], id: id, stage: stage[0]}
	for _, c := range mode {
		if c < '0' || c > '7' {
			return indexMeta{}, false
		}
		m.mode = m.mode<<3 | uint32(c-'0')
	}
	return m, true
}

// isFlagged reports whether git ls-files -v's tag says that git does not
// compare the file with the working tree: lowercase for assume-unchanged,
// S for skip-worktree.
func isFlagged(tag byte) bool { return tag == 'S' || (tag >= 'a' && tag <= 'z') }

// parseIndex checks the listing and finds the flagged paths. Unmerged
// entries are never flagged: git status reports them, and their content is
// the working tree's.
func (w *WorkTree) parseIndex(index []byte) error {
	w.index, w.flagged, w.Flagged = index, map[string]string{}, nil
	for path, meta := range indexRecords(index) {
		m, ok := parseIndexMeta(meta)
		if !ok || len(path) == 0 {
			return core.E(core.KindInternal, "git ls-files", "unexpected entry %.200q", string(meta)+"\t"+string(path))
		}
		if m.stage == '0' && isFlagged(m.tag) {
			p := string(path)
			w.flagged[p] = string(meta)
			w.Flagged = append(w.Flagged, p)
		}
	}
	return nil
}

// OnDisk lists the changes whose content is the working tree's: Changes
// without the flagged paths, which count as the index holds them.
func (w *WorkTree) OnDisk() []Change {
	if len(w.flagged) == 0 {
		return w.Changes
	}
	var out []Change
	for _, c := range w.Changes {
		if _, ok := w.flagged[c.Path]; !ok {
			out = append(out, c)
		}
	}
	return out
}

// WalkTree calls fn for every file of the index, in the package's
// WalkTree order and form. At every path that is not among Changes the
// index holds what HEAD does (git status compared them), so this is HEAD's
// tree with the index's version of dirty paths, which the caller replaces
// by the working tree's, except for the flagged ones. An unmerged path is
// listed once, as its stage 2 (ours, HEAD's side) when it has one. Before
// the first commit it lists what is staged.
func (w *WorkTree) WalkTree(ctx context.Context, fn func(TreeEntry) error) error {
	n := 0
	var buf []byte
	for path, meta := range indexRecords(w.index) {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return core.Wrap(core.KindCanceled, "git ls-files", ctx.Err())
		}
		m, _ := parseIndexMeta(meta) // parseIndex checked them
		if m.stage == '1' || m.stage == '3' {
			continue
		}
		// One allocation for both strings, as WalkTree does.
		buf = append(append(buf[:0], m.id...), path...)
		both := string(buf)
		e := TreeEntry{Path: both[len(m.id):], Mode: m.mode, ObjectID: both[:len(m.id)], Type: TypeBlob}
		if m.mode == ModeGitlink {
			e.Type = TypeCommit
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// fingerprint is what a working tree file held when it was hashed: the
// SHA-256 of its bytes (of its target for a symlink) and its kind.
type fingerprint struct {
	sum  [sha256.Size]byte
	kind entryKind
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
// does, from what w read, without asking git to list it again: the files
// of the index and the changed paths, as the working tree holds them,
// except the flagged files, which git checkout-index writes from the index
// (one git process, when there are any). It remembers what it copied of
// each file hashed through w.HashObjects, for Changed.
func (w *WorkTree) Snapshot(ctx context.Context, dest string) (SnapshotInfo, error) {
	w.copied = map[string]fingerprint{}
	listed := func(yield func(string) bool) {
		for path := range indexRecords(w.index) {
			if _, ok := w.flagged[string(path)]; !ok && !yield(string(path)) {
				return
			}
		}
		for _, c := range w.Changes {
			if _, ok := w.flagged[c.Path]; !ok && !yield(c.Path) {
				return
			}
		}
	}
	var fromIndex []string
	for _, p := range w.Flagged {
		m, _ := parseIndexMeta([]byte(w.flagged[p]))
		// A submodule is not copied, and neither is our own state.
		if m.mode != ModeGitlink && p != StateDir && !strings.HasPrefix(p, StateDir+"/") {
			fromIndex = append(fromIndex, p)
		}
	}
	return snapshot(ctx, w.Top, dest, len(w.Changes) > 0, listed, fromIndex, w.read, w.copied)
}

// Changed reads the working tree again, after Snapshot, and lists what
// differs from what w read: paths whose status changed (a file edited,
// created or deleted since), flagged paths whose index entry or flag
// changed (the snapshot wrote them from the index), and files hashed
// through w.HashObjects that the snapshot copied with other bytes or
// another kind, or did not copy. HeadMoved reports a new HEAD or branch. A
// change undone again before this check goes unseen, unless it is in a
// hashed file: the copy itself is compared.
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
	for p, e := range w.flagged {
		if now.flagged[p] != e {
			changed[p] = true
		}
	}
	for p := range now.flagged {
		if _, ok := w.flagged[p]; !ok {
			changed[p] = true
		}
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
