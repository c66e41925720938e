package analysis

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// want is what a test asserts of one kept TestResult: its id, outcome and
// the parts of its message, location and output that a person reads.
type want struct {
	ID      string
	Status  Status
	Message string // a substring of Message
	File    string // a suffix of File
	Line    int
	Output  string // a substring of Output
	Flaky   bool
	Reruns  int
}

func checkReport(t *testing.T, rep *Report, totals Totals, tests []want, passed []string) {
	t.Helper()
	if diff := cmp.Diff(totals, rep.Totals); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
	if len(rep.Tests) != len(tests) {
		var ids []string
		for _, r := range rep.Tests {
			ids = append(ids, r.ID()+" "+string(r.Status))
		}
		t.Fatalf("kept %d tests, want %d: %q", len(rep.Tests), len(tests), ids)
	}
	for i, w := range tests {
		r := rep.Tests[i]
		if r.ID() != w.ID || r.Status != w.Status || r.Flaky != w.Flaky || r.Reruns != w.Reruns {
			t.Errorf("test %d: %q %s flaky=%v reruns=%d, want %q %s flaky=%v reruns=%d",
				i, r.ID(), r.Status, r.Flaky, r.Reruns, w.ID, w.Status, w.Flaky, w.Reruns)
		}
		if !strings.Contains(r.Message, w.Message) {
			t.Errorf("%s: message %q does not contain %q", w.ID, r.Message, w.Message)
		}
		if strings.Contains(r.Message, "\n") {
			t.Errorf("%s: message %q has more than one line", w.ID, r.Message)
		}
		if !strings.HasSuffix(r.File, w.File) || r.Line != w.Line {
			t.Errorf("%s: location %s:%d, want …%s:%d", w.ID, r.File, r.Line, w.File, w.Line)
		}
		if !strings.Contains(r.Output, w.Output) {
			t.Errorf("%s: output %q does not contain %q", w.ID, r.Output, w.Output)
		}
	}
	if passed != nil {
		if diff := cmp.Diff(passed, rep.Passed); diff != "" {
			t.Errorf("passed ids (-want +got):\n%s", diff)
		}
	}
}

func parseSample(t *testing.T, name string) *Report {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := ParseJUnit(f, DefaultLimits())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rep
}

