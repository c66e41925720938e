package analysis

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sortedByID orders a report's kept tests and passed ids, for tools whose
// order depends on which package finished first.
func sortedByID(r *Report) *Report {
	slices.SortStableFunc(r.Tests, func(a, b TestResult) int { return strings.Compare(a.ID(), b.ID()) })
	slices.Sort(r.Passed)
	return r
}

const pkg = "example.com/sample/"

var samplePassed = []string{pkg + "calc::TestAdd", pkg + "calc::TestTable/small", pkg + "hangs::TestQuick"}

func TestGoTestJSONOfRealGoTest(t *testing.T) {
	t.Parallel()
	out, _ := runInSample(t, nil, "go", append([]string{"test", "-json"}, goTestArgs...)...)
	rep, err := ParseGoTestJSON(bytes.NewReader(out), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, sortedByID(rep), Totals{Passed: 3, Failed: 5, Errored: 1, Skipped: 1}, []want{
		{ID: pkg + "broken", Status: StatusErrored, Message: "broken/broken_test.go:6:2: undefined: undefinedFunction",
			File: "broken/broken_test.go", Line: 6, Output: "# example.com/sample/broken"},
		{ID: pkg + "calc::TestConfig", Status: StatusFailed, Message: "calc_test.go:34: no config after", File: "calc_test.go", Line: 34},
		{ID: pkg + "calc::TestSkipped", Status: StatusSkipped, Message: "calc_test.go:17: not on this platform", File: "calc_test.go", Line: 17},
		{ID: pkg + "calc::TestTable", Status: StatusFailed, Message: "a subtest failed"},
		{ID: pkg + "calc::TestTable/large", Status: StatusFailed, Message: "calc_test.go:24: Add(2, 2) = 4, want 5", File: "calc_test.go", Line: 24},
		{ID: pkg + "hangs::TestForever", Status: StatusFailed, Message: "the test did not finish: panic: test timed out after 5s",
			File: "hangs/hangs_test.go", Line: 11, Output: "TestForever (5s)"},
		{ID: pkg + "panics::TestIndex", Status: StatusFailed, Message: "panic: runtime error: index out of range [3] with length 0",
			File: "panics/panics_test.go", Line: 8, Output: "goroutine"},
	}, samplePassed)
	if !rep.BuildFailed() {
		t.Error("BuildFailed is false for a report with a package that did not build")
	}
}

