//go:build linux

package executor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
)

// requireBwrap skips the sandbox tests on a developer machine without
// bubblewrap, and fails them in CI, which must run them.
func requireBwrap(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("bwrap (bubblewrap) is not installed, and CI must run the sandbox tests: install the bubblewrap package")
	}
	t.Skip("!!! SKIPPING THE SANDBOX TESTS: bwrap (bubblewrap) is not installed; install the bubblewrap package to run them")
}

func newSandbox(t *testing.T, opts executor.SandboxOptions) *executor.Sandbox {
	t.Helper()
	sb, err := executor.NewSandbox(testLogger(t), opts)
	if err != nil {
		t.Fatalf("NewSandbox: %v", err)
	}
	return sb
}

// setupSandbox returns a bundle running jobs in a default Sandbox. Its
// background processes have pids of their own namespace, so they are known
// by a marker in their command line instead, which the host can see.
func setupSandbox(t *testing.T) bundle {
	t.Helper()
	return sandboxBundle(t, newSandbox(t, executor.SandboxOptions{}))
}

func sandboxBundle(t *testing.T, sb *executor.Sandbox) bundle {
	t.Helper()
	dir, marker := t.TempDir(), newMarker(t)
	return bundle{
		ex:  sb,
		dir: dir,
		background: func(name string) string {
			// In a session of its own, out of reach of any process group
			// signal: only the PID namespace catches it.
			return fmt.Sprintf("setsid sh -c 'sleep 1000; :' %s-%s & touch %s.started", marker, name, name)
		},
		gone: func(t *testing.T, name string) {
			t.Helper()
			if _, err := os.Stat(filepath.Join(dir, name+".started")); err != nil {
				t.Fatalf("background process %s never started: %v", name, err)
			}
			waitNoProcessWith(t, marker+"-"+name)
		},
	}
}

// probeBuild is the probe, built once for all the tests that need it.
var probeBuild struct {
	once sync.Once
	path string
	err  error
}

// buildProbe builds testdata/probe as a static binary, which runs in the
// sandbox whatever libraries it has.
func buildProbe(t *testing.T) string {
	t.Helper()
	probeBuild.once.Do(func() { probeBuild.path, probeBuild.err = compileProbe() })
	if probeBuild.err != nil {
		t.Fatal(probeBuild.err)
	}
	return probeBuild.path
}

func compileProbe() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the sandbox tests build a probe with the go command: %w", err)
	}
	src, err := filepath.Abs(filepath.Join("testdata", "probe"))
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "deltaci-probe-")
	if err != nil {
		return "", err
	}
	atExit = append(atExit, func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "probe")
	cmd := exec.Command(goTool, "build", "-buildvcs=false", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the probe: %v\n%s", err, out)
	}
	return bin, nil
}

// installProbe copies the probe into dir, the only place a job can run it from.
func installProbe(t *testing.T, probe, dir string) {
	t.Helper()
	data, err := os.ReadFile(probe)
	if err != nil {
		t.Fatal(err)
	}
	// A process forked by a parallel test while the copy is open for
	// writing would hold it open until its exec, and running the probe
	// would fail with "text file busy": no fork while it is.
	syscall.ForkLock.RLock()
	err = os.WriteFile(filepath.Join(dir, "probe"), data, 0o755)
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
}

func newMarker(t *testing.T) string {
	t.Helper()
	return "deltaci-test-marker-" + rand.Text()
}

// processesWith returns the live host processes whose command line contains
// s. A zombie has an empty command line, so only living ones count.
func processesWith(t *testing.T, s string) []string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			found = append(found, filepath.Base(d)+": "+string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return found
}

