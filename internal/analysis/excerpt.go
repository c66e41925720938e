package analysis

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"regexp"
	"strings"
)

// Pattern names the kind of line Excerpt took for the first real error.
type Pattern string

// Patterns, strongest first. A strong pattern's first line wins over any
// weak one (PatternError, PatternExit) before it: "error:" is printed by
// many things that then succeed, a compiler's file:line:col is not.
const (
	PatternNone      Pattern = ""
	PatternCompiler  Pattern = "compiler"  // file.go:12:3: ..., file.ts(12,3): error ..., FAIL<tab>pkg [build failed]
	PatternRust      Pattern = "rust"      // error[E0308]: ...
	PatternGoTest    Pattern = "go_test"   // --- FAIL: TestX, FAIL<tab>pkg
	PatternPytest    Pattern = "pytest"    // ==== FAILURES ====, FAILED tests/x.py::test
	PatternJest      Pattern = "jest"      // FAIL ./x.test.js, ● Suite › test
	PatternPanic     Pattern = "panic"     // panic: ..., fatal error: ..., thread 'x' panicked at
	PatternTraceback Pattern = "traceback" // Traceback (most recent call last):
	PatternNpm       Pattern = "npm"       // npm ERR! ..., npm error ...
	PatternError     Pattern = "error"     // error: ..., [ERROR] ..., ERROR ...
	PatternExit      Pattern = "exit"      // exit status 2, exited with code 1, make: *** Error 2
)

// Strong reports whether the pattern alone marks a real error.
func (p Pattern) Strong() bool { return p != PatternNone && p != PatternError && p != PatternExit }

// Each pattern that must match at the line's start is one ^(?:…) group,
// which the regexp package anchors instead of trying at every position.
var excerptPatterns = []struct {
	p   Pattern
	re  *regexp.Regexp
	not *regexp.Regexp // lines that match re but are no error
	// need lists lower-case strings one of which every match contains: a
	// cheap test that spares most lines the regular expression.
	need []string
}{
	{PatternCompiler, regexp.MustCompile(`^(?:(?:vet: )?[\w./\\@+-]*\w\.\w+:\d+:\d+: |[\w./\\@+-]*\w\.\w+\(\d+,\d+\): error\b|FAIL\t\S+ \[(?:build|setup) failed\])`),
		regexp.MustCompile(`^(?:vet: )?\S+:\d+:\d+: (?:warning|note|info|hint)\b`), []string{":", "fail\t"}},
	{PatternRust, regexp.MustCompile(`^error\[E\d+\]`), nil, []string{"error["}},
	{PatternGoTest, regexp.MustCompile(`^(?:--- FAIL: |FAIL(?:\t|$))`), nil, []string{"fail"}},
	{PatternPytest, regexp.MustCompile(`^(?:=+ (?:FAILURES|ERRORS) =+$|(?:FAILED|ERROR) \S+::)`), nil, []string{"failures", "errors", "failed ", "error "}},
	{PatternJest, regexp.MustCompile(`^(?:● |FAIL \S+\.(?:js|jsx|ts|tsx|mjs|cjs)$)`), nil, []string{"●", "fail "}},
	{PatternPanic, regexp.MustCompile(`^(?:panic: |fatal error: |thread '[^']*' panicked at)`), nil, []string{"panic", "fatal error: "}},
	{PatternTraceback, regexp.MustCompile(`^Traceback \(most recent call last\):`), nil, []string{"traceback (most recent call last):"}},
	{PatternNpm, regexp.MustCompile(`^npm (?:ERR!|error) `), nil, []string{"npm "}},
	{PatternExit, regexp.MustCompile(`(?i)\bexit(?:ed)?(?: with)? (?:status|code)[ :=]*[1-9]\d*\b|\breturned non-zero exit status [1-9]|^make(?:\[\d+\])?: \*\*\* .*Error [1-9]`), nil, []string{"exit", "make:", "make["}},
	{PatternError, regexp.MustCompile(`(?i)\berror:|^\[ERROR\] |^ERROR\b`), nil, []string{"error"}},
}

