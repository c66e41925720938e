//go:build unix

package executor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
)

// setupShell returns a bundle running jobs with a Shell. Its background
// processes are known by the pid they write to NAME.pid in the workspace.
func setupShell(t *testing.T) bundle {
	t.Helper()
	dir := t.TempDir()
	return bundle{
		ex:  executor.NewShell(testLogger(t)),
		dir: dir,
		background: func(name string) string {
			return "sleep 1000 & echo $! > " + name + ".pid"
		},
		gone: func(t *testing.T, name string) {
			t.Helper()
			waitGone(t, readPid(t, filepath.Join(dir, name+".pid")))
		},
	}
}

func TestShell(t *testing.T) {
	t.Parallel()
	testContract(t, setupShell)

	t.Run("ZeroShell", func(t *testing.T) {
		t.Parallel()
		var sh executor.Shell
		res, err := sh.Run(context.Background(), executor.Spec{Script: "exit 0", Dir: t.TempDir()}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
	})

	t.Run("EscapedProcessDoesNotHangRun", func(t *testing.T) {
		t.Parallel()
		if _, err := exec.LookPath("setsid"); err != nil {
			t.Skip("setsid not installed")
		}
		b := setupShell(t)
		// A background job is not a group leader, so setsid execs in place and
		// $! stays the escaped process; the script waits until it has left the group.
		script := `setsid sh -c 'touch escaped; exec sleep 1000' & echo $! > escaped.pid
while [ ! -e escaped ]; do sleep 0.01; done`
		res := b.run(t, context.Background(), b.spec(script), io.Discard)
		pid := readPid(t, filepath.Join(b.dir, "escaped.pid"))
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
	})
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %q: %v", b, err)
	}
	return pid
}

// waitGone polls until pid is dead. A killed grandchild is reparented, and we
// cannot reap it, so "dead" includes a zombie that nobody reaps (PID 1 in a
// container often does not).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(notHung)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	if runtime.GOOS != "linux" {
		return false // no portable way to spot a zombie
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	// The state follows the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// TestShellNoTIOCSTI: a shell job runs in a session of its own, so it
// cannot push input into the terminal the runner was started from.
func TestShellNoTIOCSTI(t *testing.T) {
	t.Parallel()
	testTIOCSTI(t, buildProbe(t), "shell")
}
