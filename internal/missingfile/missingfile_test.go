package missingfile_test

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/missingfile"
)

func TestScan(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, output string
		want         []string
	}{
		{"Cat", "cat: docs/readme.md: No such file or directory\n", []string{"docs/readme.md"}},
		{"Grep", "grep: src/a.txt: No such file or directory\n", []string{"src/a.txt"}},
		{"Bash", "bash: line 1: ./tools/gen.sh: No such file or directory\n", []string{"./tools/gen.sh"}},
		{"DashDot", "sh: 1: .: cannot open ./env.sh: No such file\n", []string{"./env.sh"}},
		{"DashNotFound", "sh: 1: ./scripts/x.sh: not found\n", []string{"./scripts/x.sh"}},
		{"DashCommandNotFound", "sh: 1: frobnicate: not found\n", nil},
		{"Go", "main.go:12: open testdata/golden.json: no such file or directory\n", []string{"testdata/golden.json"}},
		{"GoStat", "stat /tmp/ws/check-1/lib/x: no such file or directory", []string{"/tmp/ws/check-1/lib/x"}},
		{"Gcc", "src/main.c:1:10: fatal error: include/config.h: No such file or directory\n", []string{"include/config.h"}},
		{"Node", "Error: ENOENT: no such file or directory, open '/ws/pkg/a/tsconfig.json'\n    at Object.openSync", []string{"/ws/pkg/a/tsconfig.json"}},
		{"Python", "FileNotFoundError: [Errno 2] No such file or directory: 'data/input.csv'\n", []string{"data/input.csv"}},
		{"PythonScript", "python3: can't open file '/ws/tools/run.py': [Errno 2] No such file or directory\n", []string{"/ws/tools/run.py"}},
		{"Java", "java.io.FileNotFoundException: conf/app.properties (No such file or directory)\n", []string{"conf/app.properties"}},
		{"Make", "make: *** No rule to make target 'gen/version.h', needed by 'all'.  Stop.\n", []string{"gen/version.h"}},
		{"File", "file: cannot open `x.bin' (No such file or directory)\n", []string{"x.bin"}},
		{"Tar", "tar: Cannot open: No such file or directory\n", nil},
		{"CRLF", "cat: a.txt: No such file or directory\r\n", []string{"a.txt"}},
		{"SeveralOnce", "cat: a: No such file or directory\ncat: b: No such file or directory\ncat: a: No such file or directory\n", []string{"a", "b"}},
		{"Unrelated", "ok 1 - everything passed\nerror: exit status 1\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(c.want, missingfile.Scan([]byte(c.output))); diff != "" {
				t.Errorf("Scan(%q) (-want +got):\n%s", c.output, diff)
			}
		})
	}
}

func TestScanBounded(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 100 {
		b.WriteString("cat: f" + strings.Repeat("x", i) + ": No such file or directory\n")
	}
	if got := missingfile.Scan([]byte(b.String())); len(got) != missingfile.MaxNames {
		t.Errorf("%d names, want at most %d", len(got), missingfile.MaxNames)
	}
	long := strings.Repeat("y", 1<<20) + ": No such file or directory\n"
	if got := missingfile.Scan([]byte(long)); len(got) != 0 {
		t.Errorf("a name past the searched part of a line was found: %d bytes", len(got[0]))
	}
}

// FuzzScan: Scan never panics, and each name it returns is non-empty,
// distinct, on one line, and found in the output as printed.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		"cat: docs/readme.md: No such file or directory\n",
		"Error: ENOENT: no such file or directory, open '/ws/x.json'\n",
		"make: *** No rule to make target 'gen/version.h', needed by 'all'.  Stop.\n",
		"sh: 1: ./x.sh: not found\n",
		"FileNotFoundError: [Errno 2] No such file or directory: 'a b.csv'\n",
		"cannot open `x' (No such file or directory)\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, output []byte) {
		names := missingfile.Scan(output)
		if len(names) > missingfile.MaxNames {
			t.Fatalf("%d names", len(names))
		}
		for i, n := range names {
			if n == "" || strings.ContainsAny(n, "\x00\n") {
				t.Fatalf("bad name %q", n)
			}
			if slices.Contains(names[:i], n) {
				t.Fatalf("name %q twice", n)
			}
			if utf8.ValidString(string(output)) && !strings.Contains(string(output), n) {
				t.Fatalf("name %q is not in the output", n)
			}
		}
	})
}
