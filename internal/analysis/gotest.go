package analysis

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// goMaxLine bounds one line of go test -json output; a longer one (a test
// printing megabytes without a newline) is skipped and the report marked
// Truncated.
const goMaxLine = 1 << 20

// ParseGoTestJSON reads the output of `go test -json` (test2json events:
// run, output, pass, fail, skip, and Go 1.24's build-output and
// build-fail). Each test, subtests included, is one TestResult with the
// package as its Suite. A package that failed with no failing test (a
// build failure, a panic in TestMain or init, a timeout) is one errored
// result with an empty Name, Type TypeBuild for a build failure; tests
// still running when their package failed (a timeout's panic) are failed.
//
// Lines that are not JSON (a build's stderr mixed in) are ignored; a line
// that starts as JSON but does not parse is an error wrapping ErrMalformed,
// except a cut last line. Past lim.MaxFileBytes it returns an error
// wrapping ErrTooLarge.
func ParseGoTestJSON(r io.Reader, lim Limits) (*Report, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	return parseGoTestJSON(fileLimit(r, lim.MaxFileBytes), lim)
}

type goEvent struct {
	Action      string
	Package     string
	ImportPath  string
	Test        string
	Elapsed     float64
	Output      string
	FailedBuild string
}

type goTestState struct {
	name string
	seq  int // start order
	out  *boundedText
}

type goPkgState struct {
	out  *boundedText
	open map[string]*goTestState // tests run but not ended
	// failedParents are tests a subtest of which failed.
	failedParents map[string]bool
	failing       int
}

type goParser struct {
	lim    Limits
	rep    *Report
	pkgs   map[string]*goPkgState
	builds map[string]*boundedText // build-output by import path
	failed map[string]bool         // import paths whose build failed
	order  []string                // packages in first-seen order
	seq    int
}

func parseGoTestJSON(lr *limitReader, lim Limits) (*Report, error) {
	p := &goParser{lim: lim, rep: &Report{}, pkgs: map[string]*goPkgState{},
		builds: map[string]*boundedText{}, failed: map[string]bool{}}
	br := bufio.NewReaderSize(lr, 64<<10)
	var line []byte
	events, other := 0, 0
	for n := 1; ; n++ {
		chunk, err := br.ReadSlice('\n')
		long := false
		line = append(line[:0], chunk...)
		for errors.Is(err, bufio.ErrBufferFull) {
			chunk, err = br.ReadSlice('\n')
			if !long && len(line)+len(chunk) <= goMaxLine {
				line = append(line, chunk...)
			} else {
				long = true
			}
		}
		if err != nil && err != io.EOF {
			if lr.err != nil {
				return nil, lr.err
			}
			return nil, err
		}
		last := err == io.EOF
		trimmed := bytes.TrimSpace(line)
		switch {
		case long:
			p.rep.Truncated = true
		case len(trimmed) == 0:
		case trimmed[0] != '{':
			other++
		default:
			var ev goEvent
			if jerr := json.Unmarshal(trimmed, &ev); jerr != nil {
				if last && !bytes.HasSuffix(line, []byte("\n")) {
					p.rep.Truncated = true // the writer was cut off mid-line
					break
				}
				return nil, fmt.Errorf("%w: line %d is not a go test -json event: %v", ErrMalformed, n, jerr)
			}
			events++
			p.event(ev)
		}
		if last {
			break
		}
	}
	if events == 0 {
		return nil, fmt.Errorf("%w: no go test -json events (%d other lines): was the output of `go test -json` reported?", ErrMalformed, other)
	}
	p.finish()
	return p.rep, nil
}

func (p *goParser) pkg(name string) *goPkgState {
	s := p.pkgs[name]
	if s == nil {
		s = &goPkgState{out: newBoundedText(p.lim.MaxOutputBytes), open: map[string]*goTestState{}, failedParents: map[string]bool{}}
		p.pkgs[name] = s
		p.order = append(p.order, name)
	}
	return s
}

func (p *goParser) test(pkg *goPkgState, name string) *goTestState {
	if t := pkg.open[name]; t != nil {
		return t
	}
	p.seq++
	t := &goTestState{name: name, seq: p.seq, out: newBoundedText(p.lim.MaxOutputBytes)}
	pkg.open[name] = t
	return t
}

