package analysis

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds of what the XML tokenizer keeps of one run and one tag; see
// xmlTokenizer.
const (
	xmlTextCap = 64 << 10
	xmlTagCap  = 256 << 10
)

// ParseJUnit reads one JUnit XML report as pytest, gotestsum,
// go-junit-report, jest-junit, Maven Surefire, Gradle, PHPUnit and
// cargo-nextest write it: a <testsuites> or <testsuite> root, testsuites
// nested to any depth, <testcase> elements with <failure>, <error> or
// <skipped>, <system-out> and <system-err>, and Surefire's and nextest's
// rerun elements (flakyFailure, flakyError, rerunFailure, rerunError).
//
// It streams: memory stays bounded by lim whatever the input. It returns an
// error wrapping ErrTooLarge past lim.MaxFileBytes, ErrRefused for a
// DOCTYPE or entity declaration, nesting deeper than lim.MaxDepth or a tag
// past 256 KiB, and ErrMalformed for input that is not XML or not JUnit.
func ParseJUnit(r io.Reader, lim Limits) (*Report, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	return parseJUnit(fileLimit(r, lim.MaxFileBytes), lim)
}

func parseJUnit(lr *limitReader, lim Limits) (*Report, error) {
	z := newXMLTokenizer(lr, xmlTextCap, xmlTagCap, lim.MaxDepth)
	p := &junitParser{lim: lim, rep: &Report{}}
	for {
		kind, err := z.next()
		if err != nil {
			// Past the limit the input is cut anywhere: the limit says
			// what went wrong better than the tokenizer at the cut.
			if lr.err != nil {
				return nil, lr.err
			}
			return nil, err
		}
		switch kind {
		case tokEOF:
			if !p.sawRoot {
				return nil, fmt.Errorf("%w: no <testsuites> or <testsuite> element", ErrMalformed)
			}
			return p.rep, nil
		case tokStart:
			if z.depth() == 1 && p.sawRoot {
				return nil, fmt.Errorf("%w: not well-formed XML: a second root element <%s>", ErrMalformed, z.name)
			}
			if err := p.start(z); err != nil {
				return nil, err
			}
		case tokEnd:
			p.end(z.local())
		case tokText:
			p.text(z.text)
		}
	}
}

type junitSuite struct {
	name    string
	file    string
	failing int // failures + errors its attributes claim
	cases   int // testcases seen inside it, nested suites included
}

type junitCase struct {
	res      TestResult
	failText *boundedText // failure or error text, for Output and Message
	out      *boundedText // system-out, system-err and rerun texts
	flakyMsg string
	flakyTyp string
	flaky    int
}

type junitParser struct {
	lim     Limits
	rep     *Report
	sawRoot bool
	suites  []junitSuite
	tc      *junitCase
	caseBuf junitCase
	// capture is where text goes, and captureDepth the element that opened
	// it (0 when text is ignored).
	capture      *boundedText
	captureDepth int
	depth        int
}

func (p *junitParser) start(t *xmlTokenizer) error {
	depth := t.depth()
	p.depth = depth
	local := t.local()
	if depth == 1 {
		if string(local) != "testsuites" && string(local) != "testsuite" {
			return fmt.Errorf("%w: the root element is <%s>, not <testsuites> or <testsuite>", ErrMalformed, local)
		}
		p.sawRoot = true
	}
	if p.capture != nil {
		return nil // markup inside captured text (a <stackTrace> in a rerun) keeps capturing
	}
	switch string(local) {
	case "testsuite":
		if p.tc != nil {
			return nil
		}
		s := junitSuite{name: attr(t, "name"), file: attr(t, "file")}
		s.failing = atoiOr0(attr(t, "failures")) + atoiOr0(attr(t, "errors"))
		p.suites = append(p.suites, s)
	case "testcase":
		if p.tc != nil {
			return nil
		}
		p.startCase(t)
	case "failure", "error":
		if p.tc == nil {
			return nil
		}
		r := &p.tc.res
		if r.Status == StatusPassed || r.Status == StatusSkipped {
			r.Status = StatusFailed
			if string(local) == "error" {
				r.Status = StatusErrored
			}
			r.Message, r.Type = attr(t, "message"), attr(t, "type")
		}
		p.captureInto(p.tc.failText, depth)
	case "skipped":
		if p.tc == nil {
			return nil
		}
		if p.tc.res.Status == StatusPassed {
			p.tc.res.Status = StatusSkipped
			p.tc.res.Message = attr(t, "message")
			p.captureInto(p.tc.failText, depth) // go-junit-report writes the reason here
		}
	case "flakyFailure", "flakyError", "rerunFailure", "rerunError":
		if p.tc == nil {
			return nil
		}
		p.tc.res.Reruns++
		name := string(local)
		if strings.HasPrefix(name, "flaky") {
			p.tc.flaky++
			if p.tc.flakyMsg == "" {
				p.tc.flakyMsg, p.tc.flakyTyp = attr(t, "message"), attr(t, "type")
			}
		}
		// Rerun texts follow the failure's own in the failure text: a
		// flaky test's only failure text is its rerun's.
		if p.tc.failText.Len() > 0 {
			p.tc.failText.WriteString("\n[" + name + "]\n")
		}
		p.captureInto(p.tc.failText, depth)
	case "system-out", "system-err":
		if p.tc == nil {
			return nil
		}
		p.captureInto(p.tc.out, depth)
	}
	return nil
}

