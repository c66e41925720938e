package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const limitsHead = "version: 1\njobs:\n  a:\n    run: make\n"

// limitProblem parses src, which must be refused for a limit, and returns
// the one problem.
func limitProblem(t *testing.T, src string) *Error {
	t.Helper()
	_, err := Parse("ci.yml", []byte(src))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse: err = %v, want one *Error", err)
	}
	return e
}

// TestBracketBombIsRefused is the file that took 10 GB to parse: 200 KB
// whose env value opens 100,000 brackets.
func TestBracketBombIsRefused(t *testing.T) {
	// Not parallel: it measures allocations.
	src := limitsHead + "    env: {A: " + strings.Repeat("[", 100_000) + "}\n"
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Parse("ci.yml", []byte(src))
	runtime.ReadMemStats(&after)
	// jobs, a, env and { are 4 levels: the 61st [ is the 65th.
	want := fmt.Sprintf("ci.yml:5:%d: values nest more than 64 levels deep here", len("    env: {A: ")+61)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v, want it to start with %q", err, want)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("refusing the file allocated %d KiB, want under 1 MiB", got>>10)
	}
}

func TestDeepNestingIsRefused(t *testing.T) {
	t.Parallel()
	indented := func(depth int) string {
		var b strings.Builder
		b.WriteString(limitsHead + "    env:\n")
		for i := range depth - 3 {
			fmt.Fprintf(&b, "%sk%d:\n", strings.Repeat(" ", 6+i), i)
		}
		return b.String()
	}
	tests := []struct {
		name string
		src  string
		at   string // where the problem is reported
	}{
		// jobs, a and env are 3 levels; k0 is the 4th.
		{"BlockMappings", indented(maxDepth + 1), "ci.yml:67:68:"},
		// A is the 4th level, the 61st dash the 65th.
		{"CompactSequences", limitsHead + "    env:\n      A:\n        " + strings.Repeat("- ", 100) + "x\n", "ci.yml:7:129:"},
		{"FlowMappings", limitsHead + "    env: " + strings.Repeat("{a: ", 100) + "\n", "ci.yml:5:254:"},
		// k58 is the 62nd level.
		{"FlowInBlock", indented(maxDepth-2) + strings.Repeat(" ", 70) + "[[[x]]]\n", "ci.yml:65:73:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := limitProblem(t, tt.src)
			if got := e.Error(); !strings.HasPrefix(got, tt.at+" values nest more than 64 levels deep here") {
				t.Errorf("err = %v, want it at %s", got, tt.at)
			}
		})
	}
	t.Run("AtTheLimit", func(t *testing.T) {
		t.Parallel()
		if err := measure([]byte(indented(maxDepth)), nil); err != nil {
			t.Errorf("%d levels refused: %s", maxDepth, err.msg)
		}
	})
}