func (p *goParser) event(ev goEvent) {
	switch ev.Action {
	case "build-output":
		b := p.builds[ev.ImportPath]
		if b == nil {
			b = newBoundedText(p.lim.MaxOutputBytes)
			p.builds[ev.ImportPath] = b
		}
		b.WriteString(ev.Output)
		return
	case "build-fail":
		p.failed[ev.ImportPath] = true
		return
	}
	if ev.Package == "" {
		return
	}
	pkg := p.pkg(ev.Package)
	if ev.Test == "" {
		switch ev.Action {
		case "output":
			pkg.out.WriteString(ev.Output)
		case "fail":
			p.packageFailed(ev, pkg)
		case "pass", "skip":
			clear(pkg.open)
		}
		return
	}
	switch ev.Action {
	case "run", "output":
		p.test(pkg, ev.Test).out.WriteString(ev.Output)
	case "pass", "fail", "skip":
		t := p.test(pkg, ev.Test)
		delete(pkg.open, ev.Test)
		st := map[string]Status{"pass": StatusPassed, "fail": StatusFailed, "skip": StatusSkipped}[ev.Action]
		msg := ""
		if st == StatusFailed {
			pkg.failing++
			if pkg.failedParents[ev.Test] {
				msg = "a subtest failed"
			}
			// Subtests end before their parent: remember which parents
			// failed through them (only for nested names, so bounded by
			// the failures).
			if i := strings.LastIndexByte(ev.Test, '/'); i > 0 {
				pkg.failedParents[ev.Test[:i]] = true
			}
		}
		p.add(ev.Package, ev.Test, st, t.out.String(), elapsed(ev.Elapsed), msg)
	}
}

// packageFailed reports what made a package fail when none of its tests
// says so.
func (p *goParser) packageFailed(ev goEvent, pkg *goPkgState) {
	pkgOut := pkg.out.String()
	if len(pkg.open) > 0 {
		// A timeout or a panic outside the test's goroutine ends the binary
		// with the tests still running: they failed with it.
		for _, t := range openInOrder(pkg) {
			pkg.failing++
			out := t.out.String() + "\n" + pkgOut
			why := "the test did not finish"
			if s := summary("", goNoise(out), "", p.lim.MaxOutputBytes); s != "" {
				why += ": " + s
			}
			p.add(ev.Package, t.name, StatusFailed, out, 0, why)
		}
		clear(pkg.open)
		return
	}
	if pkg.failing > 0 {
		return
	}
	// Before Go 1.24 the build's errors went to stderr, and only this line
	// to the JSON stream.
	if ev.FailedBuild != "" || strings.Contains(pkgOut, "[build failed]") {
		p.addBuild(ev.Package, ev.FailedBuild)
		return
	}
	p.rep.add(TestResult{
		Suite: ev.Package, Status: StatusErrored, Output: strings.TrimSpace(pkgOut),
		Message: summary("", goNoise(pkgOut), "", p.lim.MaxOutputBytes),
	}, p.lim)
}

func (p *goParser) addBuild(pkg, importPath string) {
	out := ""
	if b := p.builds[importPath]; b != nil {
		out = b.String()
		delete(p.builds, importPath)
	}
	delete(p.failed, importPath)
	r := TestResult{
		Suite: pkg, Status: StatusErrored, Type: TypeBuild, Output: strings.TrimSpace(out),
		Message: summary("", goNoise(out), "", p.lim.MaxOutputBytes),
	}
	if r.Message == "" {
		r.Message = "the package's tests did not build"
	}
	r.File, r.Line = locate(out, "")
	p.rep.add(r, p.lim)
}

// finish reports what the stream left open: tests with no result and
// builds that failed with no package event after them.
func (p *goParser) finish() {
	for _, name := range p.order {
		pkg := p.pkgs[name]
		for _, t := range openInOrder(pkg) {
			p.add(name, t.name, StatusErrored, t.out.String(), 0, "no result: the output ended before the test did")
		}
	}
	for _, ip := range slices.Sorted(maps.Keys(p.failed)) {
		pkg, _, _ := strings.Cut(ip, " ")
		p.addBuild(pkg, ip)
	}
}

func openInOrder(pkg *goPkgState) []*goTestState {
	ts := make([]*goTestState, 0, len(pkg.open))
	for _, t := range pkg.open {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b *goTestState) int { return a.seq - b.seq })
	return ts
}

func (p *goParser) add(pkg, test string, st Status, out string, d time.Duration, msg string) {
	r := TestResult{Suite: pkg, Name: test, Status: st, Duration: d}
	if st != StatusPassed {
		r.Output = strings.TrimSpace(stripANSI(out))
		// The test's own output says best what went wrong; msg is the
		// fallback.
		r.Message = summary("", goNoise(out), "", p.lim.MaxOutputBytes)
		if r.Message == "" || strings.HasPrefix(msg, "the test did not finish") {
			r.Message = msg
		}
		r.File, r.Line = locate(goNoise(out), "")
		r.Output = truncate(r.Output, p.lim.MaxOutputBytes)
	}
	p.rep.add(r, p.lim)
}

// goNoise drops the lines go test prints around every test (=== RUN,
// --- PASS, PASS, FAIL, ok) so that the first remaining line says what
// went wrong.
func goNoise(out string) string {
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || t == "PASS" || t == "FAIL" || strings.HasPrefix(t, "=== ") ||
			strings.HasPrefix(t, "--- ") || strings.HasPrefix(t, "ok  \t") || strings.HasPrefix(t, "FAIL\t") ||
			strings.HasPrefix(t, "exit status ") || strings.HasPrefix(t, "# ") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func elapsed(s float64) time.Duration {
	if math.IsNaN(s) || s < 0 || s > 1e6 {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}
