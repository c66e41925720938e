package registry

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/core"
)

// maxLinkHops bounds the symlinks one resolution follows, as Linux does
// (40). A chain that needs more is refused: the kernel would not resolve it
// in one lookup, but a job could in several.
const maxLinkHops = 40

// tree is a directory as it will be once a manifest is written into it:
// the manifest's entries over what the directory already holds. It checks
// the rules that keep a tree confined (docs/artifact-store.md, "Symlinks"):
// no entry lies behind a symlink, and every symlink entry resolves inside
// the directory, following the tree's other symlinks as the kernel would.
type tree struct {
	entries map[string]manifest.Entry
	// dirs are the strict prefixes of entries: directories the writer makes.
	dirs map[string]bool
	// root is the existing directory, or nil when it starts empty.
	root *os.Root
	// where names the directory in errors: "the destination".
	where string
	// checked holds the prefixes already found to be directories or absent.
	checked map[string]bool
}

// checkTree refuses entries that, written into root (nil for an empty
// directory), would be written through a symlink or leave a symlink that
// resolves outside it. The error is KindInvalid and names the entry.
func checkTree(entries []manifest.Entry, root *os.Root, where string) error {
	t := &tree{
		entries: make(map[string]manifest.Entry, len(entries)),
		dirs:    map[string]bool{},
		root:    root,
		where:   where,
		checked: map[string]bool{},
	}
	for _, e := range entries {
		t.entries[e.Path] = e
		for dir := path.Dir(e.Path); dir != "." && !t.dirs[dir]; dir = path.Dir(dir) {
			t.dirs[dir] = true
		}
	}
	// Parents first: resolving links below relies on the directories the
	// writer makes being real ones.
	for _, e := range entries {
		if err := t.checkParents(e.Path); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if !e.IsSymlink() {
			continue
		}
		if err := t.checkLink(e); err != nil {
			return err
		}
	}
	return nil
}

// checkParents refuses a path with a symlink or a file among its parents.
func (t *tree) checkParents(p string) error {
	for i := range len(p) {
		if p[i] != '/' {
			continue
		}
		dir := p[:i]
		if t.checked[dir] {
			continue
		}
		if _, ok := t.entries[dir]; ok {
			return core.E(core.KindInvalid, "", "entry %q lies below the entry %q, which is not a directory", p, dir)
		}
		if t.root != nil {
			fi, err := t.root.Lstat(filepath.FromSlash(dir))
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				return core.E(core.KindInvalid, "", "entry %q: %v", p, err)
			case fi.Mode()&fs.ModeSymlink != 0:
				return core.E(core.KindInvalid, "", "entry %q lies behind the symlink %q in %s; refusing to write through it", p, dir, t.where)
			case !fi.IsDir():
				return core.E(core.KindInvalid, "", "entry %q lies below %q, which is a file in %s", p, dir, t.where)
			}
		}
		t.checked[dir] = true
	}
	return nil
}

// checkLink refuses a symlink entry that resolves outside the tree.
func (t *tree) checkLink(e manifest.Entry) error {
	if path.IsAbs(e.Target) {
		return core.E(core.KindInvalid, "", "symlink %q -> %q points outside %s: its target is absolute", e.Path, e.Target, t.where)
	}
	var dir []string
	if d := path.Dir(e.Path); d != "." {
		dir = strings.Split(d, "/")
	}
	pending := strings.Split(e.Target, "/")
	via := ""
	for hops := 0; len(pending) > 0; {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(dir) == 0 {
				if via != "" {
					return core.E(core.KindInvalid, "", "symlink %q -> %q points outside %s through the symlink %q", e.Path, e.Target, t.where, via)
				}
				return core.E(core.KindInvalid, "", "symlink %q -> %q points outside %s", e.Path, e.Target, t.where)
			}
			dir = dir[:len(dir)-1]
			continue
		}
		next := strings.Join(append(dir[:len(dir):len(dir)], c), "/")
		target, isLink, err := t.link(next)
		if err != nil {
			return core.E(core.KindInvalid, "", "symlink %q -> %q: %v", e.Path, e.Target, err)
		}
		if !isLink {
			dir = append(dir, c)
			continue
		}
		if hops++; hops > maxLinkHops {
			return core.E(core.KindInvalid, "", "symlink %q -> %q passes through more than %d symlinks", e.Path, e.Target, maxLinkHops)
		}
		if path.IsAbs(target) {
			return core.E(core.KindInvalid, "", "symlink %q -> %q points outside %s through the symlink %q -> %q", e.Path, e.Target, t.where, next, target)
		}
		via = next
		pending = append(strings.Split(target, "/"), pending...)
	}
	return nil
}

// link reports whether p (a slash path whose parents are directories in
// the tree) will be a symlink, and its target.
func (t *tree) link(p string) (string, bool, error) {
	if e, ok := t.entries[p]; ok {
		return e.Target, e.IsSymlink(), nil
	}
	if t.dirs[p] || t.root == nil {
		return "", false, nil
	}
	// Whatever lies below an entry is replaced along with it.
	for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
		if _, ok := t.entries[dir]; ok {
			return "", false, nil
		}
	}
	name := filepath.FromSlash(p)
	fi, err := t.root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return "", false, nil
	case err != nil:
		return "", false, err
	case fi.Mode()&fs.ModeSymlink == 0:
		return "", false, nil
	}
	target, err := t.root.Readlink(name)
	return target, err == nil, err
}
