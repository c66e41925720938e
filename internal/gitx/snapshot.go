package gitx

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/deltaci/deltaci/internal/core"
)

// SnapshotInfo describes a snapshot made by Snapshot.
type SnapshotInfo struct {
	// Root is the top level of the working tree that was copied.
	Root string
	// Files counts the regular files and symlinks copied.
	Files int
	// Bytes counts the content of the regular files copied.
	Bytes int64
	// Skipped counts listed paths that exist but were not copied:
	// submodules, nested repositories, and special files such as FIFOs.
	Skipped int
	// Dirty reports that the tree differs from HEAD: changes, staged or
	// not, or untracked files that are not ignored.
	Dirty bool
}

// Snapshot copies the working tree that contains repoDir, as it is on disk,
// into dest, a plain directory (no .git) where jobs can run and write freely.
//
// It copies every tracked file that still exists, with its current content,
// and every untracked file that is not ignored. Tracked files deleted from the
// working tree, ignored files, .git and submodules are left out. The
// executable bit is kept and other permissions follow the umask, as in a git
// checkout; symlinks are copied as links, never followed. Files are copied,
// never hard-linked, and the source tree and its index are never written.
//
// Files git does not compare with the working tree (assume-unchanged,
// skip-worktree, and so those sparse checkout leaves out; see WorkTree) are
// written as the index holds them instead, as a checkout would, even when
// they are absent from the working tree.
//
// dest must be empty or not exist. On error dest may hold a partial copy,
// which the caller removes. Outside a git working tree the error is
// KindInvalid, as from TopLevel.
func Snapshot(ctx context.Context, repoDir, dest string) (SnapshotInfo, error) {
	root, err := TopLevel(ctx, repoDir)
	if err != nil {
		return SnapshotInfo{}, err
	}
	w, err := ReadWorkTree(ctx, root)
	if err != nil {
		return SnapshotInfo{}, err
	}
	return w.Snapshot(ctx, dest)
}

// snapshot is Snapshot of the working tree at root, whose dirtiness the
// caller knows. listed lists the files to copy from the working tree
// (tracked and untracked, in any order, repeats allowed); fromIndex, the
// files to write from the index. For each path of want, copied regular
// file or symlink, it sets in got the fingerprint of what it copied.
func snapshot(ctx context.Context, root, dest string, dirty bool, listed iter.Seq[string], fromIndex []string, want, got map[string]fingerprint) (SnapshotInfo, error) {
	const op = "git snapshot"
	if err := prepareDest(dest); err != nil {
		return SnapshotInfo{}, &core.Error{Kind: core.KindInvalid, Op: op, Msg: "destination " + dest, Err: err}
	}

	// Every read goes through a root at the working tree and every write
	// through one at dest: a link, even one made while copying, can lead
	// neither outside.
	src, err := os.OpenRoot(root)
	if err != nil {
		return SnapshotInfo{}, &core.Error{Kind: core.KindInternal, Op: op, Msg: "reading working tree", Err: err}
	}
	defer src.Close()
	dst, err := os.OpenRoot(dest)
	if err != nil {
		return SnapshotInfo{}, &core.Error{Kind: core.KindInvalid, Op: op, Msg: "destination " + dest, Err: err}
	}
	defer dst.Close()

	info := SnapshotInfo{Root: root, Dirty: dirty}
	// First, into the empty dest: the copy that follows creates nothing
	// over what git wrote, and fails on a path that both would write.
	if len(fromIndex) > 0 {
		if info.Files, info.Bytes, err = checkoutIndex(ctx, root, dest, dst, fromIndex); err != nil {
			return SnapshotInfo{}, err
		}
	}
	entries, skipped, err := plan(src, listed)
	if err != nil {
		return SnapshotInfo{}, &core.Error{Kind: core.KindInternal, Op: op, Msg: "reading working tree", Err: err}
	}
	info.Skipped = skipped
	if err := makeDirs(dst, entries); err != nil {
		return SnapshotInfo{}, &core.Error{Kind: core.KindInternal, Op: op, Msg: "creating directories", Err: err}
	}
	copied, n, err := copyAll(ctx, src, dst, entries, want, got)
	if err != nil {
		if ctx.Err() != nil {
			return SnapshotInfo{}, core.Wrap(core.KindCanceled, op, ctx.Err())
		}
		return SnapshotInfo{}, &core.Error{Kind: core.KindInternal, Op: op, Msg: "copying files", Err: err}
	}
	info.Files += copied
	info.Bytes += n
	return info, nil
}