func TestJUnitSamples(t *testing.T) {
	t.Parallel()
	t.Run("JestJUnit", func(t *testing.T) {
		t.Parallel()
		checkJestReport(t, parseSample(t, "jest-junit.xml"))
	})
	t.Run("Surefire", func(t *testing.T) {
		t.Parallel()
		const c = "com.example.shop.CartTest::"
		checkReport(t, parseSample(t, "surefire.xml"), Totals{Passed: 2, Failed: 2, Errored: 1, Skipped: 1}, []want{
			{ID: c + "appliesDiscount", Status: StatusFailed, Message: "expected: <90.0> but was: <100.0>",
				File: "CartTest.java", Line: 41, Output: "cart total before discount", Reruns: 2},
			{ID: c + "loadsPrices", Status: StatusErrored, Message: `because "this.prices" is null`,
				File: "CartTest.java", Line: 58, Output: "WARN price list not configured"},
			{ID: c + "talksToWarehouse", Status: StatusPassed, Message: "Connection refused",
				File: "CartTest.java", Line: 70, Output: "connecting to warehouse", Flaky: true, Reruns: 1},
			{ID: c + "checksOut", Status: StatusFailed, Message: "order id must not be blank", File: "CartTest.java", Line: 88},
			{ID: c + "exportsCsv", Status: StatusSkipped, Message: "CSV export is disabled on CI"},
		}, []string{c + "addsItems", c + "talksToWarehouse"})
	})
	t.Run("Gradle", func(t *testing.T) {
		t.Parallel()
		const c = "org.example.GreeterTest::"
		checkReport(t, parseSample(t, "gradle.xml"), Totals{Passed: 2, Failed: 1, Skipped: 1}, []want{
			{ID: c + "greetsNobody()", Status: StatusFailed, Message: "expected: <Hello, nobody!> but was: <Hello, !>",
				File: "GreeterTest.java", Line: 19},
			{ID: c + "greetsInKlingon()", Status: StatusSkipped},
		}, []string{c + "greetsByName()", c + "[1] lang=fr"})
	})
	t.Run("PHPUnit", func(t *testing.T) {
		t.Parallel()
		const c = "App.Tests.InvoiceTest::"
		checkReport(t, parseSample(t, "phpunit.xml"), Totals{Passed: 2, Failed: 1, Errored: 1, Skipped: 1}, []want{
			{ID: c + `testTax with data set "reduced"`, Status: StatusFailed, Message: "Failed asserting that 19.0 matches expected 7.0.",
				File: "/srv/app/tests/InvoiceTest.php", Line: 27},
			{ID: c + "testEmptyInvoice", Status: StatusErrored, Message: "TypeError: App\\Invoice::total(): Return value must be of type float",
				File: "/srv/app/tests/InvoiceTest.php", Line: 40, Output: "building invoice #1"},
			{ID: c + "testPdfExport", Status: StatusSkipped, File: "/srv/app/tests/InvoiceTest.php", Line: 50},
		}, []string{c + "testTotalIsSum", c + `testTax with data set "standard"`})
	})
	t.Run("Nextest", func(t *testing.T) {
		t.Parallel()
		checkReport(t, parseSample(t, "nextest.xml"), Totals{Passed: 3, Failed: 1, Skipped: 1}, []want{
			{ID: "tokenizer::lexer::tests::handles_unicode", Status: StatusFailed,
				Message: "panicked at src/lexer.rs:88:9: assertion `left == right` failed", File: "src/lexer.rs", Line: 88,
				Output: "left: 3", Reruns: 1},
			{ID: "tokenizer::lexer::tests::slow_fixture", Status: StatusSkipped},
			{ID: "tokenizer::integration::clock_skew_tolerance", Status: StatusPassed,
				Message: "panicked at tests/integration.rs:41:5: elapsed 103ms exceeds tolerance", File: "tests/integration.rs", Line: 41,
				Output: "elapsed 103ms exceeds tolerance of 100ms", Flaky: true, Reruns: 1},
		}, []string{"tokenizer::lexer::tests::splits_words", "tokenizer::integration::reads_fixture_dir", "tokenizer::integration::clock_skew_tolerance"})
	})
}

// checkJestReport asserts what jest-junit wrote of sampleJest (and of the
// committed sample, made from the same project).
func checkJestReport(t *testing.T, rep *Report) {
	t.Helper()
	checkReport(t, rep, Totals{Passed: 2, Failed: 2, Skipped: 1}, []want{
		{ID: "math subtracts wrongly", Status: StatusFailed, Message: "Error: expect(received).toBe(expected)",
			File: "math.test.js", Line: 4, Output: "Received: 4"},
		{ID: "math divides", Status: StatusSkipped},
		{ID: "math throws", Status: StatusFailed, Message: "TypeError: cannot read properties of undefined (reading 'x')",
			File: "math.test.js", Line: 6},
	}, []string{"math adds", "top level passes"})
}

func TestJUnitDurationsAndRoots(t *testing.T) {
	t.Parallel()
	rep, err := ParseJUnit(strings.NewReader(`<?xml version="1.0" encoding="ISO-8859-1"?>
<testsuite name="root">
  <testcase name="caf`+"\xe9"+`" time="1,234.5"/>
  <testcase name="b" time="not a number"/>
  <testcase name="c" classname="root" time="0.25"><error message="Boom"/></testcase>
</testsuite>`), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, Totals{Passed: 2, Errored: 1}, []want{{ID: "root::c", Status: StatusErrored, Message: "Boom"}},
		[]string{"root::café", "root::b"})
	if got := rep.Tests[0].Duration; got != 250*time.Millisecond {
		t.Errorf("duration %v, want 250ms", got)
	}
}

