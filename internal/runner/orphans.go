package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// jobsDir holds a record of each job process group a runner has running,
// so that a runner started after one was killed can stop what it left.
const jobsDir = "jobs"

// processStart is when a process started, in clock ticks since boot
// (/proc/<pid>/stat, field 22): with the pid, it names one process, so a
// pid reused since is never mistaken for the job's.
func processStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name may hold spaces and parentheses; what follows its
	// last ')' is fixed: field 3 (state) onward.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return f[19], nil
}

// recordJob notes a running job's process group under dir and returns
// the function that forgets it once the job has ended.
func recordJob(dir, attemptID string, pid int) func() {
	start, err := processStart(pid)
	if err != nil {
		return func() {}
	}
	path := filepath.Join(dir, jobsDir, attemptID)
	if err := os.WriteFile(path, []byte(strconv.Itoa(pid)+" "+start+"\n"), 0o600); err != nil {
		return func() {}
	}
	return func() { _ = os.Remove(path) }
}

// killOrphans stops the process groups of the jobs recorded under dir,
// which a runner killed before its jobs ended left running, and forgets
// them. A record whose process has gone, or whose pid now names another
// process, is only forgotten.
func killOrphans(ctx context.Context, log *slog.Logger, dir string) {
	jobs := filepath.Join(dir, jobsDir)
	entries, err := os.ReadDir(jobs)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.WarnContext(ctx, "reading the job records", slog.Any("err", err))
	}
	for _, e := range entries {
		path := filepath.Join(jobs, e.Name())
		b, err := os.ReadFile(path)
		if err == nil {
			var pid int
			var start string
			if _, serr := fmt.Sscan(string(b), &pid, &start); serr == nil && pid > 1 {
				if now, err := processStart(pid); err == nil && now == start {
					err := syscall.Kill(-pid, syscall.SIGKILL)
					log.WarnContext(ctx, "stopped the processes of a job a killed runner left",
						slog.String("attempt_id", e.Name()), slog.Int("pgid", pid), slog.Any("err", err))
				}
			}
		}
		_ = os.Remove(path)
	}
	if err := os.MkdirAll(jobs, 0o700); err != nil {
		log.WarnContext(ctx, "making the job records directory", slog.Any("err", err))
	}
}
