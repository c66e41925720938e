//go:build unix

package executor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
)

// leakVar is set in the test process only; jobs must never see it.
const leakVar = "DELTACI_EXECUTOR_TEST_LEAK"

// notHung bounds every wait: it proves "did not hang", not a duration.
const notHung = 20 * time.Second

func TestMain(m *testing.M) {
	if err := os.Setenv(leakVar, "leaked"); err != nil {
		panic(err)
	}
	goleak.VerifyTestMain(m)
}

type bundle struct {
	shell *executor.Shell
	dir   string
}

func setup(t *testing.T) bundle {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return bundle{shell: executor.NewShell(logger), dir: t.TempDir()}
}

// spec returns a Spec running script in the bundle's directory with a small,
// fixed environment.
func (b bundle) spec(script string) executor.Spec {
	return executor.Spec{Script: script, Dir: b.dir, Env: []string{"PATH=/usr/bin:/bin"}, Grace: 200 * time.Millisecond}
}

func (b bundle) run(t *testing.T, ctx context.Context, spec executor.Spec, out io.Writer) executor.Result {
	t.Helper()
	res, err := b.shell.Run(ctx, spec, out)
	if err != nil {
		t.Fatalf("Run: unexpected error %v", err)
	}
	return res
}

// start runs the job in the background; wait collects its result.
func (b bundle) start(t *testing.T, ctx context.Context, spec executor.Spec, out io.Writer) <-chan executor.Result {
	t.Helper()
	ch := make(chan executor.Result, 1)
	go func() {
		res, err := b.shell.Run(ctx, spec, out)
		if err != nil {
			t.Errorf("Run: unexpected error %v", err)
		}
		ch <- res
	}()
	return ch
}

func wait(t *testing.T, ch <-chan executor.Result) executor.Result {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(notHung):
		t.Fatalf("Run did not return within %s", notHung)
		return executor.Result{}
	}
}