func TestJUnitOfGotestsum(t *testing.T) {
	t.Parallel()
	junit := filepath.Join(scratch, "gotestsum.xml")
	goRunTool(t, nil, "gotest.tools/gotestsum@v1.13.0", append([]string{"--junitfile", junit, "--format", "standard-quiet", "--"}, goTestArgs...)...)
	f, err := os.Open(junit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := ParseJUnit(f, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, sortedByID(rep), Totals{Passed: 3, Failed: 7, Skipped: 1}, []want{
		{ID: pkg + "broken::TestMain", Status: StatusFailed, Message: "example.com/sample/broken [build failed]"},
		{ID: pkg + "calc::TestConfig", Status: StatusFailed, Message: "calc_test.go:34: no config after", File: "calc_test.go", Line: 34},
		{ID: pkg + "calc::TestSkipped", Status: StatusSkipped, Message: "calc_test.go:17: not on this platform"},
		{ID: pkg + "calc::TestTable", Status: StatusFailed, Message: "Failed"},
		{ID: pkg + "calc::TestTable/large", Status: StatusFailed, Message: "calc_test.go:24: Add(2, 2) = 4, want 5", File: "calc_test.go", Line: 24},
		{ID: pkg + "hangs::TestForever", Status: StatusFailed, Message: "Failed"},
		{ID: pkg + "hangs::TestMain", Status: StatusFailed, Message: "panic: test timed out after 5s", File: "hangs/hangs_test.go", Line: 11},
		{ID: pkg + "panics::TestIndex", Status: StatusFailed, Message: "panic: runtime error: index out of range [3] with length 0",
			File: "panics/panics_test.go", Line: 8},
	}, samplePassed)
}

func TestJUnitOfGoJUnitReport(t *testing.T) {
	t.Parallel()
	// As a CI script pipes it: go test -v 2>&1 | go-junit-report.
	verbose, _ := runInSample(t, nil, "sh", "-c", "go test -v "+strings.Join(goTestArgs, " ")+" 2>&1")
	xml := goRunTool(t, verbose, "github.com/jstemmer/go-junit-report/v2@v2.1.0")
	rep, err := ParseJUnit(bytes.NewReader(xml), DefaultLimits())
	if err != nil {
		t.Fatalf("%v\n%s", err, xml)
	}
	checkReport(t, sortedByID(rep), Totals{Passed: 3, Failed: 4, Errored: 2, Skipped: 1}, []want{
		{ID: pkg + "broken::[build failed]", Status: StatusErrored, Message: "Build error", File: "broken/broken_test.go", Line: 6,
			Output: "undefined: undefinedFunction"},
		{ID: pkg + "calc::TestConfig", Status: StatusFailed, Message: "calc_test.go:34: no config after", File: "calc_test.go", Line: 34},
		{ID: pkg + "calc::TestSkipped", Status: StatusSkipped, Message: "calc_test.go:17: not on this platform"},
		{ID: pkg + "calc::TestTable", Status: StatusFailed, Message: "Failed"},
		{ID: pkg + "calc::TestTable/large", Status: StatusFailed, Message: "calc_test.go:24: Add(2, 2) = 4, want 5", File: "calc_test.go", Line: 24},
		{ID: pkg + "hangs::TestForever", Status: StatusErrored, Message: "No test result found", File: "hangs/hangs_test.go", Line: 11,
			Output: "panic: test timed out after 5s"},
		{ID: pkg + "panics::TestIndex", Status: StatusFailed, Message: "Failed"},
	}, samplePassed)
}

const pytestSample = `import pytest


def test_passes():
    assert 1 + 1 == 2


def test_fails():
    x = 2
    assert x + 1 == 4, "arithmetic is off"


@pytest.mark.skip(reason="not on CI")
def test_skipped():
    pass


@pytest.fixture
def database():
    raise RuntimeError("database unavailable")


def test_errors(database):
    pass


class TestGroup:
    def test_in_class(self):
        print("captured stdout line")
        assert [1, 2] == [1, 3]


@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n == 1
`

// Debian's pytest (python3-pytest), not whatever python3 comes first in
// PATH.
const debianPython = "/usr/bin/python3"

func TestJUnitOfPytest(t *testing.T) {
	t.Parallel()
	if out, err := exec.Command(debianPython, "-m", "pytest", "--version").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pytest: %v\n%s", err, out)
		}
		t.Skipf("!!! %s -m pytest does not run (apt-get install python3-pytest); this test runs under CI=true: %s", debianPython, out)
	}
	dir := filepath.Join(scratch, "pytest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test_sample.py"), []byte(pytestSample), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(debianPython, "-m", "pytest", "--junitxml=report.xml", "-o", "junit_logging=all",
		"-p", "no:cacheprovider", "-q", "test_sample.py")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONPATH=")
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("pytest: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(dir, "report.xml"))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	defer f.Close()
	rep, err := ParseJUnit(f, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, Totals{Passed: 2, Failed: 3, Errored: 1, Skipped: 1}, []want{
		{ID: "test_sample::test_fails", Status: StatusFailed, Message: "AssertionError: arithmetic is off", File: "test_sample.py", Line: 10,
			Output: "assert (2 + 1) == 4"},
		{ID: "test_sample::test_skipped", Status: StatusSkipped, Message: "not on CI"},
		{ID: "test_sample::test_errors", Status: StatusErrored, Message: `failed on setup with "RuntimeError: database unavailable"`,
			File: "test_sample.py", Line: 20},
		{ID: "test_sample.TestGroup::test_in_class", Status: StatusFailed, Message: "assert [1, 2] == [1, 3]", File: "test_sample.py", Line: 30,
			Output: "captured stdout line"},
		{ID: "test_sample::test_param[2]", Status: StatusFailed, Message: "assert 2 == 1", File: "test_sample.py", Line: 35},
	}, []string{"test_sample::test_passes", "test_sample::test_param[1]"})
}