// waitNoProcessWith polls until no host process has marker in its command
// line: the kernel finishes tearing a PID namespace down asynchronously.
func waitNoProcessWith(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(notHung)
	for {
		left := processesWith(t, marker)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job processes survived the job:\n%s", strings.Join(left, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// requireProcessWith proves that the host sees the job's marked processes,
// so that their absence later means something.
func requireProcessWith(t *testing.T, marker string) {
	t.Helper()
	if len(processesWith(t, marker)) == 0 {
		t.Fatalf("no process with marker %s while the job runs: the test cannot see what it checks", marker)
	}
}

// survivors is a script that starts one process ignoring SIGTERM and one in
// its own session, both named by marker, and prints "ready". The contract's
// Timeout, Canceled and LeftoverProcessIsKilled cases check the same with
// the sandbox's background processes, which are in sessions of their own.
func survivors(marker string) string {
	return fmt.Sprintf(`sh -c 'trap "" TERM; while :; do sleep 1; done' %[1]s-ignores-term &
setsid sh -c 'while :; do sleep 1; done' %[1]s-own-session &
echo ready; wait`, marker)
}

func TestSandbox(t *testing.T) {
	t.Parallel()
	requireBwrap(t)
	probe := buildProbe(t)
	testContract(t, setupSandbox)

	t.Run("WorkspaceIsWorkingDirectoryAtItsHostPath", func(t *testing.T) {
		t.Parallel()
		b := setupSandbox(t)
		var out output
		res := b.run(t, context.Background(), b.spec("pwd; echo made inside > made-here"), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		if got := strings.TrimSpace(out.String()); got != b.dir {
			t.Errorf("pwd = %q, want the host path %q", got, b.dir)
		}
		if data, err := os.ReadFile(filepath.Join(b.dir, "made-here")); err != nil || string(data) != "made inside\n" {
			t.Errorf("file written in the workspace, seen from the host: %q, %v", data, err)
		}
	})

	t.Run("CannotWriteOutsideWorkspace", func(t *testing.T) {
		t.Parallel()
		b := setupSandbox(t)
		sibling := t.TempDir() // another workspace, say
		name := "deltaci-escape-" + rand.Text()
		targets := []string{
			"/usr/" + name, "/usr/local/" + name, "/usr/bin/" + name, "/etc/" + name, "/etc/passwd",
			"/home/" + name, "/root/" + name, "/" + name, filepath.Join(sibling, name),
		}
		var script strings.Builder
		for _, target := range targets {
			fmt.Fprintf(&script, "if (echo x >> '%[1]s') 2>/dev/null; then echo 'WROTE %[1]s'; else echo 'denied %[1]s'; fi\n", target)
		}
		// The sandbox's /tmp is its own: creating the sibling there, or
		// writing next to the workspace, does not reach the host's.
		private := []string{filepath.Join(sibling, name), "/tmp/" + name, filepath.Join(filepath.Dir(b.dir), name)}
		fmt.Fprintf(&script, "mkdir -p '%s'\n", sibling)
		for _, target := range private {
			fmt.Fprintf(&script, "echo x > '%s'\n", target)
		}
		script.WriteString("echo inside > inside.txt\n")
		passwd, err := os.ReadFile("/etc/passwd")
		if err != nil {
			t.Fatal(err)
		}

		var out output
		res := b.run(t, context.Background(), b.spec(script.String()), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		for _, target := range targets {
			if !strings.Contains(out.String(), "denied "+target+"\n") {
				t.Errorf("writing %s was not denied; output:\n%s", target, out.String())
			}
		}
		for _, target := range append(targets, private...) {
			if target == "/etc/passwd" {
				continue
			}
			if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s exists on the host after the job (stat: %v)", target, err)
				_ = os.Remove(target)
			}
		}
		if after, err := os.ReadFile("/etc/passwd"); err != nil || !bytes.Equal(after, passwd) {
			t.Errorf("/etc/passwd changed on the host (%v)", err)
		}
		if data, err := os.ReadFile(filepath.Join(b.dir, "inside.txt")); err != nil || string(data) != "inside\n" {
			t.Errorf("the workspace write is not on the host: %q, %v", data, err)
		}
	})

	t.Run("NoNetworkByDefault", func(t *testing.T) {
		t.Parallel()
		b := setupSandbox(t)
		installProbe(t, probe, b.dir)
		ln := listen(t)
		var out output
		res := b.run(t, context.Background(), b.spec("./probe connect "+ln.addr), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		ln.settle(t)
		if !strings.Contains(out.String(), "connect failed") || ln.accepted() != 0 {
			t.Errorf("the job reached the runner's loopback (accepted %d); output:\n%s", ln.accepted(), out.String())
		}
	})

	t.Run("NetworkWhenAsked", func(t *testing.T) {
		t.Parallel()
		requireNetwork(t)
		b := setupSandbox(t)
		installProbe(t, probe, b.dir)
		ln := listen(t)
		var out output
		// A network of its own: an interface and a default route, but not
		// the runner's loopback.
		spec := b.spec("./probe interfaces; ./probe gateways; ./probe connect " + ln.addr + " || true")
		spec.Network = true
		res := b.run(t, context.Background(), spec, &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		requireNetworkUp(t, out.String())
		ln.settle(t)
		if !strings.Contains(out.String(), "connect failed") || ln.accepted() != 0 {
			t.Errorf("the job reached the runner's loopback (accepted %d); output:\n%s", ln.accepted(), out.String())
		}
	})

	t.Run("CannotSeeRunnerProcesses", func(t *testing.T) {
		t.Parallel()
		b := setupSandbox(t)
		var out output
		script := fmt.Sprintf(`for p in /proc/[0-9]*; do echo "${p#/proc/}: $(tr '\0' ' ' < $p/cmdline)"; done
if kill -0 %d 2>/dev/null; then echo SEES-"RUNNER"; fi`, os.Getpid())
		res := b.run(t, context.Background(), b.spec(script), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		// The sandbox's init, the shell, and the shell's children of the moment.
		if len(lines) > 6 || !strings.HasPrefix(lines[0], "1: bwrap") {
			t.Errorf("the job sees more than its own processes:\n%s", out.String())
		}
		if self := filepath.Base(os.Args[0]); strings.Contains(out.String(), self) || strings.Contains(out.String(), "SEES-RUNNER") {
			t.Errorf("the job sees the runner (%s, pid %d):\n%s", self, os.Getpid(), out.String())
		}
	})

	t.Run("NoCapabilities", func(t *testing.T) {
		t.Parallel()
		b := setupSandbox(t)
		var out output
		// A runner running as root must not hand root's capabilities to the
		// job: with CAP_SYS_ADMIN it could remount the system read-write.
		res := b.run(t, context.Background(), b.spec("grep '^Cap' /proc/self/status; mount -o remount,rw /usr 2>/dev/null && echo REMOUNTED || true"), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		sets := regexp.MustCompile(`(?m)^Cap(Inh|Prm|Eff|Bnd|Amb):\s+0+$`).FindAllString(out.String(), -1)
		if len(sets) != 5 || strings.Contains(out.String(), "REMOUNTED") {
			t.Errorf("the job has capabilities:\n%s", out.String())
		}
	})

	t.Run("NoTIOCSTI", func(t *testing.T) {
		t.Parallel()
		testTIOCSTI(t, probe, "sandbox")
	})

	t.Run("DefaultLimits", func(t *testing.T) {
		t.Parallel()
		b := setupSandbox(t)
		var out output
		res := b.run(t, context.Background(), b.spec("cat /proc/self/limits"), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		own := hardLimits(t)
		for name, want := range map[string]uint64{
			"Max processes":     4096,
			"Max open files":    65536,
			"Max address space": 64 << 30,
			"Max file size":     16 << 30,
		} {
			want = min(want, own[name])
			if !regexp.MustCompile(`(?m)^` + name + ` +` + strconv.FormatUint(want, 10) + ` +` + strconv.FormatUint(want, 10) + ` `).MatchString(out.String()) {
				t.Errorf("job limit %q is not %d (soft and hard):\n%s", name, want, out.String())
			}
		}
	})

	t.Run("LimitsAreEnforced", func(t *testing.T) {
		t.Parallel()
		sb := newSandbox(t, executor.SandboxOptions{Limits: executor.Limits{
			MaxProcesses: 512, OpenFiles: 64, AddressSpace: 8 << 30, FileSize: 1 << 20,
		}})
		b := sandboxBundle(t, sb)
		var out output
		script := `ulimit -n
if head -c 2097152 /dev/zero > big; then echo "wrote past the file size limit"; fi
wc -c < big
cat /proc/self/limits`
		res := b.run(t, context.Background(), b.spec(script), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		if !strings.HasPrefix(out.String(), "64\n") {
			t.Errorf("ulimit -n in the job is not 64:\n%s", out.String())
		}
		if strings.Contains(out.String(), "wrote past") || !strings.Contains(out.String(), "\n1048576\n") {
			t.Errorf("the file size limit was not enforced:\n%s", out.String())
		}
		for _, want := range []string{`Max processes +512 +512 `, `Max address space +8589934592 +8589934592 `} {
			if !regexp.MustCompile(`(?m)^` + want).MatchString(out.String()) {
				t.Errorf("job limits lack %q:\n%s", want, out.String())
			}
		}
	})

	t.Run("CancelKillsEscapedProcesses", func(t *testing.T) {
		t.Parallel()
		b := setupSandbox(t)
		marker := newMarker(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := newOutput("ready")
		ch := b.start(t, ctx, b.spec(survivors(marker)), out)
		out.waitFor(t)
		requireProcessWith(t, marker)
		cancel()
		res := wait(t, ch)
		assertOutcome(t, res, core.AttemptCanceled, core.ReasonCanceled, -1)
		waitNoProcessWith(t, marker)
	})

	t.Run("WorkspaceHoldingSystemDirs", func(t *testing.T) {
		t.Parallel()
		b := setupSandbox(t)
		spec := b.spec("true")
		spec.Dir = "/"
		res := b.run(t, context.Background(), spec, io.Discard)
		assertOutcome(t, res, core.AttemptErrored, core.ReasonInfraError, -1)
		if !strings.Contains(res.Err, "system directories") {
			t.Errorf("Err = %q", res.Err)
		}
	})

	t.Run("SetupFailureIsInfraError", func(t *testing.T) {
		t.Parallel()
		extra := t.TempDir()
		sb := newSandbox(t, executor.SandboxOptions{ReadOnly: []string{extra}})
		b := sandboxBundle(t, sb)
		// Gone between configuration and the job: bwrap cannot mount it.
		if err := os.Remove(extra); err != nil {
			t.Fatal(err)
		}
		var out output
		res := b.run(t, context.Background(), b.spec("touch started"), &out)
		assertOutcome(t, res, core.AttemptErrored, core.ReasonInfraError, -1)
		if !strings.Contains(res.Err, "sandbox setup failed: bwrap: ") || !strings.Contains(res.Err, extra) {
			t.Errorf("Err = %q, want bwrap's own message", res.Err)
		}
		if _, err := os.Stat(filepath.Join(b.dir, "started")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the script ran although the sandbox was not set up (stat: %v)", err)
		}
	})

	t.Run("ExtraReadOnlyPath", func(t *testing.T) {
		t.Parallel()
		extra := t.TempDir()
		if err := os.WriteFile(filepath.Join(extra, "tool"), []byte("tool\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		sb := newSandbox(t, executor.SandboxOptions{ReadOnly: []string{extra}})
		b := sandboxBundle(t, sb)
		var out output
		script := fmt.Sprintf("cat %[1]s/tool; if (echo x > %[1]s/tool) 2>/dev/null; then echo WROTE; fi", extra)
		res := b.run(t, context.Background(), b.spec(script), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		if out.String() != "tool\n" {
			t.Errorf("output = %q, want the file readable and not writable", out.String())
		}
	})
}

func TestSandboxWithoutBwrap(t *testing.T) {
	t.Parallel()
	const msg = "bubblewrap (bwrap) is not installed: install the bubblewrap package or run this runner with --executor shell"

	t.Run("Missing", func(t *testing.T) {
		t.Parallel()
		sb, err := executor.NewSandbox(testLogger(t), executor.SandboxOptions{Bwrap: filepath.Join(t.TempDir(), "bwrap")})
		if !errors.Is(err, core.ErrUnavailable) || !strings.Contains(err.Error(), msg) {
			t.Fatalf("NewSandbox error = %v, want KindUnavailable with %q", err, msg)
		}
		// A runner that goes on anyway must refuse the job, never run it.
		dir := t.TempDir()
		res, err := sb.Run(context.Background(), executor.Spec{Script: "touch started", Dir: dir}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		assertOutcome(t, res, core.AttemptErrored, core.ReasonInfraError, -1)
		if !strings.Contains(res.Err, msg) {
			t.Errorf("Err = %q, want %q", res.Err, msg)
		}
		if _, err := os.Stat(filepath.Join(dir, "started")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the job ran without a sandbox (stat: %v)", err)
		}
	})

	t.Run("ZeroSandbox", func(t *testing.T) {
		t.Parallel()
		var sb executor.Sandbox
		res, err := sb.Run(context.Background(), executor.Spec{Script: "true", Dir: t.TempDir()}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		assertOutcome(t, res, core.AttemptErrored, core.ReasonInfraError, -1)
	})

	t.Run("ErrInvalidOptions", func(t *testing.T) {
		t.Parallel()
		for _, opts := range []executor.SandboxOptions{
			{Limits: executor.Limits{OpenFiles: -2}},
			{ReadOnly: []string{"relative/path"}},
			{ReadOnly: []string{filepath.Join(t.TempDir(), "missing")}},
		} {
			if _, err := executor.NewSandbox(testLogger(t), opts); !errors.Is(err, core.ErrInvalid) {
				t.Errorf("NewSandbox(%+v) error = %v, want KindInvalid", opts, err)
			}
		}
	})
}

// tiocstiHelperEnv names the workspace of the helper process of
// testTIOCSTI, and tiocstiExecutorEnv the executor it runs the probe with.
const (
	tiocstiHelperEnv   = "DELTACI_TIOCSTI_HELPER_DIR"
	tiocstiExecutorEnv = "DELTACI_TIOCSTI_EXECUTOR"
)

// testTIOCSTI runs a job from a process that has a controlling terminal,
// the way a runner started from a shell does, and checks that the job
// cannot push input into it (CVE-2017-5226).
func testTIOCSTI(t *testing.T, probe, executorName string) {
	dir := t.TempDir()
	installProbe(t, probe, dir)
	ptm, pts := openPTY(t)
	defer ptm.Close()
	defer pts.Close()
	withTerminal := func(cmd *exec.Cmd) *exec.Cmd {
		cmd.Stdin = pts
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		return cmd
	}

	// Control: outside the sandbox, the probe can inject, unless this kernel
	// refuses TIOCSTI altogether (dev.tty.legacy_tiocsti=0).
	control, err := withTerminal(exec.Command(filepath.Join(dir, "probe"), "tiocsti")).CombinedOutput()
	if strings.Contains(string(control), "INJECTED") {
		t.Logf("control: the probe injects from a plain process:\n%s", control)
	} else {
		t.Logf("control: this kernel refuses TIOCSTI even without a sandbox (%v), so this test cannot fail here:\n%s", err, control)
	}

	helper := withTerminal(exec.Command(os.Args[0], "-test.run=^TestSandboxTIOCSTIHelper$", "-test.count=1", "-test.timeout=2m", "-test.v"))
	helper.Env = append(os.Environ(), tiocstiHelperEnv+"="+dir, tiocstiExecutorEnv+"="+executorName)
	out, err := helper.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestSandboxTIOCSTIHelper") {
		t.Errorf("helper process failed (%v):\n%s", err, out)
	}
}

// TestSandboxTIOCSTIHelper is the helper process of testTIOCSTI, which has
// a terminal as its controlling terminal and stdin.
func TestSandboxTIOCSTIHelper(t *testing.T) {
	dir := os.Getenv(tiocstiHelperEnv)
	if dir == "" {
		t.Skip("only runs as the helper process of TestSandbox/NoTIOCSTI")
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("the helper has no controlling terminal: %v", err)
	}
	tty.Close()
	var ex executor.Executor
	if os.Getenv(tiocstiExecutorEnv) == "shell" {
		ex = executor.NewShell(testLogger(t))
	} else {
		ex = newSandbox(t, executor.SandboxOptions{})
	}
	var out output
	res, err := ex.Run(context.Background(), executor.Spec{Script: "./probe tiocsti", Dir: dir, Env: []string{"PATH=/usr/bin:/bin"}}, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("probe output:\n%s", out.String())
	assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
	if strings.Contains(out.String(), "INJECTED") || !strings.Contains(out.String(), "/dev/tty:") {
		t.Errorf("the job reached the runner's terminal with TIOCSTI:\n%s", out.String())
	}
}

// openPTY opens a new pseudo-terminal pair.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	ioctl := func(req uintptr, arg unsafe.Pointer) {
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, ptm.Fd(), req, uintptr(arg)); errno != 0 {
			ptm.Close()
			t.Fatalf("pseudo-terminal ioctl %#x: %v", req, errno)
		}
	}
	var unlock int32
	ioctl(syscall.TIOCSPTLCK, unsafe.Pointer(&unlock))
	var n uint32
	ioctl(syscall.TIOCGPTN, unsafe.Pointer(&n))
	pts, err = os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		ptm.Close()
		t.Fatalf("opening the pseudo-terminal's other end: %v", err)
	}
	return ptm, pts
}

// listener is a TCP listener that counts the connections it accepts.
//
// A connection exists once the kernel has completed its handshake, before
// anything accepts it, so a job may print CONNECTED and exit while the
// listener has yet to see it: count only after settle.
type listener struct {
	addr string

	mu   sync.Mutex
	from []string      // the remote address of each accepted connection
	own  int           // of them, settle's
	grew chan struct{} // closed when from grows
}

// saw records a connection accepted from remote.
func (l *listener) saw(remote string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.from = append(l.from, remote)
	if l.grew != nil {
		close(l.grew)
		l.grew = nil
	}
}

// settle returns once the listener has accepted every connection made
// before the call: it connects itself and waits for that connection, which
// the kernel queues behind them.
func (l *listener) settle(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", dialable(t, l.addr), notHung)
	if err != nil {
		t.Fatalf("connecting to the listener on %s to settle it: %v", l.addr, err)
	}
	self := c.LocalAddr().String()
	c.Close()
	deadline := time.After(notHung)
	for {
		l.mu.Lock()
		if slices.Contains(l.from, self) {
			l.own++
			l.mu.Unlock()
			return
		}
		if l.grew == nil {
			l.grew = make(chan struct{})
		}
		grew := l.grew
		l.mu.Unlock()
		select {
		case <-grew:
		case <-deadline:
			t.Fatalf("the listener on %s did not accept a connection from %s", l.addr, self)
		}
	}
}

// dialable adds to a link-local address the zone that a listener's address
// lacks: the host interface that holds it.
func dialable(t *testing.T, addr string) string {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is6() || !ap.Addr().IsLinkLocalUnicast() || ap.Addr().Zone() != "" {
		return addr
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		addrs, err := i.Addrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if ipnet, ok := a.(*net.IPNet); ok && ipnet.IP.Equal(net.IP(ap.Addr().AsSlice())) {
				return netip.AddrPortFrom(ap.Addr().WithZone(i.Name), ap.Port()).String()
			}
		}
	}
	t.Fatalf("no interface of this host holds %s", ap.Addr())
	return ""
}

// accepted returns how many connections the listener accepted, settle's
// not counted.
func (l *listener) accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.from) - l.own
}

// listen returns a listener on the runner's loopback.
func listen(t *testing.T) *listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, ln)
}

// serve records the connections ln accepts until the test ends.
func serve(t *testing.T, ln net.Listener) *listener {
	t.Helper()
	l := &listener{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.saw(c.RemoteAddr().String())
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return l
}

// hardLimits returns this process's hard limits from /proc/self/limits, by
// name; the sandbox cannot go above them.
func hardLimits(t *testing.T) map[string]uint64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		t.Fatal(err)
	}
	limits := map[string]uint64{}
	for _, line := range strings.Split(string(data), "\n") {
		// The name is a fixed-width column; the limits follow.
		const nameWidth = 26
		if !strings.HasPrefix(line, "Max ") || len(line) <= nameWidth {
			continue
		}
		fields := strings.Fields(line[nameWidth:])
		if len(fields) < 2 {
			continue
		}
		if fields[1] == "unlimited" {
			limits[strings.TrimSpace(line[:nameWidth])] = ^uint64(0)
		} else if v, err := strconv.ParseUint(fields[1], 10, 64); err == nil {
			limits[strings.TrimSpace(line[:nameWidth])] = v
		}
	}
	return limits
}