func assertOutcome(t *testing.T, res executor.Result, state core.AttemptState, reason core.Reason, exitCode int) {
	t.Helper()
	if res.State != state || res.Reason != reason || res.ExitCode != exitCode {
		t.Errorf("got state=%s reason=%q exit=%d err=%q, want state=%s reason=%q exit=%d",
			res.State, res.Reason, res.ExitCode, res.Err, state, reason, exitCode)
	}
	if res.StartedAt.IsZero() || res.FinishedAt.Before(res.StartedAt) {
		t.Errorf("bad times: started %v, finished %v", res.StartedAt, res.FinishedAt)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var out output
		res := b.run(t, context.Background(), b.spec("echo hello"), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		if res.Err != "" {
			t.Errorf("Err = %q, want empty", res.Err)
		}
		if got := out.String(); got != "hello\n" {
			t.Errorf("output = %q, want %q", got, "hello\n")
		}
	})

	t.Run("ZeroShell", func(t *testing.T) {
		t.Parallel()
		var sh executor.Shell
		res, err := sh.Run(context.Background(), executor.Spec{Script: "exit 0", Dir: t.TempDir()}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
	})

	t.Run("ExitCode", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.run(t, context.Background(), b.spec("exit 3"), io.Discard)
		assertOutcome(t, res, core.AttemptFailed, core.ReasonExitCode, 3)
	})

	t.Run("StopsAtFirstFailingCommand", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var out output
		res := b.run(t, context.Background(), b.spec("echo before; false; echo after"), &out)
		assertOutcome(t, res, core.AttemptFailed, core.ReasonExitCode, 1)
		if got := out.String(); got != "before\n" {
			t.Errorf("output = %q, want only %q (sh -e)", got, "before\n")
		}
	})

	t.Run("OutputInterleavedInOrder", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var out output
		script := "echo 1; echo 2 >&2; echo 3; echo 4 >&2; printf 'no newline'"
		res := b.run(t, context.Background(), b.spec(script), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		if got, want := out.String(), "1\n2\n3\n4\nno newline"; got != want {
			t.Errorf("output = %q, want %q", got, want)
		}
	})

	t.Run("LargeOutput", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var out output
		// Far more than a pipe buffer: the job must not block on a full pipe.
		res := b.run(t, context.Background(), b.spec("i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done"), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 20000 || lines[0] != "line-0" || lines[19999] != "line-19999" {
			t.Errorf("got %d lines (first %q, last %q), want 20000 in order", len(lines), lines[0], lines[len(lines)-1])
		}
	})

	t.Run("EnvIsExactlySpecEnv", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var out output
		spec := b.spec("env")
		spec.Env = []string{"PATH=/usr/bin:/bin", "DELTACI_GIVEN=yes"}
		res := b.run(t, context.Background(), spec, &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		vars := map[string]bool{}
		for _, kv := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			k, _, _ := strings.Cut(kv, "=")
			vars[k] = true
		}
		if !vars["DELTACI_GIVEN"] || !vars["PATH"] {
			t.Errorf("given variables missing from job env:\n%s", out.String())
		}
		for _, k := range []string{leakVar, "HOME", "USER"} {
			if vars[k] {
				t.Errorf("job sees %s, which the spec did not give:\n%s", k, out.String())
			}
		}
	})

	t.Run("NilEnvIsEmpty", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var out output
		spec := b.spec(`echo "[$PATH][$` + leakVar + `]"`)
		spec.Env = nil
		res := b.run(t, context.Background(), spec, &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		// dash falls back to a default PATH, but nothing comes from our environment.
		if strings.Contains(out.String(), "leaked") {
			t.Errorf("job saw the test's environment: %q", out.String())
		}
	})

	t.Run("WorkingDirectory", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var out output
		res := b.run(t, context.Background(), b.spec("pwd -P; touch made-here"), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		want, err := filepath.EvalSymlinks(b.dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out.String()); got != want {
			t.Errorf("pwd = %q, want %q", got, want)
		}
		if _, err := os.Stat(filepath.Join(b.dir, "made-here")); err != nil {
			t.Errorf("file not created in Dir: %v", err)
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		spec := b.spec("sleep 1000 & echo $! > grandchild.pid; wait")
		spec.Timeout = 2 * time.Second // long enough for the pid file, even under -race
		res := b.run(t, context.Background(), spec, io.Discard)
		assertOutcome(t, res, core.AttemptTimedOut, core.ReasonTimeout, -1)
		waitGone(t, readPid(t, filepath.Join(b.dir, "grandchild.pid")))
	})

	t.Run("Canceled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := newOutput("ready")
		ch := b.start(t, ctx, b.spec("sleep 1000 & echo $! > grandchild.pid; echo ready; wait"), out)
		out.waitFor(t)
		cancel()
		res := wait(t, ch)
		assertOutcome(t, res, core.AttemptCanceled, core.ReasonCanceled, -1)
		waitGone(t, readPid(t, filepath.Join(b.dir, "grandchild.pid")))
	})

	t.Run("CanceledBeforeStart", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res := b.run(t, ctx, b.spec("touch started"), io.Discard)
		assertOutcome(t, res, core.AttemptCanceled, core.ReasonCanceled, -1)
		if _, err := os.Stat(filepath.Join(b.dir, "started")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the script ran although ctx was already canceled (stat: %v)", err)
		}
	})

	t.Run("GraceIsGiven", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := newOutput("ready")
		// The handler outlives the TERM (its sleep starts after it), so it
		// only prints "cleaned up" if Run waits instead of killing at once.
		spec := b.spec("trap 'sleep 0.3; echo cleaned up; exit 7' TERM; sleep 1000 & echo ready; wait")
		spec.Grace = notHung
		ch := b.start(t, ctx, spec, out)
		out.waitFor(t)
		cancel()
		res := wait(t, ch)
		assertOutcome(t, res, core.AttemptCanceled, core.ReasonCanceled, 7)
		if !strings.Contains(out.String(), "cleaned up") {
			t.Errorf("TERM handler did not finish: output %q", out.String())
		}
	})

	t.Run("IgnoredTermIsKilledAfterGrace", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := newOutput("ready")
		// An ignored TERM is inherited, so the sleep ignores it as well.
		ch := b.start(t, ctx, b.spec("trap '' TERM; sleep 1000 & echo $! > grandchild.pid; echo ready; wait"), out)
		out.waitFor(t)
		cancel()
		res := wait(t, ch)
		assertOutcome(t, res, core.AttemptCanceled, core.ReasonCanceled, -1)
		waitGone(t, readPid(t, filepath.Join(b.dir, "grandchild.pid")))
	})

	t.Run("LeftoverProcessIsKilled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var out output
		// The background sleep holds the output pipe open: Run must not wait for it.
		spec := b.spec("sleep 1000 & echo $! > leftover.pid; echo done")
		spec.Grace = time.Hour // the leftover kill must not wait for a grace
		start := time.Now()
		res := b.run(t, context.Background(), spec, &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		if d := time.Since(start); d > notHung {
			t.Errorf("Run took %s with a process left behind", d)
		}
		if out.String() != "done\n" {
			t.Errorf("output = %q", out.String())
		}
		waitGone(t, readPid(t, filepath.Join(b.dir, "leftover.pid")))
	})

	t.Run("EscapedProcessDoesNotHangRun", func(t *testing.T) {
		t.Parallel()
		if _, err := exec.LookPath("setsid"); err != nil {
			t.Skip("setsid not installed")
		}
		b := setup(t)
		// A background job is not a group leader, so setsid execs in place and
		// $! stays the escaped process; the script waits until it has left the group.
		script := `setsid sh -c 'touch escaped; exec sleep 1000' & echo $! > escaped.pid
while [ ! -e escaped ]; do sleep 0.01; done`
		res := b.run(t, context.Background(), b.spec(script), io.Discard)
		pid := readPid(t, filepath.Join(b.dir, "escaped.pid"))
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
	})

	t.Run("MissingDir", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		spec := b.spec("true")
		spec.Dir = filepath.Join(b.dir, "nope")
		res := b.run(t, context.Background(), spec, io.Discard)
		assertOutcome(t, res, core.AttemptErrored, core.ReasonInfraError, -1)
		if !strings.Contains(res.Err, "working directory does not exist") {
			t.Errorf("Err = %q", res.Err)
		}
	})

	t.Run("DirIsAFile", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		spec := b.spec("true")
		spec.Dir = filepath.Join(b.dir, "file")
		if err := os.WriteFile(spec.Dir, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		res := b.run(t, context.Background(), spec, io.Discard)
		assertOutcome(t, res, core.AttemptErrored, core.ReasonInfraError, -1)
		if !strings.Contains(res.Err, "not a directory") {
			t.Errorf("Err = %q", res.Err)
		}
	})

	t.Run("OutputFailureStopsJob", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.run(t, context.Background(), b.spec("echo x; sleep 1000 & wait"), failingWriter{})
		assertOutcome(t, res, core.AttemptErrored, core.ReasonInfraError, -1)
		if !strings.Contains(res.Err, "disk full") {
			t.Errorf("Err = %q, want the writer's error", res.Err)
		}
	})
}

