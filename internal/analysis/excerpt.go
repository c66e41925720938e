package analysis

import (
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
	sc := &excerptScan{lim: lim, ring: newLineRing(lim.ExcerptBefore + 1)}
	// The log is read in large blocks; the keywords are looked for in a
	// block at once, not line by line, and lines are copied only into
	// the context kept.
	buf := make([]byte, excerptBlock)
	var filled int // bytes of buf holding data
	var base int64 // the log offset of buf[0]
	var eof bool   // the reader has no more
	var long bool  // inside a line longer than buf
	var longStart int64
	var longKeep []byte
	for !sc.done {
		if !eof {
			n, err := io.ReadFull(r, buf[filled:])
			filled += n
			switch {
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				eof = true
			case err != nil:
				return nil, err
			}
		}
		data := buf[:filled]
		if long {
			// Only the start of a long line is kept: skip to its end.
			i := bytes.IndexByte(data, '\n')
			if i < 0 && !eof {
				base += int64(filled)
				filled = 0
				continue
			}
			end := filled
			if i >= 0 {
				end = i + 1
			}
			sc.line(longStart, base+int64(end), longKeep, false, keywords.find(longKeep) >= 0)
			long = false
			copy(buf, buf[end:filled])
			base += int64(end)
			filled -= end
			if eof && filled == 0 {
				break
			}
			continue
		}
		lines := bytes.LastIndexByte(data, '\n') + 1
		if eof {
			lines = filled // the last line may lack its \n
		}
		if lines == 0 {
			if filled == 0 {
				break
			}
			long, longStart = true, base
			longKeep = append(longKeep[:0], data[:min(filled, excerptKeepMax)]...)
			base += int64(filled)
			filled = 0
			continue
		}
		sc.block(base, data[:lines])
		sc.ring.own()
		copy(buf, buf[lines:filled])
		base += int64(lines)
		filled -= lines
		if eof && filled == 0 {
			break
		}
	}
	ring, cand := sc.ring, sc.cand
	if cand == nil {
		return tailExcerpt(ring.last(lim.ExcerptBefore + 1)), nil
	}
	lines := append(append(cand.before, cand.err), cand.after...)
	ex := excerptOf(lines)
	ex.Found, ex.Pattern = true, cand.pattern
	ex.ErrorStart, ex.ErrorEnd, ex.ErrorLine, ex.Error = cand.err.start, cand.err.end, cand.err.num, cand.err.text
	return ex, nil
}

// excerptBlock is how much of a log Excerpt reads at once.
const excerptBlock = 256 << 10

// excerptKeepMax is how much of a raw line is kept for its cleaned text
// (escape sequences take room).
const excerptKeepMax = excerptLineMax * 4

// excerptKeywords are lower-case strings one of which every line that
// matches a pattern contains (each pattern's need holds one of them; a
// colon before a digit stands for file:line:col, and one before an escape
// sequence for a coloured one): most lines of a log are passed over by
// one automaton over the block, not looked at one by one.
var excerptKeywords = []string{"fail", "error", "panic", "fatal", "traceback", "npm ", "exit", "make:", "make[", "●",
	":0", ":1", ":2", ":3", ":4", ":5", ":6", ":7", ":8", ":9", ":\x1b"}

var keywords = newKeywordDFA(excerptKeywords)

// keywordDFA finds any of a few keywords, ASCII case folded, in one pass:
// an Aho-Corasick automaton turned into a table of transitions.
type keywordDFA struct {
	next   [][256]uint8
	accept []bool
}