func matchPattern(line string) Pattern {
	line = strings.TrimLeft(line, " \t")
	lower := strings.ToLower(line)
	for _, p := range excerptPatterns {
		if !containsAny(lower, p.need) {
			continue
		}
		if p.re.MatchString(line) && (p.not == nil || !p.not.MatchString(line)) {
			return p.p
		}
	}
	return PatternNone
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// excerptLineMax is how much of one log line an excerpt keeps (and the
// patterns see); the rest of a longer line is skipped, offsets still exact.
const excerptLineMax = 1024

// LogExcerpt is the region of a log around its first real error.
type LogExcerpt struct {
	// Found is false when no line matched; the excerpt is then the log's
	// last lines.
	Found   bool
	Pattern Pattern
	// Text is the excerpt's lines, escape sequences stripped, each cut to
	// 1 KiB.
	Text string
	// Start and End are the byte offsets in the raw log of the excerpt's
	// first byte and one past its last.
	Start, End int64
	// ErrorStart and ErrorEnd delimit the error line in the raw log, and
	// ErrorLine is its 1-based number (0 when not Found).
	ErrorStart, ErrorEnd int64
	ErrorLine            int
	// Error is the error line as Text shows it.
	Error string
}

type logLine struct {
	start, end int64
	num        int
	text       string
}

type excerptCandidate struct {
	pattern Pattern
	before  []logLine
	err     logLine
	after   []logLine
}

// Excerpt finds the first real error in a log: the first line matching a
// strong Pattern, or else the first matching a weak one, with
// lim.ExcerptBefore lines before it and lim.ExcerptAfter after. It streams
// with memory bounded by the context kept, whatever the log's size or line
// lengths, and stops reading once a strong error's context is complete.
// Lines end at \n; a \r inside a line keeps only what follows it, as a
// terminal shows progress bars.
func Excerpt(r io.Reader, lim Limits) (*LogExcerpt, error) {
	if lim.ExcerptBefore < 0 || lim.ExcerptAfter < 0 {
		return nil, errors.New("excerpt: context lines must not be negative")
	}
	br := bufio.NewReaderSize(r, 64<<10)
	// The ring holds the raw lines before the current one, in reused
	// buffers: ExcerptBefore for the context, and one more for the tail of
	// a log with no error. Lines are cleaned only when an excerpt takes
	// them.
	ring := newLineRing(lim.ExcerptBefore + 1)
	var cand *excerptCandidate
	var off int64
	var keep, lower []byte
	for num := 1; ; num++ {
		start := off
		keep = keep[:0]
		var err error
		for {
			var chunk []byte
			chunk, err = br.ReadSlice('\n')
			off += int64(len(chunk))
			if room := excerptLineMax*4 - len(keep); room > 0 {
				keep = append(keep, chunk[:min(room, len(chunk))]...)
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if off == start { // EOF at a line boundary
			break
		}
		p := PatternNone
		var l logLine
		if cand == nil || !cand.pattern.Strong() {
			lower = asciiLower(lower[:0], keep)
			if containsAnyBytes(lower, excerptKeywords) {
				l = logLine{start: start, end: off, num: num, text: cleanLine(keep)}
				p = matchPattern(l.text)
			}
		}
		switch {
		case p.Strong() || (p != PatternNone && cand == nil):
			cand = &excerptCandidate{pattern: p, before: ring.last(lim.ExcerptBefore), err: l}
		case cand != nil && len(cand.after) < lim.ExcerptAfter:
			cand.after = append(cand.after, logLine{start: start, end: off, num: num, text: cleanLine(keep)})
		}
		ring.push(start, off, num, keep)
		if cand != nil && cand.pattern.Strong() && len(cand.after) == lim.ExcerptAfter {
			break
		}
		if err == io.EOF {
			break
		}
	}
	if cand == nil {
		return tailExcerpt(ring.last(lim.ExcerptBefore + 1)), nil
	}
	lines := append(append(cand.before, cand.err), cand.after...)
	ex := excerptOf(lines)
	ex.Found, ex.Pattern = true, cand.pattern
	ex.ErrorStart, ex.ErrorEnd, ex.ErrorLine, ex.Error = cand.err.start, cand.err.end, cand.err.num, cand.err.text
	return ex, nil
}

// excerptKeywords are lower-case strings one of which every line that
// matches a pattern contains (each pattern's need holds one of them): most
// lines of a log are passed over after this one scan.
var excerptKeywords = [][]byte{[]byte(":"), []byte("fail"), []byte("error"), []byte("panic"), []byte("fatal"),
	[]byte("traceback"), []byte("npm "), []byte("exit"), []byte("make:"), []byte("make["), []byte("●")}

func containsAnyBytes(s []byte, subs [][]byte) bool {
	for _, sub := range subs {
		if bytes.Contains(s, sub) {
			return true
		}
	}
	return false
}

func asciiLower(dst, src []byte) []byte {
	for _, c := range src {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// lineRing keeps the last lines read, raw, in buffers it reuses.
type lineRing struct {
	slots []rawLine
	next  int // where the next line goes
	n     int // lines held
}

type rawLine struct {
	start, end int64
	num        int
	raw        []byte
}

func newLineRing(size int) *lineRing { return &lineRing{slots: make([]rawLine, size)} }

func (r *lineRing) push(start, end int64, num int, raw []byte) {
	s := &r.slots[r.next]
	s.start, s.end, s.num, s.raw = start, end, num, append(s.raw[:0], raw...)
	r.next = (r.next + 1) % len(r.slots)
	r.n = min(r.n+1, len(r.slots))
}

// last returns up to n of the latest lines, oldest first, cleaned.
func (r *lineRing) last(n int) []logLine {
	n = min(n, r.n)
	out := make([]logLine, 0, n)
	for i := n; i > 0; i-- {
		s := r.slots[(r.next-i+len(r.slots))%len(r.slots)]
		out = append(out, logLine{start: s.start, end: s.end, num: s.num, text: cleanLine(s.raw)})
	}
	return out
}

// tailExcerpt is the excerpt of a log with no recognised error: its last
// lines, where a failing command usually says why.
func tailExcerpt(lines []logLine) *LogExcerpt {
	if len(lines) == 0 {
		return &LogExcerpt{}
	}
	return excerptOf(lines)
}

func excerptOf(lines []logLine) *LogExcerpt {
	texts := make([]string, len(lines))
	for i, l := range lines {
		texts[i] = l.text
	}
	return &LogExcerpt{Text: strings.Join(texts, "\n"), Start: lines[0].start, End: lines[len(lines)-1].end}
}

// cleanLine turns one raw log line into what a terminal shows of it.
func cleanLine(raw []byte) string {
	raw = bytes.TrimRight(raw, "\r\n")
	if i := bytes.LastIndexByte(raw, '\r'); i >= 0 {
		raw = raw[i+1:]
	}
	return truncate(strings.ToValidUTF8(stripANSI(string(raw)), "\uFFFD"), excerptLineMax)
}
