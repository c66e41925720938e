package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
// verified against its digest as it is written. Paths that would leave dest
// and symlinks pointing outside it are refused before anything is written.
func (t *Transfer) Pull(ctx context.Context, target, dest string, progress func(int64)) (PullResult, error) {
	return t.pull(ctx, target, dest, false, progress)
}

// PullInto writes the manifest's files into dest even when it is not
// empty, replacing files of the same path: a job's workspace receiving the
// outputs of the jobs it needs.
func (t *Transfer) PullInto(ctx context.Context, target, dest string) (PullResult, error) {
	return t.pull(ctx, target, dest, true, nil)
}

func (t *Transfer) pull(ctx context.Context, target, dest string, overlay bool, progress func(int64)) (PullResult, error) {
	d, m, err := t.Catalog.Manifest(ctx, target)
	if err != nil {
		return PullResult{}, err
	}
	for _, e := range m.Entries {
		if _, err := within(dest, e.Path); err != nil {
			return PullResult{}, err
		}
		if e.IsSymlink() && !linkStaysInside(e.Path, e.Target) {
			return PullResult{}, core.E(core.KindInvalid, "pull", "manifest %s: symlink %s -> %s points outside the destination; refusing to pull it", d, e.Path, e.Target)
		}
	}
	if !overlay {
		if err := emptyDir(dest); err != nil {
			return PullResult{}, err
		}
	}
	res := PullResult{Manifest: d}
	for _, e := range m.Entries {
		p, _ := within(dest, e.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return res, core.Wrap(core.KindInvalid, "pull", err)
		}
		if overlay {
			// Replace whatever is there, never write through it: a
			// symlinked directory on the way could lead outside dest.
			if err := noSymlinkParents(dest, e.Path); err != nil {
				return res, err
			}
			if err := os.RemoveAll(p); err != nil {
				return res, core.Wrap(core.KindInvalid, "pull", err)
			}
		}
		if e.IsSymlink() {
			if err := os.Symlink(e.Target, p); err != nil {
				return res, core.Wrap(core.KindInvalid, "pull", err)
			}
			continue
		}
		if err := t.writeFile(ctx, e, p); err != nil {
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

func (t *Transfer) writeFile(ctx context.Context, e manifest.Entry, p string) error {
	rc, _, err := t.Data.Open(ctx, e.Digest, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(p), ".pull-*")
	if err != nil {
		return core.Wrap(core.KindInvalid, "pull", err)
	}
	defer os.Remove(tmp.Name())
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
	return os.Rename(tmp.Name(), p)
}

// within joins a manifest path onto dest and refuses anything that leaves it.
func within(dest, rel string) (string, error) {
	p := filepath.Join(dest, filepath.FromSlash(rel))
	r, err := filepath.Rel(dest, p)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", core.E(core.KindInvalid, "pull", "path %q leaves the destination; refusing to pull it", rel)
	}
	return p, nil
}

func emptyDir(dest string) error {
	entries, err := os.ReadDir(dest)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dest, 0o755)
	}
	if err != nil {
		return core.E(core.KindInvalid, "pull", "destination %s: %v", dest, err)
	}
	if len(entries) > 0 {
		return core.E(core.KindInvalid, "pull", "destination %s is not empty; pull into a new directory", dest)
	}
	return nil
}

// noSymlinkParents refuses a path whose existing parent directories under
// dest include a symlink.
func noSymlinkParents(dest, rel string) error {
	dir := dest
	parts := strings.Split(rel, "/")
	for _, part := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, part)
		fi, err := os.Lstat(dir)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return core.Wrap(core.KindInvalid, "pull", err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return core.E(core.KindInvalid, "pull", "%s lies behind the symlink %s in the destination; refusing to write through it", rel, dir)
		}
	}
	return nil
}
