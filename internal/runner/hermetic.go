package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/planner"
)

// A hermetic job's workspace holds only the files of its digest (those its
// inputs match, and what their symlinks lead to in the repository), then
// the outputs of its needs, restored as for any job. Any other file of the
// repository is missing, so the job cannot depend on a file its digest
// does not describe.

// hermeticWorkspace copies into the new directory dir the files of the
// hermetic job j from the run's snapshot, l.Source, which holds them as
// the plan read them.
func (l *Local) hermeticWorkspace(j core.Job, dir string) error {
	if l.InputFiles == nil {
		return core.E(core.KindInternal, "hermetic workspace", "job %s is hermetic, but the runner has no list of its files", j.Name)
	}
	files, err := l.InputFiles(j.Name)
	if err != nil {
		return err
	}
	return copyFiles(l.Source, dir, files)
}

// copyFiles copies the entries files (paths from the top of the tree) from
// the snapshot src into dst, keeping executable bits, and symlinks as
// links. A submodule gets an empty directory, as in a checkout that does
// not populate it. Reads go through a root at src and writes through one
// at dst, as in copyTree.
func copyFiles(src, dst string, files []gitx.TreeEntry) error {
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

// hermeticCheckout makes ws hold the files of the leased hermetic job at
// its commit, from the mirror: only those, without a .git. The runner
// lists them itself, with the planner's own rules, from the job's inputs.
func (a *attempt) hermeticCheckout(ctx context.Context, mirror, ws string) error {
	l := a.l
	cf, err := planner.FilesAtCommit(ctx, mirror, l.Commit, core.JobSpec{Name: l.Job, Inputs: l.Inputs, Hermetic: true})
	if err != nil {
		return err
	}
	if err := gitx.CheckoutFiles(ctx, mirror, ws, cf.Files, cf.Attributes); err != nil {
		_ = os.RemoveAll(ws) // nothing releases a workspace that failed
		return err
	}
	return nil
}