// TestBracketsInTextDoNotCount checks that the depth counts collections,
// not brackets in quoted text, comments, block scalars and plain text.
func TestBracketsInTextDoNotCount(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[{", 100)
	src := limitsHead +
		"    # " + deep + "\n" +
		"    env:\n" +
		"      SINGLE: '" + deep + "'\n" +
		"      DOUBLE: \"" + deep + "\\\"" + deep + "\"\n" +
		"      PLAIN: x" + deep + "\n" +
		"      FLOW: {A: '" + deep + "', B: [\"" + deep + "\"]} # " + deep + "\n" +
		"  b:\n" +
		"    run: |\n" +
		"      " + deep + "\n" +
		"      x: [\n"
	if err := measure([]byte(src), nil); err != nil {
		t.Fatalf("measure: %s", err.msg)
	}
}

func TestFileLargerThan1MiBIsRefused(t *testing.T) {
	t.Parallel()
	pad := func(size int) []byte {
		b := []byte(limitsHead + "# ")
		b = append(b, strings.Repeat("x", size-len(b)-1)...)
		return append(b, '\n')
	}
	e := limitProblem(t, string(pad(maxFileSize+1)))
	// The first byte past the limit is on the comment's line.
	if want := fmt.Sprintf("ci.yml:5:%d: the file is larger than 1 MiB", maxFileSize-len(limitsHead)+1); !strings.HasPrefix(e.Error(), want) {
		t.Errorf("err = %v, want it to start with %q", e, want)
	}
	if _, err := Parse("ci.yml", pad(maxFileSize)); err != nil {
		t.Errorf("a file of 1 MiB: %v", err)
	}

	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, append(pad(maxFileSize), strings.Repeat("#\n", 1<<20)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("Load of a 3 MiB file: err = %v, want larger than 1 MiB", err)
	}
}

func TestWideMappingIsRefused(t *testing.T) {
	t.Parallel()
	env := func(keys int) string {
		var b strings.Builder
		b.WriteString(limitsHead + "    env:\n")
		for i := range keys {
			fmt.Fprintf(&b, "      K%d: v\n", i)
		}
		return b.String()
	}
	e := limitProblem(t, env(maxKeys+1))
	if want := fmt.Sprintf("ci.yml:%d:7: a mapping has more than 1000 keys here", 6+maxKeys); !strings.HasPrefix(e.Error(), want) {
		t.Errorf("err = %v, want it to start with %q", e, want)
	}
	if _, err := Parse("ci.yml", []byte(env(maxKeys))); err != nil {
		t.Errorf("%d keys: %v", maxKeys, err)
	}
	// The YAML parser also makes keys of a block scalar, an alias or a
	// "? " key with the ':' on the next line.
	for _, key := range []string{"|\n x\n", "*a\n", "? a\n"} {
		src := "x: y\n" + strings.Repeat(key+": v\n", maxKeys+1)
		if e := limitProblem(t, src); !strings.Contains(e.Msg, "a mapping has more than 1000 keys") {
			t.Errorf("keys %q: err = %v", key, e)
		}
	}
}

func TestLongPathIsRefused(t *testing.T) {
	t.Parallel()
	src := limitsHead + "    env:\n      " + strings.Repeat("K", 300) + ": v\n"
	e := limitProblem(t, src)
	if want := "ci.yml:6:7: the keys leading to this value are "; !strings.HasPrefix(e.Error(), want) {
		t.Errorf("err = %v, want it to start with %q", e, want)
	}
	src = limitsHead + "    env: {" + strings.Repeat("K", 300) + ": v}\n"
	if e := limitProblem(t, src); !strings.Contains(e.Msg, "the keys leading to this value") {
		t.Errorf("flow mapping: err = %v", e)
	}
}

func TestSlowTokenizerInputIsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, want string
	}{
		{"BlankLinesEndingABlockScalar", limitsHead + "    env:\n      A: |\n        x\n" + strings.Repeat("\n", 100_000) + "  b:\n    run: y\n",
			"ci.yml:40:1: more than 32 blank lines in a row"},
		{"TabsInDoubleQuotes", limitsHead + "    env: {A: \"" + strings.Repeat("\t", 100_000) + "x\"}\n",
			"ci.yml:5:"},
		{"RunOfLessThan", limitsHead + "    env: {A: x" + strings.Repeat("<", 100_000) + "}\n",
			"ci.yml:5:15: too long a run of '<' characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if e := limitProblem(t, tt.src); !strings.HasPrefix(e.Error(), tt.want) {
				t.Errorf("err = %v, want it to start with %q", e, tt.want)
			}
		})
	}
}

// TestTestdataIsWithinLimits checks that ordinary pipelines are far from
// the limits: each file of testdata, and each one of them nested as deep as
// real files get, reads the same as without the limits.
func TestTestdataIsWithinLimits(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("testdata: %v %v", files, err)
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if !checkLimits(&problems{file: name}, data) {
				t.Fatalf("%s is refused for a limit", name)
			}
			checkTokens(t, data)
			_, got := Parse(name, data)
			_, want := decodeOnly(name, data)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("with limits: %v\nwithout: %v", got, want)
			}
		})
	}
}

// decodeOnly is parse without the limits.
func decodeOnly(filename string, data []byte) (any, error) {
	probs := &problems{file: filename}
	p := decode(probs, data)
	return p, probs.err()
}