func TestJUnitSuiteFailedWithoutCases(t *testing.T) {
	t.Parallel()
	rep, err := ParseJUnit(strings.NewReader(`<testsuites><testsuite name="tests/test_db.py" errors="1" tests="0"/></testsuites>`), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, Totals{Errored: 1}, []want{{ID: "tests/test_db.py", Status: StatusErrored, Message: "no test cases"}}, nil)
}

func TestJUnitRefusesHostileInput(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	lim.MaxDepth = 8
	lim.MaxFileBytes = 1 << 20
	cases := map[string]struct {
		in   string
		want error
		says string
	}{
		"BillionLaughs": {`<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><testsuite>&lol2;</testsuite>`,
			ErrRefused, "DOCTYPE"},
		"ExternalEntity":   {`<!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><testsuite name="&xxe;"/>`, ErrRefused, "DOCTYPE"},
		"UndeclaredEntity": {`<testsuite name="&xxe;"/>`, ErrMalformed, "entity"},
		"DeepNesting":      {strings.Repeat("<testsuite>", 9) + strings.Repeat("</testsuite>", 9), ErrRefused, "deeper than 8"},
		"HugeTag":          {`<testsuite ` + strings.Repeat(`a="b" `, 60000) + `/>`, ErrRefused, "tag longer than"},
		"TooLarge":         {`<testsuite>` + strings.Repeat(`<testcase name="x"/>`, 60000) + `</testsuite>`, ErrTooLarge, "1048576 bytes per report file"},
		"NotJUnit":         {`<html><body/></html>`, ErrMalformed, "<html>"},
		"NotXML":           {`{"Action":"run"}`, ErrMalformed, "no <testsuites>"},
		"Empty":            {``, ErrMalformed, "no <testsuites>"},
		"Unclosed":         {`<testsuite><testcase name="a">`, ErrMalformed, "not well-formed"},
		"Mismatched":       {`<testsuite><testcase></testsuite></testcase>`, ErrMalformed, "not well-formed"},
		"UTF16":            {`<?xml version="1.0" encoding="UTF-16"?><testsuite/>`, ErrMalformed, "UTF-16"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rep, err := ParseJUnit(strings.NewReader(c.in), lim)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v (report %v), want %v saying %q", err, rep, c.want, c.says)
			}
			if rep != nil {
				t.Errorf("a refused report returned %+v", rep)
			}
		})
	}
}

func TestJUnitExactlyAtTheLimit(t *testing.T) {
	t.Parallel()
	doc := `<testsuite><testcase name="a"/></testsuite>`
	lim := DefaultLimits()
	lim.MaxFileBytes = int64(len(doc))
	if _, err := ParseJUnit(strings.NewReader(doc), lim); err != nil {
		t.Fatalf("a report of exactly the limit: %v", err)
	}
	lim.MaxFileBytes--
	if _, err := ParseJUnit(strings.NewReader(doc), lim); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a report one byte over the limit: %v", err)
	}
}

// A test's huge output is cut, on a rune boundary, without the decoder
// ever holding it: the report stays valid and the output bounded.
func TestJUnitCapsHugeText(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("é&amp;<![CDATA[]]]]>", 1) + strings.Repeat("ü&lt;x", 200_000)
	doc := `<testsuite><testcase name="a"><failure message="` + strings.Repeat("ö&quot;", 50_000) + `">` + huge +
		`</failure><system-out><![CDATA[` + strings.Repeat("]", 100_000) + `tail]]></system-out><!--` +
		strings.Repeat("-x", 100_000) + `--></testcase><testcase name="b"/></testsuite>`
	lim := DefaultLimits()
	rep, err := ParseJUnit(strings.NewReader(doc), lim)
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, Totals{Passed: 1, Failed: 1}, []want{{ID: "a", Status: StatusFailed, Message: `ö"ö"`, Output: "é&]]"}},
		[]string{"b"})
	r := rep.Tests[0]
	if len(r.Output) > lim.MaxOutputBytes || len(r.Message) > lim.MaxOutputBytes {
		t.Errorf("output %d bytes and message %d bytes, want at most %d", len(r.Output), len(r.Message), lim.MaxOutputBytes)
	}
}
