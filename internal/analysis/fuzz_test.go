package analysis

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func addSamples(f *testing.F) {
	f.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkBounds asserts what every report promises whatever its input.
func checkBounds(t *testing.T, rep *Report, err error, lim Limits) {
	t.Helper()
	if err != nil {
		if rep != nil {
			t.Fatalf("error %v with a report", err)
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrRefused) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error %v is none of ErrMalformed, ErrRefused, ErrTooLarge", err)
		}
		return
	}
	if len(rep.Tests) > lim.MaxFailures || len(rep.Passed) > lim.MaxPassed || len(rep.Passed) > rep.Totals.Passed {
		t.Fatalf("kept %d tests and %d passed ids over the limits or the totals %+v", len(rep.Tests), len(rep.Passed), rep.Totals)
	}
	for _, r := range rep.Tests {
		if len(r.Output) > lim.MaxOutputBytes || len(r.Message) > lim.MaxOutputBytes {
			t.Fatalf("output %d and message %d bytes over %d", len(r.Output), len(r.Message), lim.MaxOutputBytes)
		}
		if !utf8.ValidString(r.Output) || !utf8.ValidString(r.Message) {
			t.Fatalf("invalid UTF-8 kept: %q %q", r.Message, r.Output)
		}
		if strings.Contains(r.Message, "\n") {
			t.Fatalf("message %q has more than one line", r.Message)
		}
	}
}

func FuzzParseJUnit(f *testing.F) {
	addSamples(f)
	f.Add([]byte(`<testsuite><testcase name="a"><failure message="m">text &amp; more<![CDATA[x]]]]><!-- c --></failure></testcase></testsuite>`))
	f.Add([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><testsuites><testsuite name="s" errors="1"/></testsuites>`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><testsuite/>`))
	lim := DefaultLimits()
	lim.MaxFailures, lim.MaxPassed, lim.MaxOutputBytes, lim.MaxDepth = 3, 3, 64, 16
	f.Fuzz(func(t *testing.T, in []byte) {
		rep, err := ParseJUnit(bytes.NewReader(in), lim)
		checkBounds(t, rep, err, lim)

		// A report accepted is well-formed XML to encoding/xml too.
		if _, serr := stdTokens(bytes.NewReader(in)); err == nil && serr != nil {
			t.Fatalf("accepted %q, which encoding/xml refuses: %v", in, serr)
		}
	})
}

func FuzzParseGoTestJSON(f *testing.F) {
	f.Add([]byte(`{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:3: boom\n"}
{"Action":"fail","Package":"p","Test":"TestA","Elapsed":0.1}
{"Action":"fail","Package":"p"}
`))
	f.Add([]byte(`{"ImportPath":"p [p.test]","Action":"build-output","Output":"p/x.go:1:1: bad\n"}
{"ImportPath":"p [p.test]","Action":"build-fail"}
{"Action":"fail","Package":"p","FailedBuild":"p [p.test]"}
`))
	f.Add([]byte("# p\nstderr\n{\"Action\":\"run\",\"Package\":\"p\",\"Test\":\"T/sub\"}\n{\"Action\":\"fa"))
	lim := DefaultLimits()
	lim.MaxFailures, lim.MaxPassed, lim.MaxOutputBytes = 3, 3, 64
	f.Fuzz(func(t *testing.T, in []byte) {
		rep, err := ParseGoTestJSON(bytes.NewReader(in), lim)
		checkBounds(t, rep, err, lim)
	})
}

func FuzzExcerpt(f *testing.F) {
	f.Add([]byte("a\nb\n./x.go:1:2: bad\nc\n"))
	f.Add([]byte("error: weak\n\x1b[31m--- FAIL: TestX\x1b[0m\r\nnext"))
	f.Add([]byte("progress 1%\rprogress 100%\npanic: x"))
	f.Add([]byte("\xff\xfeTraceback (most recent call last):\n"))
	f.Add([]byte("make a thing\nMAKE[1] x:y :\x1b[0m3\nerrorfaifail●\nFATAL TRACEBACK npm exit :7"))
	lim := DefaultLimits()
	lim.ExcerptBefore, lim.ExcerptAfter = 2, 2
	f.Fuzz(func(t *testing.T, in []byte) {
		ex, err := Excerpt(bytes.NewReader(in), lim)
		if err != nil {
			t.Fatal(err)
		}
		checkOffsets(t, in, ex)
		if n := strings.Count(ex.Text, "\n") + 1; n > lim.ExcerptBefore+1+lim.ExcerptAfter {
			t.Fatalf("%d lines", n)
		}
		if ex.Found != (ex.Pattern != PatternNone) || !utf8.ValidString(ex.Text) {
			t.Fatalf("excerpt %+v", ex)
		}
		// The keyword automaton finds what a search for each keyword in
		// the lower-cased input finds.
		lower := bytes.Clone(in)
		for i, c := range lower { // ASCII only, as the automaton folds
			if 'A' <= c && c <= 'Z' {
				lower[i] = c + 'a' - 'A'
			}
		}
		naive := false
		for _, k := range excerptKeywords {
			naive = naive || bytes.Contains(lower, []byte(k))
		}
		if (keywords.find(in) >= 0) != naive {
			t.Fatalf("%q: the automaton says %v", in, !naive)
		}
	})
}