// TestMeasureSeesTheTokenizersTokens checks measure against the YAML
// tokenizer on inputs where the tokenizer departs from the YAML
// specification or is easy to misread: tabs, quotes spanning lines,
// escapes, tags, merge keys, stray brackets, document markers.
func TestMeasureSeesTheTokenizersTokens(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		"a: b\n  c: d\n",
		"a:\n \tb: c\n",
		"- \tb: 1\n  c: 2\n",
		"a: 'x\n  y': z\n",
		"a: \"x\\\ny\": z\n",
		"a: \"x\\\r\ny\": z\n",
		"\"a\\x\"b\": c\n",
		"a: \"x\ty\": z\nb: c\n",
		"\"a\tb\": 1\nc: 2\n",
		"{,\"0[\t0\r,\"0[\t0\r0",
		"!!str a: 1\nb: 2\n",
		"!a x: 1\n!aa y: 2\n",
		"a: !t,b\n",
		"[!t,b]\n",
		"&a x: 1\ny: 2\n",
		"*a : 1\n",
		"<<: *a\nb: 1\n",
		"x<<: a\n",
		"0<<<<<<<<:: ",
		"? a\n: b\n",
		"{a:1}\n",
		"[a:1]\n",
		"{a: http://x}\n",
		"a: [b, 'c]', \"d]\"]\n",
		"a: b # c [ d\ne: f\n",
		"a: b#c: d\n",
		"a: |\n  [[[\n  x: y\nb: c\n",
		"--- |\n  x\n---\na: b\n",
		"%YAML 1.2\n---\na: b\n",
		"a: ]\nb: [\n",
		"{]\n",
		"- - - a\n",
		"k   \n  x: 1\n",
		"- é: 1\n  ü: 2\n",
		"a: b\rc: d\r",
		"0: |\n:",
		"|\n x\n: v\n|\n x\n: v\n",
		"x: y\n*a\n: v\n*a\n: v\n",
		"a: | # c\n  x\nb: >-\n\n  y\n: z\n",
		"0: 0\n -: 0",
		"a: b\n -\n  [[: c\nd: e\n",
		"a: b\n -\t\n [: c\n  x: y\nd: e\n",
		"{a: b\n -[[[\n}\n",
		"  >\r >\r:",
		"a: |2\n    x\n  : y\n b: c\n",
		"a: |-1 # c\n  x\n b: c\n",
		"a: |#c\n  x\n",
		">   0",
		"a: |2",
		"0: |\n\n\"",
		"0: |\n\"",
		"0: |\n  \n[x: y\nz: [\n",
		"0: |+\n\n\"a\"",
		"0: >-\n \t\n\"a\"",
		"0\n... |\n... |00",
		"a: |\n---\nb: [\n",
	} {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			checkTokens(t, []byte(src))
		})
	}
}

// TestGlobAlternativesAreBounded refuses globs whose {a,b} groups make
// more combinations than the matcher can try for every path.
func TestGlobAlternativesAreBounded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		glob string
		want int
	}{
		{"**/*.go", 1},
		{"{src,lib}/**/*.{go,mod,sum}", 6},
		{"{a,{b,c}}/{d,e}", 6},
		{`\{a,b}`, 1},
		{"{a,b},c", 2},
		{strings.Repeat("{a,b}", 8), 256},
		{strings.Repeat("{a,b}", 9), maxAlternatives + 1},
		{strings.Repeat("{a,", 100_000) + strings.Repeat("}", 100_000), 100_001},
	} {
		if got := alternatives(tc.glob); got != min(tc.want, maxAlternatives+1) {
			t.Errorf("alternatives(%.40q) = %d, want %d", tc.glob, got, tc.want)
		}
	}
	src := limitsHead + "    inputs: [\"" + strings.Repeat("{a,a}", 30) + "b\"]\n" +
		"    branches: [\"" + strings.Repeat("{a,a}", 30) + "b\"]\n"
	_, err := Parse("ci.yml", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 || !strings.Contains(list[0].Msg, "combinations of {} alternatives") ||
		!strings.Contains(list[1].Msg, "combinations of {} alternatives") {
		t.Errorf("err = %v, want both globs refused", err)
	}
}
