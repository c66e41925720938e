package analysis

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

const gib = 1 << 30

// genReader produces about size bytes: head, then body repeated as long as
// the tail still fits, then tail; it never holds more than one body, and
// it samples the live heap every few megabytes read, on the reading
// goroutine.
type genReader struct {
	head, body, tail string
	size, n          int64
	cur              string
	inTail           bool
	nextSample       int64
	peak             uint64
}

func newGenReader(head, body, tail string, size int64) *genReader {
	return &genReader{head: head, body: body, tail: tail, size: size, cur: head}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.n >= g.size {
		return 0, io.EOF
	}
	if g.n >= g.nextSample {
		g.nextSample += 2 << 20
		g.sample()
	}
	total := 0
	for len(p) > 0 && g.n < g.size {
		if g.cur == "" {
			if g.inTail {
				g.size = g.n
				break
			}
			g.cur = g.body
			if g.size-g.n < int64(len(g.body)+len(g.tail)) {
				g.cur, g.inTail = g.tail, true
			}
		}
		k := copy(p, g.cur)
		g.cur, p, g.n, total = g.cur[k:], p[k:], g.n+int64(k), total+k
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// sample records the live heap: after a collection, so that garbage the
// collector has yet to free does not count.
func (g *genReader) sample() {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	g.peak = max(g.peak, m.HeapInuse)
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// checkFlat reads a 1 GiB report through parse and asserts that it is
// refused by lim's per-file limit with the live heap grown by at most bound
// while reading it. Not parallel: other tests' allocations would count.
func checkFlat(t *testing.T, g *genReader, lim Limits, bound uint64, parse func(io.Reader, Limits) (*Report, error)) {
	t.Helper()
	base := heapInuse()
	rep, err := parse(g, lim)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprint(lim.MaxFileBytes)) {
		t.Fatalf("a 1 GiB report: %v, want ErrTooLarge naming the limit", err)
	}
	if rep != nil {
		t.Errorf("a refused report returned %+v", rep.Totals)
	}
	if g.n > lim.MaxFileBytes+1<<20 {
		t.Errorf("read %d bytes of a report over the limit of %d", g.n, lim.MaxFileBytes)
	}
	growth := int64(g.peak) - int64(base)
	t.Logf("read %d MB, live heap grew by at most %d KiB (bound %d KiB)", g.n/1e6, growth>>10, bound>>10)
	if growth > int64(bound) {
		t.Errorf("the live heap grew by %d KiB while reading, more than %d KiB", growth>>10, bound>>10)
	}
}

func smallFileLimit() Limits {
	lim := DefaultLimits()
	lim.MaxFileBytes = 6 << 20
	return lim
}

func genCase(i int) string {
	if i%10 != 0 {
		return fmt.Sprintf(`<testcase classname="com.example.Gen%d" name="passes%d" time="0.001"/>`, i%97, i)
	}
	return fmt.Sprintf(`<testcase classname="com.example.Gen%d" name="fails%d" time="0.002"><failure message="expected &lt;%d&gt;" type="AssertionError">java.lang.AssertionError: expected %d
	at com.example.Gen.fails(Gen.java:%d)
</failure><system-out><![CDATA[line of output %d
]]></system-out></testcase>`, i%97, i, i, i, i%500, i)
}

func TestJUnitOneGiBRefusedWithFlatMemory(t *testing.T) {
	var body strings.Builder
	for i := range 1000 {
		body.WriteString(genCase(i))
		body.WriteByte('\n')
	}
	g := newGenReader(`<?xml version="1.0" encoding="UTF-8"?><testsuites><testsuite name="gen">`, body.String(), `</testsuite></testsuites>`, gib)
	// Kept: 1,000 failures of about 400 bytes, the passing ids. The limit
	// is lowered from 30 MB so that the race detector's run stays short;
	// reading stops at it either way.
	checkFlat(t, g, smallFileLimit(), 12<<20, ParseJUnit)
}

// One text node of a gibibyte (a test that prints forever) is never held.
func TestJUnitOneGiBOutputRefusedWithFlatMemory(t *testing.T) {
	g := newGenReader(`<testsuite><testcase name="chatty"><system-out>`, strings.Repeat("all work and no play &amp; ", 1000),
		`</system-out></testcase></testsuite>`, gib)
	checkFlat(t, g, DefaultLimits(), 4<<20, ParseJUnit)
}

func TestGoTestJSONOneGiBRefusedWithFlatMemory(t *testing.T) {
	var body strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&body, `{"Action":"run","Package":"example.com/gen","Test":"TestGen%d"}`+"\n", i)
		fmt.Fprintf(&body, `{"Action":"output","Package":"example.com/gen","Test":"TestGen%d","Output":"    gen_test.go:%d: value %d\n"}`+"\n", i, i, i)
		action := "pass"
		if i%10 == 0 {
			action = "fail"
		}
		fmt.Fprintf(&body, `{"Action":"%s","Package":"example.com/gen","Test":"TestGen%d","Elapsed":0.01}`+"\n", action, i)
	}
	g := newGenReader("", body.String(), "", gib)
	checkFlat(t, g, smallFileLimit(), 12<<20, ParseGoTestJSON)
}

