package runner

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// group starts `sh -c script` in a session and process group of its own,
// as the shell executor starts a job.
func group(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd
}

// groupAlive reports whether any process of the group pgid is left.
func groupAlive(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

func TestKillOrphansStopsWhatAKilledRunnerLeft(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("job records need /proc")
	}
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	killOrphans(context.Background(), log, dir) // makes the records directory

	// A job whose runner died: a shell and a child of its own.
	left := group(t, "sleep 300 & sleep 300")
	recordJob(dir, "attempt-left", left.Process.Pid)
	// A record whose pid is now another process's: never killed.
	other := group(t, "sleep 300")
	if err := os.WriteFile(filepath.Join(dir, jobsDir, "attempt-reused"),
		[]byte(strconv.Itoa(other.Process.Pid)+" 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A job that ended as the runner recorded it: forgotten, not killed.
	done := group(t, "sleep 300")
	recordJob(dir, "attempt-done", done.Process.Pid)()

	killOrphans(context.Background(), log, dir)
	waited := make(chan error, 1)
	go func() { waited <- left.Wait() }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("the left job's shell is still running")
	}
	deadline := time.Now().Add(10 * time.Second)
	for groupAlive(left.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("a process of the left job's group is still running")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !groupAlive(other.Process.Pid) || !groupAlive(done.Process.Pid) {
		t.Fatal("killOrphans stopped a process group it had no record of")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, jobsDir)); len(entries) != 0 {
		t.Fatalf("records left: %v", entries)
	}
}
