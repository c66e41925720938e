package analysis

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// scratch is the package's temporary directory, removed after the tests.
var scratch string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "analysis-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scratch = dir
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// sampleModule's packages and what their tests do; the tests below
// assert what each report tool makes of them.
var sampleModule = map[string]string{
	"go.mod": "module example.com/sample\n\ngo 1.22\n",
	"calc/calc.go": `package calc

func Add(a, b int) int { return a + b }
`,
	"calc/calc_test.go": `package calc

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAdd(t *testing.T) {
	if Add(2, 2) != 4 {
		t.Fatal("2+2 is not 4")
	}
}

func TestSkipped(t *testing.T) {
	t.Skip("not on this platform")
}

func TestTable(t *testing.T) {
	for _, c := range []struct{ name string; a, b, want int }{{"small", 1, 1, 2}, {"large", 2, 2, 5}} {
		t.Run(c.name, func(t *testing.T) {
			if got := Add(c.a, c.b); got != c.want {
				t.Errorf("Add(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	start := time.Now()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no config after %v: %v", time.Since(start), err)
	}
}
`,
	"panics/panics_test.go": `package panics

import "testing"

func TestIndex(t *testing.T) {
	var xs []int
	i := 3
	_ = xs[i]
}
`,
	"broken/broken_test.go": `package broken

import "testing"

func TestNever(t *testing.T) {
	undefinedFunction()
}
`,
	"hangs/hangs_test.go": `package hangs

import (
	"testing"
	"time"
)

func TestQuick(t *testing.T) {}

func TestForever(t *testing.T) {
	<-time.After(time.Hour)
}
`,
}

var (
	moduleOnce sync.Once
	moduleDir  string
	moduleErr  error
)

// sampleDir writes sampleModule once for the package's tests.
func sampleDir(t *testing.T) string {
	t.Helper()
	moduleOnce.Do(func() {
		moduleDir = filepath.Join(scratch, "sample")
		for name, body := range sampleModule {
			p := filepath.Join(moduleDir, name)
			if moduleErr = os.MkdirAll(filepath.Dir(p), 0o755); moduleErr != nil {
				return
			}
			if moduleErr = os.WriteFile(p, []byte(body), 0o644); moduleErr != nil {
				return
			}
		}
	})
	if moduleErr != nil {
		t.Fatal(moduleErr)
	}
	return moduleDir
}

// goTestArgs are the flags every run of the sample module uses: a timeout
// that ends TestForever (the other tests take milliseconds).
var goTestArgs = []string{"-timeout", "5s", "./..."}

// runInSample runs a command in the sample module and returns its stdout;
// a non-zero exit is expected (the module has failing tests).
func runInSample(t *testing.T, stdin []byte, name string, args ...string) ([]byte, []byte) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = sampleDir(t)
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("%s %v: %v\n%s", name, args, err, errb.Bytes())
	}
	return out.Bytes(), errb.Bytes()
}

// goRunTool runs a Go tool at a version through the module proxy; offline
// it skips loudly, except under CI=true where the tool must run.
func goRunTool(t *testing.T, stdin []byte, tool string, args ...string) []byte {
	t.Helper()
	probe := exec.Command("go", "run", tool, "--help")
	probe.Dir = scratch
	if out, err := probe.CombinedOutput(); err != nil && bytes.Contains(out, []byte("go: ")) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("go run %s: %v\n%s", tool, err, out)
		}
		t.Skipf("!!! go run %s failed (offline?); this test runs under CI=true: %s", tool, out)
	}
	out, _ := runInSample(t, stdin, "go", append([]string{"run", tool}, args...)...)
	return out
}