func newKeywordDFA(words []string) *keywordDFA {
	d := &keywordDFA{next: make([][256]uint8, 1), accept: make([]bool, 1)}
	has := []map[byte]uint8{{}} // the trie's own edges
	for _, w := range words {
		s := uint8(0)
		for i := 0; i < len(w); i++ {
			t, ok := has[s][w[i]]
			if !ok {
				t = uint8(len(d.next))
				d.next = append(d.next, [256]uint8{})
				d.accept = append(d.accept, false)
				has = append(has, map[byte]uint8{})
				has[s][w[i]] = t
			}
			s = t
		}
		d.accept[s] = true
	}
	// Breadth first, each state's missing edges are its failure state's.
	fail := make([]uint8, len(d.next))
	queue := []uint8{0}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for c := 0; c < 256; c++ {
			if t, ok := has[s][byte(c)]; ok {
				if s != 0 {
					fail[t] = d.next[fail[s]][c]
				}
				d.accept[t] = d.accept[t] || d.accept[fail[t]]
				d.next[s][c] = t
				queue = append(queue, t)
			} else if s != 0 {
				d.next[s][c] = d.next[fail[s]][c]
			}
		}
	}
	// Upper-case letters go where their lower-case ones do.
	for s := range d.next {
		for c := 'A'; c <= 'Z'; c++ {
			d.next[s][c] = d.next[s][c+'a'-'A']
		}
	}
	return d
}

// find returns the index of the byte ending the first keyword in b, or -1.
func (d *keywordDFA) find(b []byte) int {
	s := uint8(0)
	for i, c := range b {
		s = d.next[s][c]
		if d.accept[s] {
			return i
		}
	}
	return -1
}

// excerptScan is Excerpt's state between blocks.
type excerptScan struct {
	lim     Limits
	ring    *lineRing
	cand    *excerptCandidate
	num     int
	done    bool // a strong error's context is complete
	nextHit int  // where in the block the next keyword ends
}

// block scans the whole lines of one block, data, at the log offset base.
func (s *excerptScan) block(base int64, data []byte) {
	s.nextHit = -1
	for p := 0; p < len(data) && !s.done; {
		e := bytes.IndexByte(data[p:], '\n')
		end := len(data)
		if e >= 0 {
			end = p + e + 1
		}
		hit := false
		if s.cand == nil || !s.cand.pattern.Strong() {
			if s.nextHit < p {
				// Keywords never span lines: the search starts afresh here.
				s.nextHit = len(data)
				if i := keywords.find(data[p:]); i >= 0 {
					s.nextHit = p + i
				}
			}
			hit = s.nextHit < end
		}
		s.line(base+int64(p), base+int64(end), data[p:min(end, p+excerptKeepMax)], true, hit)
		p = end
	}
}

// line takes one line of the log: raw is its start, hit whether it holds
// a keyword, inBlock whether raw lies in the block being scanned.
func (s *excerptScan) line(start, end int64, raw []byte, inBlock, hit bool) {
	s.num++
	p := PatternNone
	var l logLine
	if hit && (s.cand == nil || !s.cand.pattern.Strong()) {
		l = logLine{start: start, end: end, num: s.num, text: cleanLine(raw)}
		p = matchPattern(l.text)
	}
	switch {
	case p.Strong() || (p != PatternNone && s.cand == nil):
		s.cand = &excerptCandidate{pattern: p, before: s.ring.last(s.lim.ExcerptBefore), err: l}
	case s.cand != nil && len(s.cand.after) < s.lim.ExcerptAfter:
		s.cand.after = append(s.cand.after, logLine{start: start, end: end, num: s.num, text: cleanLine(raw)})
	}
	s.ring.push(start, end, s.num, raw, inBlock)
	if s.cand != nil && s.cand.pattern.Strong() && len(s.cand.after) == s.lim.ExcerptAfter {
		s.done = true
	}
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
	aliased    bool   // raw lies in the block being scanned
	store      []byte // raw's own copy otherwise
}

func newLineRing(size int) *lineRing { return &lineRing{slots: make([]rawLine, size)} }

// push adds a line; one in the block being scanned (inBlock) is copied
// only by own, when the block is about to be reused.
func (r *lineRing) push(start, end int64, num int, raw []byte, inBlock bool) {
	s := &r.slots[r.next]
	s.start, s.end, s.num, s.aliased = start, end, num, inBlock
	if inBlock {
		s.raw = raw
	} else {
		s.store = append(s.store[:0], raw...)
		s.raw = s.store
	}
	r.next = (r.next + 1) % len(r.slots)
	r.n = min(r.n+1, len(r.slots))
}

// own copies the lines that still lie in the block.
func (r *lineRing) own() {
	for i := range r.slots {
		if s := &r.slots[i]; s.aliased {
			s.store = append(s.store[:0], s.raw...)
			s.raw, s.aliased = s.store, false
		}
	}
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
