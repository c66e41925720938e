package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/core"
)

// PullResult describes a finished pull.
type PullResult struct {
	Manifest digest.Digest
	Files    int
	Bytes    int64
}

// Pull writes the manifest named by target (a ref or a digest) into dest,
// which must not exist or be empty. Modes are restored; every file is
// verified against its digest as it is written.
//
// Nothing is created, followed or written outside dest. Before anything is
// written, the pull is refused (KindInvalid, naming the entry) when an
// entry would lie behind a symlink or a symlink entry would resolve outside
// dest, through the manifest's other symlinks too. A pull that fails while
// writing leaves the entries written so far inside dest.
func (t *Transfer) Pull(ctx context.Context, target, dest string, progress func(int64)) (PullResult, error) {
	return t.pull(ctx, target, dest, false, progress)
}

// PullInto writes the manifest's files into dest even when it is not
// empty, replacing files of the same path: a job's workspace receiving the
// outputs of the jobs it needs. The rules of Pull hold, and the symlinks
// dest already holds count: no entry is written through one, and a symlink
// entry may not resolve outside dest through one.
func (t *Transfer) PullInto(ctx context.Context, target, dest string) (PullResult, error) {
	return t.pull(ctx, target, dest, true, nil)
}

// PullPrefixInto writes the entries of the manifest under prefix (a slash
// path), without it, into dest as PullInto does, creating dest; a
// manifest with nothing under prefix writes nothing. It returns what it
// wrote, with the manifest's digest.
func (t *Transfer) PullPrefixInto(ctx context.Context, target, prefix, dest string) (PullResult, error) {
	d, m, err := t.Catalog.Manifest(ctx, target)
	if err != nil {
		return PullResult{}, err
	}
	sub := manifest.Manifest{Annotations: m.Annotations}
	for _, e := range m.Entries {
		if rest, ok := strings.CutPrefix(e.Path, prefix+"/"); ok {
			e.Path = rest
			sub.Entries = append(sub.Entries, e)
		}
	}
	if len(sub.Entries) == 0 {
		return PullResult{Manifest: d}, nil
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return PullResult{}, core.Wrap(core.KindInvalid, "pull", err)
	}
	return t.pullManifest(ctx, d, sub, dest, true, nil)
}

func (t *Transfer) pull(ctx context.Context, target, dest string, overlay bool, progress func(int64)) (PullResult, error) {
	d, m, err := t.Catalog.Manifest(ctx, target)
	if err != nil {
		return PullResult{}, err
	}
	return t.pullManifest(ctx, d, m, dest, overlay, progress)
}

func (t *Transfer) pullManifest(ctx context.Context, d digest.Digest, m manifest.Manifest, dest string, overlay bool, progress func(int64)) (PullResult, error) {
	var err error
	// A catalog is any implementation, a remote one too: check again.
	if err := m.Validate(); err != nil {
		return PullResult{}, &core.Error{Kind: core.KindInvalid, Op: "pull", Msg: "manifest " + d.String(), Err: err}
	}
	var root *os.Root
	if overlay {
		if root, err = openDest(dest); err != nil {
			return PullResult{}, err
		}
		defer root.Close()
	}
	if err := checkTree(m.Entries, root, "the destination"); err != nil {
		return PullResult{}, &core.Error{Kind: core.KindInvalid, Op: "pull", Msg: "manifest " + d.String(), Err: err}
	}
	if !overlay {
		if err := emptyDir(dest); err != nil {
			return PullResult{}, err
		}
		if root, err = openDest(dest); err != nil {
			return PullResult{}, err
		}
		defer root.Close()
	}
	res := PullResult{Manifest: d}
	for _, e := range m.Entries {
		// Every write goes through root: even if the tree changed since
		// it was checked, nothing can reach outside dest.
		name := filepath.FromSlash(e.Path)
		if dir := filepath.Dir(name); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return res, entryError(e.Path, err)
			}
		}
		if overlay {
			if err := root.RemoveAll(name); err != nil {
				return res, entryError(e.Path, err)
			}
		}
		if e.IsSymlink() {
			if err := root.Symlink(e.Target, name); err != nil {
				return res, entryError(e.Path, err)
			}
			continue
		}
		if err := t.writeFile(ctx, root, e, name); err != nil {
			return res, fmt.Errorf("pull %s: %w", e.Path, err)
		}
		res.Files++
		res.Bytes += e.Size
		if progress != nil {
			progress(e.Size)
		}
	}
	return res, nil
}

func entryError(path string, err error) error {
	return &core.Error{Kind: core.KindInvalid, Op: "pull", Msg: "entry " + strconv.Quote(path), Err: err}
}

func openDest(dest string) (*os.Root, error) {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, core.E(core.KindInvalid, "pull", "destination %s: %v", dest, err)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, core.E(core.KindInvalid, "pull", "destination %s: %v", dest, err)
	}
	return root, nil
}

// writeFile writes one regular file entry at name in root through a
// temporary file, so that a failed write leaves no partial file behind.
func (t *Transfer) writeFile(ctx context.Context, root *os.Root, e manifest.Entry, name string) error {
	rc, _, err := t.Data.Open(ctx, e.Digest, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	tmpName, tmp, err := createTemp(root, filepath.Dir(name))
	if err != nil {
		return core.Wrap(core.KindInvalid, "pull", err)
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = root.Remove(tmpName)
		}
	}()
	// The reader of a whole blob verifies its digest at EOF; check the
	// size too, since a manifest's size is part of what was promised.
	n, err := io.Copy(tmp, digest.NewVerifyingReader(rc, e.Digest, e.Size))
	if err != nil {
		tmp.Close()
		return err
	}
	if n != e.Size {
		tmp.Close()
		return core.E(core.KindInternal, "pull", "got %d bytes, manifest says %d", n, e.Size)
	}
	if err := tmp.Chmod(e.FileMode().Perm()); err != nil {
		tmp.Close()
		return core.Wrap(core.KindInternal, "pull", err)
	}
	if err := tmp.Close(); err != nil {
		return core.Wrap(core.KindInternal, "pull", err)
	}
	if err := root.Rename(tmpName, name); err != nil {
		return core.Wrap(core.KindInvalid, "pull", err)
	}
	renamed = true
	return nil
}

// createTemp creates a new file in dir under root, as os.CreateTemp does
// in a plain directory.
func createTemp(root *os.Root, dir string) (string, *os.File, error) {
	for range 100 {
		name := filepath.Join(dir, ".pull-"+strconv.FormatUint(rand.Uint64(), 36))
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return name, f, err
	}
	return "", nil, errors.New("cannot find a free temporary name")
}

// emptyDir checks that dest is an empty directory or does not exist.
func emptyDir(dest string) error {
	entries, err := os.ReadDir(dest)
	if errors.Is(err, os.ErrNotExist) {
		return nil // openDest creates it
	}
	if err != nil {
		return core.E(core.KindInvalid, "pull", "destination %s: %v", dest, err)
	}
	if len(entries) > 0 {
		return core.E(core.KindInvalid, "pull", "destination %s is not empty; pull into a new directory", dest)
	}
	return nil
}