func (p *junitParser) captureInto(b *boundedText, depth int) {
	p.capture, p.captureDepth = b, depth
}

func (p *junitParser) startCase(t *xmlTokenizer) {
	suite := attr(t, "classname")
	if suite == "" {
		suite = attr(t, "class") // PHPUnit
	}
	var sf string
	if n := len(p.suites); n > 0 {
		if suite == "" {
			suite = p.suites[n-1].name
		}
		sf = p.suites[n-1].file
	}
	file := attr(t, "file")
	if file == "" {
		file = sf
	}
	// One case is open at a time: its buffers serve the next.
	c := &p.caseBuf
	if c.failText == nil {
		c.failText, c.out = newBoundedText(p.lim.MaxOutputBytes), newBoundedText(p.lim.MaxOutputBytes)
	}
	c.failText.reset()
	c.out.reset()
	*c = junitCase{
		res: TestResult{
			Suite: suite, Name: attr(t, "name"), Status: StatusPassed,
			File: file, Line: atoiOr0(attr(t, "line")), Duration: seconds(t.attrBytes("time")),
		},
		failText: c.failText,
		out:      c.out,
	}
	p.tc = c
}

func (p *junitParser) text(t []byte) {
	if p.capture != nil {
		p.capture.WriteString(string(t))
	}
}

func (p *junitParser) end(local []byte) {
	depth := p.depth
	p.depth--
	if p.capture != nil {
		if depth == p.captureDepth {
			p.capture, p.captureDepth = nil, 0
		}
		return
	}
	switch string(local) {
	case "testcase":
		if p.tc == nil {
			return
		}
		p.endCase()
		for i := range p.suites {
			p.suites[i].cases++
		}
	case "testsuite":
		if p.tc != nil || len(p.suites) == 0 {
			return
		}
		s := p.suites[len(p.suites)-1]
		p.suites = p.suites[:len(p.suites)-1]
		// A suite that failed before any test ran (a collection or setup
		// error) says so only in its counts.
		if s.cases == 0 && s.failing > 0 {
			p.rep.add(TestResult{
				Suite: s.name, Status: StatusErrored, File: s.file,
				Message: fmt.Sprintf("the suite reports %d failures and errors but no test cases", s.failing),
			}, p.lim)
		}
	}
}

func (p *junitParser) endCase() {
	c := p.tc
	p.tc = nil
	r := c.res
	if (r.Status != StatusPassed || c.flaky > 0) && len(p.rep.Tests) >= p.lim.MaxFailures {
		p.rep.add(r, p.lim) // counted, not kept: spare the work of summarising it
		return
	}
	if r.Status == StatusPassed && c.flaky > 0 {
		r.Flaky = true
		r.Message, r.Type = c.flakyMsg, c.flakyTyp
	}
	failText := c.failText.String()
	r.Message = summary(r.Message, failText, r.Name, p.lim.MaxOutputBytes)
	if r.Status != StatusSkipped {
		r.Output = joinOutput(failText, c.out.String(), p.lim.MaxOutputBytes)
		if r.File == "" || r.Line == 0 {
			if f, l := locate(r.Message+"\n"+failText, r.Suite); f != "" && (r.File == "" || r.File == f) {
				r.File, r.Line = f, l
			}
		}
	}
	p.rep.add(r, p.lim)
}

