//go:build unix

package executor_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// atExit are run once all the tests have run; tests append to it only
// from within a sync.Once.
var atExit []func()

func TestMain(m *testing.M) {
	if err := os.Setenv(leakVar, "leaked"); err != nil {
		panic(err)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		for _, f := range atExit {
			f()
		}
		os.Exit(code)
	}))
}

// bundle is an executor under test, a workspace for its jobs, and how to
// follow a job's background processes, which each executor sees differently.
type bundle struct {
	ex  executor.Executor
	dir string
	// background returns a script line that starts a long-running
	// background process, known by name.
	background func(name string) string
	// gone waits until the process that background(name) started has died.
	gone func(t *testing.T, name string)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// spec returns a Spec running script in the bundle's directory with a small,
// fixed environment.
func (b bundle) spec(script string) executor.Spec {
	return executor.Spec{Script: script, Dir: b.dir, Env: []string{"PATH=/usr/bin:/bin"}, Grace: 200 * time.Millisecond}
}

func (b bundle) run(t *testing.T, ctx context.Context, spec executor.Spec, out io.Writer) executor.Result {
	t.Helper()
	res, err := b.ex.Run(ctx, spec, out)
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
		res, err := b.ex.Run(ctx, spec, out)
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

// testContract checks the Executor lifecycle that every executor promises,
// with a fresh bundle from setup for each case.
func testContract(t *testing.T, setup func(t *testing.T) bundle) {
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
		spec.Env = []string{"PATH=/usr/bin:/bin", "DELTACI_GIVEN=yes", "SPACES=a b  c", "EQUALS=k=v", "EMPTY="}
		res := b.run(t, context.Background(), spec, &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		var got []string
		for _, kv := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			// The shell exports its working directory; nothing else may be added.
			if pwd, ok := strings.CutPrefix(kv, "PWD="); ok {
				if real, _ := filepath.EvalSymlinks(b.dir); pwd != b.dir && pwd != real {
					t.Errorf("PWD = %q, want the working directory %q", pwd, b.dir)
				}
				continue
			}
			got = append(got, kv)
		}
		want := slices.Clone(spec.Env)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("job environment:\n%q\nwant exactly the spec's (and PWD):\n%q", got, want)
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
		spec := b.spec(b.background("grandchild") + "; wait")
		spec.Timeout = 2 * time.Second // long enough to start the grandchild, even under -race
		res := b.run(t, context.Background(), spec, io.Discard)
		assertOutcome(t, res, core.AttemptTimedOut, core.ReasonTimeout, -1)
		b.gone(t, "grandchild")
	})

	t.Run("Canceled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := newOutput("ready")
		ch := b.start(t, ctx, b.spec(b.background("grandchild")+"; echo ready; wait"), out)
		out.waitFor(t)
		cancel()
		res := wait(t, ch)
		assertOutcome(t, res, core.AttemptCanceled, core.ReasonCanceled, -1)
		b.gone(t, "grandchild")
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
		// An ignored TERM is inherited, so the grandchild ignores it as well.
		ch := b.start(t, ctx, b.spec("trap '' TERM; "+b.background("grandchild")+"; echo ready; wait"), out)
		out.waitFor(t)
		cancel()
		res := wait(t, ch)
		assertOutcome(t, res, core.AttemptCanceled, core.ReasonCanceled, -1)
		b.gone(t, "grandchild")
	})

	t.Run("LeftoverProcessIsKilled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var out output
		// The background process holds the output pipe open: Run must not wait for it.
		spec := b.spec(b.background("leftover") + "; echo done")
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
		b.gone(t, "leftover")
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

	t.Run("HomeIsTheJobsHome", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		home := t.TempDir()
		var out output
		spec := b.spec(`echo "[$HOME][$XDG_CACHE_HOME]"; mkdir -p "$XDG_CACHE_HOME/tool"; echo cached > "$XDG_CACHE_HOME/tool/entry"; echo dot > ~/.rc`)
		spec.Home = home
		// The runner's own values are replaced, not kept beside.
		spec.Env = append(spec.Env, "HOME=/runner/home", "XDG_CACHE_HOME=/runner/cache")
		res := b.run(t, context.Background(), spec, &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		if want := "[" + home + "][" + home + "/.cache]\n"; out.String() != want {
			t.Errorf("output = %q, want %q", out.String(), want)
		}
		for name, want := range map[string]string{".cache/tool/entry": "cached\n", ".rc": "dot\n"} {
			if data, err := os.ReadFile(filepath.Join(home, name)); err != nil || string(data) != want {
				t.Errorf("%s in the home, seen from the host: %q, %v", name, data, err)
			}
		}
		if entries, _ := os.ReadDir(b.dir); len(entries) != 0 {
			t.Errorf("the job's home went into its workspace: %v", entries)
		}
	})

	t.Run("MissingHome", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		spec := b.spec("touch started")
		spec.Home = filepath.Join(t.TempDir(), "nope")
		res := b.run(t, context.Background(), spec, io.Discard)
		assertOutcome(t, res, core.AttemptErrored, core.ReasonInfraError, -1)
		if !strings.Contains(res.Err, "home directory does not exist") {
			t.Errorf("Err = %q", res.Err)
		}
		if _, err := os.Stat(filepath.Join(b.dir, "started")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the script ran without its home (stat: %v)", err)
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

	t.Run("InvalidSpec", func(t *testing.T) {
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
			{"ErrRelativeHome", func(s *executor.Spec) { s.Home = "home" }, io.Discard},
			{"ErrNilOutput", func(*executor.Spec) {}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				spec := valid
				tt.edit(&spec)
				_, err := b.ex.Run(context.Background(), spec, tt.out)
				if !errors.Is(err, core.ErrInvalid) {
					t.Errorf("err = %v, want KindInvalid", err)
				}
			})
		}
	})
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
