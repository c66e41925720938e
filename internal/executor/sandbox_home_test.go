//go:build linux

package executor_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
)

// toolJobTimeout bounds a job that runs a real toolchain cold, on a
// machine that may be busy: it proves "did not hang", not a speed.
const toolJobTimeout = 5 * time.Minute

// homeBundle is a sandbox bundle whose jobs get a home of their own.
func homeBundle(t *testing.T, opts executor.SandboxOptions) (bundle, string) {
	t.Helper()
	requireBwrap(t)
	b := sandboxBundle(t, newSandbox(t, opts))
	return b, t.TempDir()
}

// goTool returns the go command and the sandbox options that let a job see
// its toolchain: read-only, as the system directories are.
func goTool(t *testing.T) (string, executor.SandboxOptions) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("!!! SKIPPING: the go command is not on PATH")
	}
	out, err := exec.Command(goBin, "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	goroot := strings.TrimSpace(string(out))
	var opts executor.SandboxOptions
	if !strings.HasPrefix(goroot, "/usr/") {
		opts.ReadOnly = []string{goroot}
	}
	return filepath.Join(goroot, "bin"), opts
}

// writeFiles writes files (path relative to dir: content) into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// filesUnder counts the regular files below dir, and returns the first
// one whose name ends with suffix.
func filesUnder(t *testing.T, dir, suffix string) (int, string) {
	t.Helper()
	n, found := 0, ""
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
			if found == "" && strings.HasSuffix(p, suffix) {
				found = p
			}
		}
		return nil
	})
	return n, found
}

// tinyModule is a Go module without dependencies, built without network.
var tinyModule = map[string]string{
	"go.mod":  "module example.com/tiny\n\ngo 1.22\n",
	"main.go": "package main\n\nfunc main() { println(\"tiny ran\") }\n",
}

// TestSandboxGoBuildCachesInHome: the failure that made homes necessary.
// Go's build cache defaults to $XDG_CACHE_HOME/go-build and its module
// cache to $HOME/go/pkg/mod; in the sandbox both must be writable, and
// land in the job's home rather than its workspace.
func TestSandboxGoBuildCachesInHome(t *testing.T) {
	t.Parallel()
	goBin, opts := goTool(t)
	b, home := homeBundle(t, opts)
	writeFiles(t, b.dir, tinyModule)
	var out output
	spec := b.spec("go build -o tiny . && ./tiny && go env GOCACHE GOMODCACHE")
	spec.Env = []string{"PATH=" + goBin + ":/usr/bin:/bin"}
	spec.Home, spec.Timeout = home, toolJobTimeout
	res := b.run(t, context.Background(), spec, &out)
	assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
	want := "tiny ran\n" + filepath.Join(home, ".cache", "go-build") + "\n" + filepath.Join(home, "go", "pkg", "mod") + "\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if n, _ := filesUnder(t, filepath.Join(home, ".cache", "go-build"), ""); n < 10 {
		t.Errorf("the build cache in the job's home holds %d files, want the compiled packages", n)
	}
	if _, err := os.Stat(filepath.Join(b.dir, ".cache")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a cache went into the workspace (stat: %v)", err)
	}
}

// TestSandboxGoBuildWithoutHomeFails shows what a job without a home
// meets: the runner's HOME is not in the sandbox, and the root is
// read-only. The test above is the fix for exactly this.
func TestSandboxGoBuildWithoutHomeFails(t *testing.T) {
	t.Parallel()
	goBin, opts := goTool(t)
	b, _ := homeBundle(t, opts)
	writeFiles(t, b.dir, tinyModule)
	var out output
	spec := b.spec("go build -o tiny .")
	spec.Env = []string{"PATH=" + goBin + ":/usr/bin:/bin", "HOME=/root"}
	spec.Timeout = toolJobTimeout
	res := b.run(t, context.Background(), spec, &out)
	assertOutcome(t, res, core.AttemptFailed, core.ReasonExitCode, 1)
	if !strings.Contains(out.String(), "build cache") {
		t.Errorf("output = %q, want go's build cache error", out.String())
	}
}

// TestSandboxNpmCachesInHome: npm's cache defaults to ~/.npm. Offline, a
// package packed in the workspace is added to it.
func TestSandboxNpmCachesInHome(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("!!! SKIPPING: npm is not installed")
	}
	b, home := homeBundle(t, executor.SandboxOptions{})
	writeFiles(t, b.dir, map[string]string{"pkg/package.json": `{"name": "tiny", "version": "1.0.0"}`})
	var out output
	spec := b.spec("cd pkg && npm pack --offline --silent && npm cache add ./tiny-1.0.0.tgz --offline && npm config get cache")
	spec.Home, spec.Timeout = home, toolJobTimeout
	res := b.run(t, context.Background(), spec, &out)
	assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
	if !strings.HasSuffix(out.String(), filepath.Join(home, ".npm")+"\n") {
		t.Errorf("output:\n%s\nwant npm's cache in the job's home", out.String())
	}
	if n, _ := filesUnder(t, filepath.Join(home, ".npm", "_cacache", "content-v2"), ""); n == 0 {
		t.Errorf("npm's cache in the job's home holds no content; output:\n%s", out.String())
	}
}

