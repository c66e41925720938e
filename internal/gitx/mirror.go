package gitx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/deltaci/deltaci/internal/core"
)

// Mirrors is a cache of bare mirrors, one per repository, from which
// attempts get their workspaces: a fetch updates a mirror once for many
// checkouts, and a checkout is a detached worktree, so no object is copied.
type Mirrors struct {
	// Dir holds one mirror per repository, named by a hash of its URL.
	Dir string
}

// Path is where the mirror of repo lives.
func (m Mirrors) Path(repo string) string {
	sum := sha256.Sum256([]byte(repo))
	return filepath.Join(m.Dir, hex.EncodeToString(sum[:12])+".git")
}

// Ensure makes sure the mirror of repo (a URL or a local path) has commit,
// cloning or fetching as needed, and returns the mirror's path. Concurrent
// calls for one repository take turns on a file lock, so they can share
// the cache across processes.
func (m Mirrors) Ensure(ctx context.Context, repo, commit string) (string, error) {
	path, unlock, _, err := m.open(ctx, repo)
	if err != nil {
		return "", err
	}
	defer unlock()
	if ok, err := CommitExists(ctx, path, commit); err != nil {
		return "", err
	} else if ok {
		return path, nil
	}
	if err := fetch(ctx, path, repo); err != nil {
		return "", err
	}
	if ok, err := CommitExists(ctx, path, commit); err != nil {
		return "", err
	} else if !ok {
		return "", core.E(core.KindNotFound, "mirror", "commit %s is not in %s", commit, repo)
	}
	return path, nil
}

// Fetch brings the mirror of repo up to date with it, cloning it the first
// time, and returns the mirror's path. Its branches are refs/heads/*.
func (m Mirrors) Fetch(ctx context.Context, repo string) (string, error) {
	path, unlock, cloned, err := m.open(ctx, repo)
	if err != nil {
		return "", err
	}
	defer unlock()
	if !cloned {
		if err := fetch(ctx, path, repo); err != nil {
			return "", err
		}
	}
	return path, nil
}

// fetch updates the mirror at path from repo, with git allowed only
// repo's own transport.
func fetch(ctx context.Context, path, repo string) error {
	allow, err := allowProtocol(repo)
	if err != nil {
		return err
	}
	_, err = runEnv(ctx, path, []string{allow}, "fetch", "--quiet", "--prune", "origin")
	return err
}

// open locks the mirror of repo, cloning it when it does not exist yet,
// and reports whether it did.
func (m Mirrors) open(ctx context.Context, repo string) (path string, unlock func(), cloned bool, err error) {
	allow, err := allowProtocol(repo)
	if err != nil {
		return "", nil, false, err
	}
	if err := os.MkdirAll(m.Dir, 0o755); err != nil {
		return "", nil, false, core.Wrap(core.KindInternal, "mirror", err)
	}
	// git clone runs in m.Dir: a relative path would be taken from there.
	if path, err = filepath.Abs(m.Path(repo)); err != nil {
		return "", nil, false, core.Wrap(core.KindInternal, "mirror", err)
	}
	unlock, err = lockFile(path + ".lock")
	if err != nil {
		return "", nil, false, err
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		tmp := path + ".tmp"
		_ = os.RemoveAll(tmp)
		if _, err := runEnv(ctx, m.Dir, []string{allow}, "clone", "--quiet", "--mirror", "--", repo, tmp); err != nil {
			_ = os.RemoveAll(tmp)
			unlock()
			return "", nil, false, err
		}
		if err := os.Rename(tmp, path); err != nil {
			unlock()
			return "", nil, false, core.Wrap(core.KindInternal, "mirror", err)
		}
		cloned = true
	}
	return path, unlock, cloned, nil
}

// Checkout creates dest as a detached worktree of the mirror at commit.
// Release removes it and its bookkeeping in the mirror.
func (m Mirrors) Checkout(ctx context.Context, mirror, commit, dest string) error {
	if strings.HasPrefix(commit, "-") {
		return core.E(core.KindInvalid, "checkout", "bad commit %q", commit)
	}
	// Worktree bookkeeping in the mirror is not safe for concurrent adds.
	unlock, err := lockFile(mirror + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	_, err = run(ctx, mirror, "worktree", "add", "--quiet", "--detach", "--force", "--", dest, commit+"^{commit}")
	return err
}

// Release removes a worktree made by Checkout.
func (m Mirrors) Release(ctx context.Context, mirror, dest string) error {
	unlock, err := lockFile(mirror + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := run(ctx, mirror, "worktree", "remove", "--force", "--", dest); err != nil {
		// Gone already (a crash removed it): forget it in the mirror.
		_ = os.RemoveAll(dest)
		_, err := run(ctx, mirror, "worktree", "prune")
		return err
	}
	return nil
}

// Prune forgets, in every mirror, the worktrees whose directories are gone
// (a runner killed mid-job, whose workspaces were then removed).
func (m Mirrors) Prune(ctx context.Context) error {
	paths, err := filepath.Glob(filepath.Join(m.Dir, "*.git"))
	if err != nil {
		return core.Wrap(core.KindInternal, "prune mirrors", err)
	}
	var errs []error
	for _, p := range paths {
		unlock, err := lockFile(p + ".lock")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, err = run(ctx, p, "worktree", "prune")
		unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lockFile takes an exclusive flock on path, waiting for it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "mirror lock", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, core.Wrap(core.KindInternal, "mirror lock", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