// The committed jest-junit sample comes from this project; with
// DELTACI_TEST_JEST=1 the test installs jest and jest-junit from npm (about
// a minute) and checks a fresh report the same way.
func TestJestJUnitLive(t *testing.T) {
	t.Parallel()
	if os.Getenv("DELTACI_TEST_JEST") != "1" {
		t.Skip("set DELTACI_TEST_JEST=1 to install jest and jest-junit from npm and parse a fresh report (testdata/jest-junit.xml is one)")
	}
	dir := filepath.Join(scratch, "jest")
	files := map[string]string{
		"package.json": `{"name":"sample","version":"1.0.0","private":true}`,
		"math.test.js": `function add(a, b) { return a + b; }
describe('math', () => {
  test('adds', () => { expect(add(1, 2)).toBe(3); });
  test('subtracts wrongly', () => { expect(add(2, 2)).toBe(5); });
  test.skip('divides', () => { expect(1 / 0).toBe(Infinity); });
  test('throws', () => { throw new TypeError('cannot read properties of undefined (reading \'x\')'); });
});
`,
		"other.test.js": "test('top level passes', () => { expect([1, 2]).toEqual([1, 2]); });\n",
	}
	for name, body := range files {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	install := exec.Command("npm", "install", "--no-audit", "--no-fund", "--prefix", dir, "jest@30.5.2", "jest-junit@17.0.0")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	run := exec.Command(filepath.Join(dir, "node_modules", ".bin", "jest"), "--ci", "--reporters=default", "--reporters=jest-junit", "--rootDir", ".")
	run.Dir = dir
	run.Env = append(os.Environ(), "JEST_JUNIT_OUTPUT_DIR=.", "JEST_JUNIT_OUTPUT_NAME=report.xml", "NO_COLOR=1")
	out, err := run.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("jest: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(dir, "report.xml"))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	defer f.Close()
	rep, err := ParseJUnit(f, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	checkJestReport(t, rep)
}

func TestGoTestJSONEdges(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	t.Run("StderrMixedIn", func(t *testing.T) {
		in := "# example.com/x\nx.go:3:1: syntax error\n" +
			`{"Action":"output","Package":"example.com/x","Output":"FAIL\texample.com/x [build failed]\n"}` + "\n" +
			`{"Action":"fail","Package":"example.com/x","Elapsed":0}` + "\n"
		rep, err := ParseGoTestJSON(strings.NewReader(in), lim)
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, rep, Totals{Errored: 1}, []want{{ID: "example.com/x", Status: StatusErrored, Message: "did not build"}}, nil)
		if !rep.BuildFailed() {
			t.Error("a [build failed] package is not a build failure")
		}
	})
	t.Run("CutLastLine", func(t *testing.T) {
		in := `{"Action":"run","Package":"p","Test":"TestA"}` + "\n" + `{"Action":"pass","Package":"p","Test":"TestA"}` + "\n" + `{"Action":"ru`
		rep, err := ParseGoTestJSON(strings.NewReader(in), lim)
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, rep, Totals{Passed: 1}, nil, []string{"p::TestA"})
		if !rep.Truncated {
			t.Error("a cut last line does not mark the report truncated")
		}
	})
	t.Run("OutputEndsMidTest", func(t *testing.T) {
		in := `{"Action":"run","Package":"p","Test":"TestA"}` + "\n" + `{"Action":"output","Package":"p","Test":"TestA","Output":"working\n"}` + "\n"
		rep, err := ParseGoTestJSON(strings.NewReader(in), lim)
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, rep, Totals{Errored: 1}, []want{{ID: "p::TestA", Status: StatusErrored, Message: "working", Output: "working"}}, nil)
	})
	t.Run("LongLineSkipped", func(t *testing.T) {
		in := `{"Action":"output","Package":"p","Test":"TestA","Output":"` + strings.Repeat("x", 2<<20) + `"}` + "\n" +
			`{"Action":"fail","Package":"p","Test":"TestA"}` + "\n"
		rep, err := ParseGoTestJSON(strings.NewReader(in), lim)
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, rep, Totals{Failed: 1}, []want{{ID: "p::TestA", Status: StatusFailed}}, nil)
		if !rep.Truncated {
			t.Error("a skipped line does not mark the report truncated")
		}
	})
	for name, c := range map[string]struct {
		in   string
		want error
		says string
	}{
		"Empty":      {"", ErrMalformed, "no go test -json events"},
		"PlainText":  {"ok  \tp\t0.1s\n", ErrMalformed, "1 other lines"},
		"BrokenJSON": {`{"Action":"run"` + "\n" + `{"Action":"pass"}` + "\n", ErrMalformed, "line 1"},
		"WrongTypes": {`{"Action":5}` + "\n", ErrMalformed, "line 1"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseGoTestJSON(strings.NewReader(c.in), lim)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want %v saying %q", err, c.want, c.says)
			}
		})
	}
}
