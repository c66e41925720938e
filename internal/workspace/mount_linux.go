package workspace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// msgNoMount is empty: Linux has overlayfs.
const msgNoMount = ""

// mountOverlay mounts the kernel's overlayfs on dir. Set-user-id bits and
// device files have no meaning in a workspace. redirect_dir lets a job
// rename a directory of the base tree, which fails with EXDEV otherwise.
// volatile drops the syncs of the upper layer, which a workspace removed
// after the job never needs: the unmount would otherwise sync the whole
// filesystem under it.
func mountOverlay(opts, dir string) error {
	if err := syscall.Mount("overlay", dir, "overlay", syscall.MS_NOSUID|syscall.MS_NODEV, opts+",redirect_dir=on,volatile"); err != nil {
		if errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("mount overlayfs: %w (it takes a runner running as root; fuse-overlayfs needs no privilege)", err)
		}
		return fmt.Errorf("mount overlayfs: %w", err)
	}
	return nil
}

// unmount detaches the mount at dir: the kernel's overlayfs, or
// fuse-overlayfs, whose daemon then exits. A runner that is not root
// unmounts its FUSE mounts with fusermount. A mount still busy (a process
// of the job left inside) is detached lazily: it goes once the last user
// leaves, and the directory can be removed at once.
func unmount(ctx context.Context, dir string) error {
	err := syscall.Unmount(dir, 0)
	switch {
	case err == nil || errors.Is(err, syscall.EINVAL):
		return nil // EINVAL: nothing is mounted there (any more)
	case errors.Is(err, syscall.EBUSY):
		err = syscall.Unmount(dir, syscall.MNT_DETACH)
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		err = fusermount(ctx, dir)
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// fusermount unmounts a FUSE mount of the runner's user, lazily when it
// is busy.
func fusermount(ctx context.Context, dir string) error {
	var last error
	for _, name := range []string{"fusermount3", "fusermount"} {
		path, err := exec.LookPath(name)
		if err != nil {
			last = err
			continue
		}
		out, err := exec.CommandContext(ctx, path, "-u", "-z", "--", dir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	return last
}

// mountPoints reads the mount points of this process's mount namespace.
func mountPoints() ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseMountinfo(b)
}
