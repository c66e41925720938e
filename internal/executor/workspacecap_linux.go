package executor

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// workspaceCheckInterval is how often a sandboxed job's workspace is
// measured against Limits.WorkspaceSize. A measurement that takes long (a
// workspace of many files) spaces the next one out, so that measuring takes
// at most about a twentieth of a CPU.
const workspaceCheckInterval = 2 * time.Second

// workspaceCap measures a job's workspace periodically while the job runs.
type workspaceCap struct {
	over   chan struct{} // closed once the workspace was found past the limit
	used   int64         // what it measured then; read after over is closed
	cancel context.CancelFunc
	done   chan struct{}
}

// watchWorkspace starts measuring dirs, together, every interval, the first
// time at once. With limit NoLimit it measures nothing, and over is never
// closed.
func watchWorkspace(dirs []string, limit int64, interval time.Duration) *workspaceCap {
	ctx, cancel := context.WithCancel(context.Background())
	c := &workspaceCap{over: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	if limit == NoLimit {
		close(c.done)
		return c
	}
	go func() {
		defer close(c.done)
		timer := time.NewTimer(0)
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			start := time.Now()
			if used := diskUsage(dirs, limit); used > limit {
				c.used = used
				close(c.over)
				return
			}
			timer.Reset(max(interval, 20*time.Since(start)))
		}
	}()
	return c
}

// stop ends the measuring and waits for it to have ended.
func (c *workspaceCap) stop() {
	c.cancel()
	<-c.done
}

// diskUsage returns the disk space that the files below dirs take, as du
// counts it: allocated blocks, each hard-linked file once (also across
// dirs), symbolic links not followed. It stops counting once past stopAt. Files that vanish while
// it walks, and directories it cannot read, are left out: the result is an
// estimate, which is all a periodic check needs.
func diskUsage(dirs []string, stopAt int64) int64 {
	var total int64
	seen := map[[2]uint64]bool{} // device and inode of files with several links
	pending := slices.Clone(dirs)
	for len(pending) > 0 && total <= stopAt {
		d := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		fi, err := os.Lstat(d)
		if err != nil {
			continue
		}
		total += blocks(fi)
		for name, fi := range readDir(d) {
			if total > stopAt {
				break
			}
			if fi.IsDir() {
				pending = append(pending, filepath.Join(d, name))
				continue
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
				id := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
				if seen[id] {
					continue
				}
				seen[id] = true
			}
			total += blocks(fi)
		}
	}
	return total
}

// readDir yields the entries of directory d with their lstat information,
// in batches, so that a directory of a million files never sits in memory
// at once.
func readDir(d string) func(yield func(string, fs.FileInfo) bool) {
	return func(yield func(string, fs.FileInfo) bool) {
		f, err := os.Open(d)
		if errors.Is(err, fs.ErrPermission) {
			// The job may take the owner's permissions away from a directory
			// to hide what is in it. The runner is that owner (or root), so
			// it gives them back.
			if fi, lerr := os.Lstat(d); lerr == nil && os.Chmod(d, fi.Mode().Perm()|0o700) == nil {
				f, err = os.Open(d)
			}
		}
		if err != nil {
			return
		}
		defer f.Close()
		for {
			entries, err := f.ReadDir(1024)
			for _, e := range entries {
				fi, ierr := e.Info()
				if ierr != nil {
					continue // removed meanwhile
				}
				if !yield(e.Name(), fi) {
					return
				}
			}
			if err != nil {
				return // io.EOF at the end
			}
		}
	}
}

// blocks is the disk space a file takes, in bytes.
func blocks(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return fi.Size()
}

// formatBytes writes n in the largest binary unit it reaches, such as
// "10 GiB" or "1.5 MiB".
func formatBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size {
			v := strconv.FormatFloat(float64(n)/float64(u.size), 'f', 1, 64)
			return strings.TrimSuffix(v, ".0") + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
