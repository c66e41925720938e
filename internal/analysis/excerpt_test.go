package analysis

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// checkOffsets asserts that an excerpt's offsets point into raw at what
// it says: the error line at ErrorStart..ErrorEnd, and the excerpt's lines
// at Start..End.
func checkOffsets(t *testing.T, raw []byte, ex *LogExcerpt) {
	t.Helper()
	if ex.Start < 0 || ex.End > int64(len(raw)) || ex.Start > ex.End {
		t.Fatalf("excerpt %d..%d outside a log of %d bytes", ex.Start, ex.End, len(raw))
	}
	var lines []string
	for _, l := range strings.SplitAfter(string(raw[ex.Start:ex.End]), "\n") {
		if l != "" {
			lines = append(lines, cleanLine([]byte(l)))
		}
	}
	if got := strings.Join(lines, "\n"); got != ex.Text {
		t.Errorf("the log at %d..%d reads\n%q\nthe excerpt says\n%q", ex.Start, ex.End, got, ex.Text)
	}
	if !ex.Found {
		return
	}
	if ex.ErrorStart < ex.Start || ex.ErrorEnd > ex.End {
		t.Errorf("error line %d..%d outside the excerpt %d..%d", ex.ErrorStart, ex.ErrorEnd, ex.Start, ex.End)
	}
	if got := cleanLine(raw[ex.ErrorStart:ex.ErrorEnd]); got != ex.Error {
		t.Errorf("the log at %d..%d reads %q, the excerpt's error is %q", ex.ErrorStart, ex.ErrorEnd, got, ex.Error)
	}
	if n := bytes.Count(raw[:ex.ErrorStart], []byte("\n")) + 1; n != ex.ErrorLine {
		t.Errorf("error on line %d, the excerpt says %d", n, ex.ErrorLine)
	}
}

func lines(n int, format string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(strings.ReplaceAll(format, "#", string(rune('a'+i%26))))
		b.WriteByte('\n')
	}
	return b.String()
}

func TestExcerptPatterns(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		log     string
		pattern Pattern
		err     string // the error line, as the excerpt shows it
	}{
		"GoCompiler": {lines(20, "go: downloading #") + "# example.com/x\n./main.go:12:3: undefined: foo\n" + lines(3, "more #"),
			PatternCompiler, "./main.go:12:3: undefined: foo"},
		"GCCWarningThenError": {"src/a.c:3:5: warning: unused variable 'x'\nsrc/a.c:9:1: error: expected ';'\n",
			PatternCompiler, "src/a.c:9:1: error: expected ';'"},
		"TypeScript":        {"src/app.ts(4,7): error TS2322: Type 'string' is not assignable\n", PatternCompiler, "src/app.ts(4,7): error TS2322: Type 'string' is not assignable"},
		"Rust":              {"   Compiling x v0.1.0\nerror[E0308]: mismatched types\n --> src/main.rs:2:18\n", PatternRust, "error[E0308]: mismatched types"},
		"GoTest":            {"=== RUN   TestA\n    a_test.go:5: boom\n--- FAIL: TestA (0.00s)\nFAIL\n", PatternGoTest, "--- FAIL: TestA (0.00s)"},
		"Pytest":            {"collected 3 items\n\ntest_x.py .F.\n\n=================================== FAILURES ===================================\n", PatternPytest, "=================================== FAILURES ==================================="},
		"Jest":              {"PASS ./a.test.js\nFAIL ./sum.test.js\n  ● math › adds\n", PatternJest, "FAIL ./sum.test.js"},
		"JestBullet":        {"  ● math › adds\n", PatternJest, "  ● math › adds"},
		"GoPanic":           {"starting\npanic: assignment to entry in nil map\n\ngoroutine 1 [running]:\n", PatternPanic, "panic: assignment to entry in nil map"},
		"RustPanic":         {"thread 'main' panicked at src/main.rs:4:5:\nboom\n", PatternPanic, "thread 'main' panicked at src/main.rs:4:5:"},
		"Traceback":         {"Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nKeyError: 'a'\n", PatternTraceback, "Traceback (most recent call last):"},
		"Npm":               {"> x@1.0.0 test\nnpm ERR! code ELIFECYCLE\n", PatternNpm, "npm ERR! code ELIFECYCLE"},
		"NpmTen":            {"npm error Missing script: \"tset\"\n", PatternNpm, "npm error Missing script: \"tset\""},
		"ExitCode":          {"doing things\ndeltaci: exited with code 2\n", PatternExit, "deltaci: exited with code 2"},
		"Make":              {"cc -o x x.o\nmake: *** [Makefile:3: x] Error 1\n", PatternExit, "make: *** [Makefile:3: x] Error 1"},
		"GenericError":      {"fetching\nError: ENOENT: no such file\n", PatternError, "Error: ENOENT: no such file"},
		"MavenError":        {"[INFO] Building\n[ERROR] Failed to execute goal\n", PatternError, "[ERROR] Failed to execute goal"},
		"StrongBeatsWeak":   {"error: retrying\n" + lines(3, "#") + "--- FAIL: TestB (0.01s)\n" + lines(20, "after #"), PatternGoTest, "--- FAIL: TestB (0.01s)"},
		"FirstWeakWins":     {"x error: first\ny error: second\nexit status 1\n", PatternError, "x error: first"},
		"ExitIsNotZero":     {"exit status 0\nexited with code 0\nall good\n", PatternNone, ""},
		"ANSIAndProgress":   {"\x1b[1;31mdownloading 10%\rdownloading 100%\x1b[0m\n\x1b[31mpanic: \x1b[1mred\x1b[0m\n", PatternPanic, "panic: red"},
		"NoTrailingNewline": {"a\nb\npanic: at the end", PatternPanic, "panic: at the end"},
		"Empty":             {"", PatternNone, ""},
	}
	lim := DefaultLimits()
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ex, err := Excerpt(strings.NewReader(c.log), lim)
			if err != nil {
				t.Fatal(err)
			}
			if ex.Pattern != c.pattern || ex.Error != c.err || ex.Found != (c.pattern != PatternNone) {
				t.Fatalf("pattern %q error %q found %v, want %q %q", ex.Pattern, ex.Error, ex.Found, c.pattern, c.err)
			}
			checkOffsets(t, []byte(c.log), ex)
			if n := strings.Count(ex.Text, "\n") + 1; ex.Text != "" && n > lim.ExcerptBefore+1+lim.ExcerptAfter {
				t.Errorf("excerpt of %d lines, want at most %d", n, lim.ExcerptBefore+1+lim.ExcerptAfter)
			}
		})
	}
}