func TestCollectorAttemptLimit(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	lim.MaxFileBytes, lim.MaxAttemptBytes = 1000, 2500
	c, err := NewCollector(lim)
	if err != nil {
		t.Fatal(err)
	}
	file := func(name string, n int) string {
		doc := `<testsuite name="` + name + `"><testcase name="a"/><testcase name="b"><failure message="x"/></testcase>`
		return doc + strings.Repeat(" ", n-len(doc)-len("</testsuite>")) + "</testsuite>"
	}
	if err := c.Add("one.xml", FormatJUnit, strings.NewReader(file("one", 900))); err != nil {
		t.Fatal(err)
	}
	err = c.Add("big.xml", FormatJUnit, strings.NewReader(file("big", 1001)))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "big.xml") || !strings.Contains(err.Error(), "per report file") {
		t.Fatalf("a file over the file limit: %v", err)
	}
	// What was read of a refused file counts: 2500-900-1001 bytes are left.
	err = c.Add("two.xml", FormatJUnit, strings.NewReader(file("two", 900)))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "599 bytes left of the limit of 2500 bytes per attempt") {
		t.Fatalf("a file over what is left of the attempt's limit: %v", err)
	}
	err = c.Add("three.json", FormatGoTest, strings.NewReader(`{"Action":"pass","Package":"p","Test":"T"}`))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "passed the limit of 2500 bytes") {
		t.Fatalf("a file after the attempt's limit: %v", err)
	}
	if err := c.Add("x", Format("tap"), strings.NewReader("")); err == nil || !strings.Contains(err.Error(), `unknown report format "tap"`) {
		t.Fatalf("an unknown format: %v", err)
	}
	rep := c.Report()
	checkReport(t, rep, Totals{Passed: 1, Failed: 1}, []want{{ID: "one::b", Status: StatusFailed, Message: "x"}}, []string{"one::a"})
}

func TestReportBounds(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	lim.MaxFailures, lim.MaxPassed = 2, 3
	var doc strings.Builder
	doc.WriteString("<testsuite>")
	for i := range 5 {
		fmt.Fprintf(&doc, `<testcase name="p%d"/><testcase name="f%d"><failure message="m"/></testcase>`, i, i)
	}
	doc.WriteString("</testsuite>")
	rep, err := ParseJUnit(strings.NewReader(doc.String()), lim)
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, Totals{Passed: 5, Failed: 5}, []want{
		{ID: "f0", Status: StatusFailed, Message: "m"}, {ID: "f1", Status: StatusFailed, Message: "m"},
	}, []string{"p0", "p1", "p2"})
	if !rep.Truncated {
		t.Error("a report over its bounds is not marked truncated")
	}
	merged := &Report{}
	merged.Merge(rep, lim)
	merged.Merge(rep, lim)
	if merged.Totals != (Totals{Passed: 10, Failed: 10}) || len(merged.Tests) != 2 || len(merged.Passed) != 3 || !merged.Truncated {
		t.Errorf("merged: %+v", merged)
	}
}

func TestLimitsValidate(t *testing.T) {
	t.Parallel()
	for name, mut := range map[string]func(*Limits){
		"MaxFileBytes":    func(l *Limits) { l.MaxFileBytes = 0 },
		"MaxAttemptBytes": func(l *Limits) { l.MaxAttemptBytes = -1 },
		"MaxDepth":        func(l *Limits) { l.MaxDepth = 0 },
		"MaxFailures":     func(l *Limits) { l.MaxFailures = -1 },
		"MaxOutputBytes":  func(l *Limits) { l.MaxOutputBytes = 10 },
		"excerpt":         func(l *Limits) { l.ExcerptAfter = -1 },
	} {
		lim := DefaultLimits()
		mut(&lim)
		if _, err := ParseJUnit(strings.NewReader("<testsuite/>"), lim); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A report cut by the limit inside a rune, an entity or a tag is refused
// as too large, not as malformed where the cut fell.
func TestJUnitCutByTheLimitIsTooLarge(t *testing.T) {
	t.Parallel()
	doc := `<testsuite><testcase name="é&amp;"><failure>ü&lt;</failure></testcase></testsuite>`
	for n := 1; n < len(doc); n++ {
		lim := DefaultLimits()
		lim.MaxFileBytes = int64(n)
		if _, err := ParseJUnit(strings.NewReader(doc), lim); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("cut after %d bytes: %v, want ErrTooLarge", n, err)
		}
	}
}