// checkoutIndex writes paths, files of the index of the working tree at
// root, into dest (opened as dst) as a checkout would: through the
// repository's filters, symlinks as links, the executable bit kept, also
// the files sparse checkout leaves out of the working tree. With a prefix,
// git checkout-index writes neither the working tree nor the index. It
// returns the number of files written and their bytes.
func checkoutIndex(ctx context.Context, root, dest string, dst *os.Root, paths []string) (int, int64, error) {
	const op = "git checkout-index"
	abs, err := filepath.Abs(dest)
	if err != nil {
		return 0, 0, core.Wrap(core.KindInternal, op, err)
	}
	var stdin bytes.Buffer
	for _, p := range paths {
		stdin.WriteString(p)
		stdin.WriteByte(0)
	}
	err = stream(ctx, root, &stdin, func(r *bufio.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	}, "checkout-index", "-z", "--stdin", "--ignore-skip-worktree-bits", "--prefix="+abs+string(filepath.Separator))
	if err != nil {
		return 0, 0, err
	}
	var n int64
	for _, p := range paths {
		// git names a path it could not write on stderr, and may still exit 0.
		fi, err := dst.Lstat(filepath.FromSlash(p))
		if err != nil {
			return 0, 0, core.E(core.KindInternal, op, "%s was not written: %v", strconv.Quote(p), err)
		}
		if fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return len(paths), n, nil
}

// prepareDest creates dest, or checks that the existing one is an empty
// directory, so that a snapshot never mixes with or overwrites other files.
func prepareDest(dest string) error {
	f, err := os.Open(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(dest, 0o777)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return err // also "not a directory"
	case len(names) > 0:
		return errors.New("is not empty")
	}
	return nil
}

type entryKind int

const (
	regularFile entryKind = iota
	executableFile
	symlink
)

// StateDir is the directory, at the top of a repository, where deltaci
// keeps its state; snapshots leave it out.
const StateDir = ".deltaci"

// entry is one path to copy, relative to the root, with slashes.
type entry struct {
	rel  string
	kind entryKind
}

// plan turns the NUL-separated listing into what to copy. A tracked path
// that is gone from disk, or that sits beyond a symlink (which git does not
// follow either), is left out; directories (submodules, nested repositories)
// and special files count as skipped.
func plan(root *os.Root, listed iter.Seq[string]) ([]entry, int, error) {
	var (
		entries []entry
		skipped int
		seen    = map[string]bool{}
		realDir = map[string]bool{".": true}
	)
	// isRealDir reports whether dir exists as a directory, with no symlink on
	// the way to it from the root.
	var isRealDir func(dir string) bool
	isRealDir = func(dir string) bool {
		if ok, cached := realDir[dir]; cached {
			return ok
		}
		ok := isRealDir(path.Dir(dir))
		if ok {
			fi, err := root.Lstat(filepath.FromSlash(dir))
			ok = err == nil && fi.IsDir()
		}
		realDir[dir] = ok
		return ok
	}

	for rel := range listed {
		// Unmerged paths are listed once per stage.
		if rel == "" || seen[rel] {
			continue
		}
		seen[rel] = true
		// Delta CI's own state (the database it is writing right now) is
		// never part of a job's workspace, even where it is not ignored.
		if rel == StateDir || strings.HasPrefix(rel, StateDir+"/") {
			continue
		}
		if !isRealDir(path.Dir(rel)) {
			continue
		}
		fi, err := root.Lstat(filepath.FromSlash(rel))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue // deleted in the working tree
		}
		if err != nil {
			return nil, 0, err
		}
		switch mode := fi.Mode(); {
		case mode.IsRegular() && mode&0o111 != 0:
			entries = append(entries, entry{rel, executableFile})
		case mode.IsRegular():
			entries = append(entries, entry{rel, regularFile})
		case mode&fs.ModeSymlink != 0:
			entries = append(entries, entry{rel, symlink})
		default:
			skipped++
		}
	}
	return entries, skipped, nil
}

// makeDirs creates every parent directory up front, so that copying can run
// in parallel without racing on them.
func makeDirs(dest *os.Root, entries []entry) error {
	dirs := map[string]bool{}
	for _, e := range entries {
		dirs[path.Dir(e.rel)] = true
	}
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	slices.Sort(sorted)
	for _, d := range sorted {
		if err := dest.MkdirAll(filepath.FromSlash(d), 0o777); err != nil {
			return err
		}
	}
	return nil
}

// copyAll copies entries from root to dest with a few workers: a snapshot of
// a large tree is bound by per-file syscalls, not by bandwidth. It returns
// the number of entries copied and their bytes.
func copyAll(ctx context.Context, root, dest *os.Root, entries []entry, want, got map[string]fingerprint) (int, int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan entry)
	var (
		mu     sync.Mutex
		files  int
		nbytes int64
		wg     sync.WaitGroup
	)
	for range min(8, 2*runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for e := range work {
				var sum hash.Hash
				if _, ok := want[e.rel]; ok {
					sum = sha256.New()
				}
				n, ok, err := copyEntry(root, dest, e, sum)
				if err != nil {
					cancel(fmt.Errorf("%s: %w", strconv.Quote(e.rel), err))
					return
				}
				if ok {
					mu.Lock()
					files++
					nbytes += n
					if sum != nil {
						f := fingerprint{kind: e.kind}
						copy(f.sum[:], sum.Sum(nil))
						got[e.rel] = f
					}
					mu.Unlock()
				}
			}
		})
	}
feed:
	for _, e := range entries {
		select {
		case work <- e:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return 0, 0, err
	}
	return files, nbytes, nil
}

// copyEntry copies one entry, and writes what it copied to sum unless it
// is nil. ok is false when the file vanished since it was listed: the user
// may be editing while we copy.
func copyEntry(root, dest *os.Root, e entry, sum hash.Hash) (n int64, ok bool, err error) {
	name := filepath.FromSlash(e.rel)
	if e.kind == symlink {
		target, err := root.Readlink(name)
		if errors.Is(err, fs.ErrNotExist) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
		if sum != nil {
			sum.Write([]byte(target))
		}
		return 0, true, dest.Symlink(target, name)
	}

	// Through the root: a file swapped for a symlink since listing cannot
	// pull in content from outside the tree.
	in, err := root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer in.Close()
	perm := fs.FileMode(0o666)
	if e.kind == executableFile {
		perm = 0o777
	}
	out, err := dest.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return 0, false, err
	}
	var w io.Writer = out
	if sum != nil {
		w = io.MultiWriter(out, sum)
	}
	n, err = io.Copy(w, in) // copy_file_range where the kernel has it, without sum
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err == nil, err
}