// joinOutput fits a failure's text and its captured output into max bytes,
// giving the failure text the larger share.
func joinOutput(fail, out string, maxOut int) string {
	fail, out = strings.TrimSpace(stripANSI(fail)), strings.TrimSpace(stripANSI(out))
	switch {
	case out == "":
		return truncate(fail, maxOut)
	case fail == "":
		return truncate(out, maxOut)
	}
	if len(fail)+1+len(out) > maxOut {
		room := min(max(maxOut-1-len(fail), maxOut/3), len(out))
		out = out[len(out)-room:]
		for len(out) > 0 && !utf8.RuneStart(out[0]) {
			out = out[1:]
		}
		fail = truncate(fail, maxOut-1-len(out))
	}
	return fail + "\n" + out
}

var rustPanicRe = regexp.MustCompile(`^thread '.*' panicked at \S+:$`)

// genericMessages say only that something failed; the failure text says
// what (gotestsum and go-junit-report write message="Failed").
var genericMessages = map[string]bool{"": true, "failed": true, "failure": true, "error": true, "fail": true, "skipped": true}

// summary is a failure's message, or the first telling line of its text
// when the message says nothing (name is the test's, whose line some tools
// print first).
func summary(msg, text, name string, max int) string {
	msg = strings.TrimSpace(stripANSI(msg))
	if !genericMessages[strings.ToLower(msg)] {
		if !strings.Contains(msg, "\n") {
			return truncate(msg, max)
		}
		// A message of many lines (gotestsum's skip reason is the test's
		// whole output) is summarised like a text.
		text, msg = msg, ""
	}
	lines := strings.Split(stripANSI(text), "\n")
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "=== ") || strings.HasPrefix(line, "--- FAIL") ||
			strings.HasPrefix(line, "--- SKIP") || genericMessages[strings.ToLower(line)] ||
			name != "" && strings.Contains(line, "::"+name) { // PHPUnit starts with Class::test
			continue
		}
		// Rust (since 1.73) puts a panic's message on the line after
		// "thread 'x' panicked at file:line:col:".
		if rustPanicRe.MatchString(line) && i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "" {
			line += " " + strings.TrimSpace(lines[i+1])
		}
		return truncate(line, max)
	}
	return truncate(msg, max)
}

func attr(t *xmlTokenizer, name string) string { return t.attr(name) }

func atoiOr0(s string) int {
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// seconds reads a time attribute; Surefire writes thousands separators
// ("1,234.5"). A value no tool would write counts as zero: a duration is
// informative, never a reason to drop a report.
func seconds(b []byte) time.Duration {
	b = bytes.TrimSpace(b)
	if bytes.IndexByte(b, ',') >= 0 {
		b = bytes.ReplaceAll(b, []byte(","), nil)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e6 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// charsetReader lets reports declare the single-byte encodings Java tools
// may write; UTF-8 is the decoder's own.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii":
		return &latin1Reader{r: input}, nil
	}
	return nil, fmt.Errorf("%w: encoding %q is not supported (UTF-8, ISO-8859-1 or US-ASCII)", ErrMalformed, charset)
}

// latin1Reader turns ISO-8859-1 bytes into UTF-8.
type latin1Reader struct {
	r   io.Reader
	buf []byte
	out []byte
}

func (l *latin1Reader) Read(p []byte) (int, error) {
	for len(l.out) == 0 {
		if l.buf == nil {
			l.buf = make([]byte, 16<<10)
		}
		n, err := l.r.Read(l.buf)
		for _, b := range l.buf[:n] {
			if b < 0x80 {
				l.out = append(l.out, b)
			} else {
				l.out = append(l.out, 0xC0|b>>6, 0x80|b&0x3F)
			}
		}
		if n == 0 && err != nil {
			return 0, err
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
	}
	n := copy(p, l.out)
	l.out = l.out[n:]
	return n, nil
}