func TestExcerptContext(t *testing.T) {
	t.Parallel()
	log := lines(30, "before #") + "panic: here\n" + lines(30, "after #")
	lim := DefaultLimits()
	lim.ExcerptBefore, lim.ExcerptAfter = 2, 3
	ex, err := Excerpt(strings.NewReader(log), lim)
	if err != nil {
		t.Fatal(err)
	}
	want := "before c\nbefore d\npanic: here\nafter a\nafter b\nafter c"
	if ex.Text != want || ex.ErrorLine != 31 {
		t.Fatalf("excerpt %q on line %d, want %q on line 31", ex.Text, ex.ErrorLine, want)
	}
	checkOffsets(t, []byte(log), ex)
}

func TestExcerptWithoutErrorIsTheTail(t *testing.T) {
	t.Parallel()
	log := lines(40, "line #")
	lim := DefaultLimits()
	ex, err := Excerpt(strings.NewReader(log), lim)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Found || ex.Pattern != PatternNone || strings.Count(ex.Text, "\n")+1 != lim.ExcerptBefore+1 || ex.End != int64(len(log)) {
		t.Fatalf("excerpt %+v, want the last %d lines", ex, lim.ExcerptBefore+1)
	}
	checkOffsets(t, []byte(log), ex)
}

// A strong error's excerpt is complete once its context is read: Excerpt
// returns without reading the rest, even of an endless log.
func TestExcerptStopsAfterContext(t *testing.T) {
	t.Parallel()
	log := io.MultiReader(strings.NewReader("--- FAIL: TestA\n"+lines(10, "ctx #")), endless{})
	ex, err := Excerpt(log, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if ex.Pattern != PatternGoTest || ex.ErrorLine != 1 {
		t.Fatalf("excerpt %+v", ex)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "noise\n"[i%6]
	}
	return len(p), nil
}

// Lines of megabytes (a minified bundle, a progress bar without newlines)
// cost no more than their first kilobytes, and offsets stay exact.
func TestExcerptHugeLines(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("x", 5<<20)
	log := "start\n" + huge + "\n" + "error: " + huge + "\nafter\n"
	ex, err := Excerpt(strings.NewReader(log), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if ex.Pattern != PatternError || ex.ErrorLine != 3 || len(ex.Error) != excerptLineMax || len(ex.Text) > 4*excerptLineMax {
		t.Fatalf("pattern %q line %d error of %d bytes, text of %d", ex.Pattern, ex.ErrorLine, len(ex.Error), len(ex.Text))
	}
	if ex.ErrorStart != int64(6+len(huge)+1) || ex.ErrorEnd != int64(len(log)-len("after\n")) {
		t.Errorf("error at %d..%d", ex.ErrorStart, ex.ErrorEnd)
	}
}

// Logs of real failures: the Go compiler's, go test's, Python's and npm's.
func TestExcerptOfRealTools(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	check := func(t *testing.T, log []byte, pattern Pattern, errLine string) {
		t.Helper()
		ex, err := Excerpt(bytes.NewReader(log), lim)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Pattern != pattern || !strings.Contains(ex.Error, errLine) {
			t.Fatalf("pattern %q error %q, want %q with %q in:\n%s", ex.Pattern, ex.Error, pattern, errLine, log)
		}
		checkOffsets(t, log, ex)
	}
	t.Run("GoBuild", func(t *testing.T) {
		t.Parallel()
		out, _ := runInSample(t, nil, "sh", "-c", "go test ./broken 2>&1")
		check(t, out, PatternCompiler, "broken_test.go:6:2: undefined: undefinedFunction")
	})
	t.Run("GoTest", func(t *testing.T) {
		t.Parallel()
		out, _ := runInSample(t, nil, "go", "test", "./calc")
		check(t, out, PatternGoTest, "--- FAIL: TestTable")
	})
	t.Run("Python", func(t *testing.T) {
		t.Parallel()
		out, _ := exec.Command(debianPython, "-c", "print('loading'); d = {}; d['missing']").CombinedOutput()
		check(t, out, PatternTraceback, "Traceback (most recent call last):")
	})
	t.Run("Npm", func(t *testing.T) {
		t.Parallel()
		if _, err := exec.LookPath("npm"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("npm is not installed")
			}
			t.Skip("!!! npm is not installed; this test runs under CI=true")
		}
		dir := filepath.Join(scratch, "npm")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"x","version":"1.0.0","scripts":{"test":"true"}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("npm", "run", "tset") // a typo
		cmd.Dir = dir
		out, _ := cmd.CombinedOutput()
		check(t, out, PatternNpm, `Missing script: "tset"`)
	})
}
