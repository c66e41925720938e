package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// waitDelay bounds the wait for a helper's output once it has exited.
const waitDelay = 5 * time.Second

// RemoveAll removes dir and everything below it, as os.RemoveAll does,
// after unmounting every mount at or below it, deepest first: the
// workspaces a process killed mid-job (kill -9) left mounted. Removing
// through a live mount would delete files in the view rather than the
// view, and fail on the mount point.
func RemoveAll(ctx context.Context, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	points, err := mountPoints()
	if err != nil {
		return fmt.Errorf("reading the mounts: %w", err)
	}
	var below []string
	for _, p := range points {
		if p == abs || strings.HasPrefix(p, abs+"/") {
			below = append(below, p)
		}
	}
	// Deepest first; a path listed twice (mounts stacked) is unmounted twice.
	slices.SortStableFunc(below, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	var errs []error
	for _, p := range below {
		if err := unmount(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return removeTree(abs)
}

// removeTree is os.RemoveAll, which also takes away directories a job
// made unreadable or unwritable to itself (chmod 0): the runner owns them,
// so it gives their permissions back first.
func removeTree(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
			if err != nil {
				// Unreadable until now: walk it again.
				return removeTree(p)
			}
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// parseMountinfo returns the mount points listed in the contents of a
// /proc/PID/mountinfo file: the fifth field of each line, with the octal
// escapes the kernel writes for space, tab, newline and backslash undone.
func parseMountinfo(b []byte) ([]string, error) {
	var points []string
	for n, line := range bytes.Split(b, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		f := bytes.Fields(line)
		if len(f) < 5 || !isDecimal(f[0]) || !isDecimal(f[1]) || !bytes.Contains(f[2], []byte{':'}) {
			return nil, fmt.Errorf("mountinfo line %d: unexpected format %.100q", n+1, line)
		}
		p, err := unescapeOctal(f[4])
		if err != nil || !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("mountinfo line %d: bad mount point %.100q", n+1, f[4])
		}
		points = append(points, p)
	}
	return points, nil
}

func isDecimal(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// unescapeOctal undoes the kernel's \ooo escapes.
func unescapeOctal(b []byte) (string, error) {
	if !bytes.ContainsRune(b, '\\') {
		return string(b), nil
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			out = append(out, b[i])
			continue
		}
		if i+3 >= len(b) {
			return "", errors.New("truncated escape")
		}
		v := 0
		for _, c := range b[i+1 : i+4] {
			if c < '0' || c > '7' {
				return "", errors.New("bad escape")
			}
			v = v<<3 | int(c-'0')
		}
		if v > 0xff {
			return "", errors.New("bad escape")
		}
		out = append(out, byte(v))
		i += 3
	}
	return string(out), nil
}
