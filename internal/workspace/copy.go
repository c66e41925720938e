package workspace

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/deltaci/deltaci/internal/gitx"
)

// copyTree copies a snapshot directory into a new workspace, keeping
// executable bits and symlinks (copied as links, never followed). Reads go
// through a root at src and writes through one at dst, so that no link, in
// the snapshot or made in dst meanwhile, leads a copy outside either.
func copyTree(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	in, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	return fs.WalkDir(in.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := filepath.FromSlash(rel)
		switch {
		case rel == ".":
			return nil
		case d.IsDir():
			return mkdir(out, name)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := in.Readlink(name)
			if err != nil {
				return err
			}
			return out.Symlink(link, name)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(in, out, name, info.Mode().Perm())
		default:
			return fmt.Errorf("copy %s: unsupported file type %s", rel, d.Type())
		}
	})
}

// mkdir makes a directory in root, accepting one that is already there but
// not a symlink in its place.
func mkdir(root *os.Root, name string) error {
	err := root.Mkdir(name, 0o755)
	if errors.Is(err, fs.ErrExist) {
		if fi, lerr := root.Lstat(name); lerr == nil && fi.IsDir() {
			return nil
		}
	}
	return err
}

func copyFile(in, out *os.Root, name string, perm fs.FileMode) error {
	r, err := in.Open(name)
	if err != nil {
		return err
	}
	defer r.Close()
	// O_EXCL: never write through whatever already has the name.
	w, err := out.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// CopyFiles copies the entries files (paths from the top of the tree) from
// the snapshot src into dst, keeping executable bits, and symlinks as
// links. A submodule gets an empty directory, as in a checkout that does
// not populate it. Reads go through a root at src and writes through one
// at dst, as in copyTree.
func CopyFiles(src, dst string, files []gitx.TreeEntry) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	in, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	made := map[string]bool{".": true}
	for _, e := range files {
		name := filepath.FromSlash(e.Path)
		if dir := path.Dir(e.Path); !made[dir] {
			if err := out.MkdirAll(filepath.FromSlash(dir), 0o755); err != nil {
				return err
			}
			made[dir] = true
		}
		if e.Mode == gitx.ModeGitlink {
			if err := mkdir(out, name); err != nil {
				return err
			}
			continue
		}
		fi, err := in.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s is among the job's inputs but not in the snapshot", strconv.Quote(e.Path))
		}
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			link, err := in.Readlink(name)
			if err != nil {
				return err
			}
			if err := out.Symlink(link, name); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := copyFile(in, out, name, fi.Mode().Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("copy %s: unsupported file type %s", strconv.Quote(e.Path), fi.Mode().Type())
		}
	}
	return nil
}