func TestRunInvalidSpec(t *testing.T) {
	t.Parallel()
	b := setup(t)
	valid := b.spec("true")
	tests := []struct {
		name string
		edit func(*executor.Spec)
		out  io.Writer
	}{
		{"ErrEmptyScript", func(s *executor.Spec) { s.Script = "" }, io.Discard},
		{"ErrEmptyDir", func(s *executor.Spec) { s.Dir = "" }, io.Discard},
		{"ErrNegativeTimeout", func(s *executor.Spec) { s.Timeout = -time.Second }, io.Discard},
		{"ErrNegativeGrace", func(s *executor.Spec) { s.Grace = -time.Second }, io.Discard},
		{"ErrNilOutput", func(*executor.Spec) {}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := valid
			tt.edit(&spec)
			_, err := b.shell.Run(context.Background(), spec, tt.out)
			if !errors.Is(err, core.ErrInvalid) {
				t.Errorf("err = %v, want KindInvalid", err)
			}
		})
	}
}

// output is a goroutine-safe buffer that signals when a marker appears.
type output struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
}

func newOutput(marker string) *output {
	return &output{marker: marker, seen: make(chan struct{})}
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.buf.Write(p)
	if o.seen != nil && o.marker != "" && strings.Contains(o.buf.String(), o.marker) {
		close(o.seen)
		o.marker = ""
	}
	return n, err
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func (o *output) waitFor(t *testing.T) {
	t.Helper()
	select {
	case <-o.seen:
	case <-time.After(notHung):
		t.Fatalf("job never printed its marker; output so far %q", o.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// testLog sends the executor's log lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
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