// TestSandboxPipCachesInHome: pip's cache defaults to ~/.cache/pip. Offline,
// pip builds a wheel of a local source package and keeps it there.
func TestSandboxPipCachesInHome(t *testing.T) {
	t.Parallel()
	// The sandbox sees /usr, so the system's Python is the one a job runs.
	for _, args := range [][]string{{"-m", "pip", "--version"}, {"-c", "import setuptools"}} {
		if out, err := exec.Command("/usr/bin/python3", args...).CombinedOutput(); err != nil {
			t.Skipf("!!! SKIPPING: /usr/bin/python3 lacks pip or setuptools (%q: %v) %s", args, err, out)
		}
	}
	b, home := homeBundle(t, executor.SandboxOptions{})
	writeFiles(t, b.dir, map[string]string{
		"pkg/setup.py":            "from setuptools import setup\nsetup(name='tinypkg', version='1.0', packages=['tinypkg'])\n",
		"pkg/tinypkg/__init__.py": "",
	})
	var out output
	spec := b.spec(`python3 -m pip --version
(cd pkg && python3 setup.py -q sdist) >/dev/null 2>&1
python3 -m pip wheel --quiet --no-index --no-build-isolation --no-deps -w wheels pkg/dist/tinypkg-1.0.tar.gz
python3 -m pip cache dir`)
	spec.Home, spec.Timeout = home, toolJobTimeout
	res := b.run(t, context.Background(), spec, &out)
	assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
	if !strings.HasSuffix(out.String(), filepath.Join(home, ".cache", "pip")+"\n") {
		t.Errorf("output:\n%s\nwant pip's cache in the job's home", out.String())
	}
	if _, wheel := filesUnder(t, filepath.Join(home, ".cache", "pip", "wheels"), "tinypkg-1.0-py3-none-any.whl"); wheel == "" {
		t.Errorf("pip's wheel cache in the job's home lacks the built wheel; output:\n%s", out.String())
	}
}

// TestSandboxJobCannotWriteBesideItsHome: a job writes its home, its
// workspace and its /tmp, and nothing else: not the runner's home, not
// another job's home, not next to its own.
func TestSandboxJobCannotWriteBesideItsHome(t *testing.T) {
	t.Parallel()
	b, home := homeBundle(t, executor.SandboxOptions{})
	other := t.TempDir() // another attempt's home
	runnerHome, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	name := "deltaci-escape-" + rand.Text()
	targets := []string{filepath.Join(runnerHome, name), filepath.Join(other, name), "/" + name}
	var script strings.Builder
	for _, target := range targets {
		fmt.Fprintf(&script, "if (echo x >> '%[1]s') 2>/dev/null; then echo 'WROTE %[1]s'; else echo 'denied %[1]s'; fi\n", target)
	}
	// The directory above the home is the sandbox's own tmpfs (the tests'
	// homes are under /tmp) or read-only: either way the host never sees it.
	private := filepath.Join(filepath.Dir(home), name)
	fmt.Fprintf(&script, "echo x > '%s' 2>/dev/null || true\n", private)
	script.WriteString("echo home > \"$HOME/mine\"; echo ws > mine; echo tmp > /tmp/mine; cat /tmp/mine\n")
	var out output
	spec := b.spec(script.String())
	spec.Home = home
	res := b.run(t, context.Background(), spec, &out)
	assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
	for _, target := range append(targets, private) {
		if target != private && !strings.Contains(out.String(), "denied "+target+"\n") {
			t.Errorf("writing %s was not denied; output:\n%s", target, out.String())
		}
		if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists on the host after the job (stat: %v)", target, err)
			_ = os.Remove(target)
		}
	}
	if !strings.HasSuffix(out.String(), "tmp\n") {
		t.Errorf("the job could not use its /tmp; output:\n%s", out.String())
	}
	for dir, want := range map[string]string{home: "home\n", b.dir: "ws\n"} {
		if data, err := os.ReadFile(filepath.Join(dir, "mine")); err != nil || string(data) != want {
			t.Errorf("%s/mine on the host: %q, %v; want %q", dir, data, err, want)
		}
	}
}

// TestSandboxHomeCountsAgainstWorkspaceCap: the home is on the runner's
// disk too, so filling it is stopped like filling the workspace.
func TestSandboxHomeCountsAgainstWorkspaceCap(t *testing.T) {
	t.Parallel()
	b, home := homeBundle(t, executor.SandboxOptions{Limits: executor.Limits{WorkspaceSize: 4 << 20}})
	// Each half stays under the cap; together they are past it.
	spec := b.spec(`head -c 3145728 /dev/zero > big
head -c 3145728 /dev/zero > "$HOME/big"
echo written
while :; do sleep 1; done`)
	spec.Home, spec.Grace = home, time.Hour
	out := newOutput("written")
	ch := b.start(t, context.Background(), spec, out)
	out.waitFor(t)
	res := wait(t, ch)
	assertOutcome(t, res, core.AttemptFailed, core.ReasonResourceLimit, -1)
	if !strings.Contains(res.Err, "the workspace and home took") || !strings.Contains(res.Err, "past its limit of 4 MiB") {
		t.Errorf("Err = %q, want the workspace and home's limit", res.Err)
	}
}

// TestSandboxHomeHoldingSystemDirs: a home is mounted read-write, so one
// that holds /usr or /etc would make them writable.
func TestSandboxHomeHoldingSystemDirs(t *testing.T) {
	t.Parallel()
	b, _ := homeBundle(t, executor.SandboxOptions{})
	spec := b.spec("true")
	spec.Home = "/"
	res := b.run(t, context.Background(), spec, &output{})
	assertOutcome(t, res, core.AttemptErrored, core.ReasonInfraError, -1)
	if !strings.Contains(res.Err, "home directory contains system directories") {
		t.Errorf("Err = %q", res.Err)
	}
}
