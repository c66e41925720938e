package analysis

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// errDirective stands for encoding/xml's Directive token (<!DOCTYPE ...>,
// <!ENTITY ...>): the tokenizer refuses what encoding/xml passes on, on
// purpose, so a Directive counts as a refusal when comparing them.
var errDirective = errors.New("a directive")

// stdTokens is encoding/xml's Strict reading of in, as the tokenizer's
// caller sees it: start tags with their attributes, end tags and text
// (adjacent runs joined, empty ones dropped), comments and processing
// instructions left out, and the nesting checks RawToken leaves to its
// caller (as parseJUnit made them before the tokenizer) made.
func stdTokens(in io.Reader) ([]string, error) {
	d := xml.NewDecoder(in)
	d.Strict = true
	d.CharsetReader = charsetReader
	var toks, open []string
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			toks = append(toks, "T"+text.String())
			text.Reset()
		}
	}
	qname := func(n xml.Name) string {
		if n.Space != "" {
			return n.Space + ":" + n.Local
		}
		return n.Local
	}
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			if len(open) > 0 {
				return toks, fmt.Errorf("unclosed <%s>", open[len(open)-1])
			}
			flush()
			return toks, nil
		}
		if err != nil {
			return toks, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			flush()
			s := "S" + qname(t.Name)
			for _, a := range t.Attr {
				s += fmt.Sprintf(" %s=%q", qname(a.Name), a.Value)
			}
			toks = append(toks, s)
			open = append(open, qname(t.Name))
		case xml.EndElement:
			flush()
			if len(open) == 0 || open[len(open)-1] != qname(t.Name) {
				return toks, fmt.Errorf("</%s> closes no open element", qname(t.Name))
			}
			open = open[:len(open)-1]
			toks = append(toks, "E"+qname(t.Name))
		case xml.CharData:
			text.Write(t)
		case xml.Directive:
			return toks, errDirective
		}
	}
}

// ourTokens is the tokenizer's reading of in, in stdTokens' form, with
// caps too large to cut anything.
func ourTokens(in io.Reader) ([]string, error) {
	z := newXMLTokenizer(in, 1<<30, 1<<30, 1<<30)
	var toks []string
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			toks = append(toks, "T"+text.String())
			text.Reset()
		}
	}
	for {
		kind, err := z.next()
		if err != nil {
			return toks, err
		}
		switch kind {
		case tokEOF:
			flush()
			return toks, nil
		case tokStart:
			flush()
			s := "S" + string(z.name)
			for _, a := range z.attrs {
				s += fmt.Sprintf(" %s=%q", z.attrBuf[a.nameStart:a.nameEnd], z.attrBuf[a.nameEnd:a.valEnd])
			}
			toks = append(toks, s)
		case tokEnd:
			flush()
			toks = append(toks, "E"+string(z.name))
		case tokText:
			text.Write(z.text)
		}
	}
}

// checkMatchesEncodingXML fails unless the tokenizer and encoding/xml both
// accept in with the same tokens or both refuse it; the tokenizer is also
// fed one byte per read, so that every token crosses a buffer boundary.
func checkMatchesEncodingXML(t *testing.T, in []byte) {
	t.Helper()
	want, werr := stdTokens(bytes.NewReader(in))
	got, gerr := ourTokens(bytes.NewReader(in))
	if gerr != nil && !errors.Is(gerr, ErrMalformed) && !errors.Is(gerr, ErrRefused) {
		t.Fatalf("%q: error %v is neither ErrMalformed nor ErrRefused", in, gerr)
	}
	if errors.Is(werr, errDirective) && !errors.Is(gerr, ErrRefused) {
		t.Fatalf("%q: a declaration gave %v, not ErrRefused", in, gerr)
	}
	switch {
	case werr != nil && gerr == nil:
		t.Fatalf("%q: encoding/xml refuses (%v), the tokenizer accepts %q", in, werr, got)
	case werr == nil && gerr != nil:
		t.Fatalf("%q: encoding/xml accepts %q, the tokenizer refuses: %v", in, want, gerr)
	case werr == nil && strings.Join(got, "\x00") != strings.Join(want, "\x00"):
		t.Fatalf("%q: tokens differ:\nencoding/xml %q\ntokenizer    %q", in, want, got)
	}
	slow, serr := ourTokens(iotest.OneByteReader(bytes.NewReader(in)))
	if (serr == nil) != (gerr == nil) || strings.Join(slow, "\x00") != strings.Join(got, "\x00") {
		t.Fatalf("%q: read a byte at a time: %q, %v; at once: %q, %v", in, slow, serr, got, gerr)
	}
}

func FuzzTokenizerMatchesEncodingXML(f *testing.F) {
	addSamples(f)
	for _, s := range []string{
		`<a x="1"y='2' p:z="&lt;&gt;&amp;&apos;&quot;&#65;&#x42;&#x1F600;">t&#10;<![CDATA[<&]]]]><!-- c - -->u<?pi x?></a>`,
		"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a b=\"caf\xe9\">\xe9</a>",
		"<?xml version='1.1'?><a/>",
		"<a>\r\n\r\r]</a>\n<b/>",
		`<a>]]></a>`, `<a b="]]>"/>`, `<a>&#0;</a>`, `<a>&#xD800;</a>`, `<a>&#1114112;</a>`, `<a>&#x;</a>`, `<a>&amp</a>`,
		`<a:b:c/>`, `<:a/>`, `<a: b:="1"/>`, `<1a/>`, `<é.ü/>`, "<a\xffb/>", "<a>\xff</a>", "<a>\x01</a>", "<a>\uFFFE</a>",
		`<a b="<"/>`, `<a b=c/>`, `<a b/>`, `<a / >`, `</a>`, `<a></b>`, `<a>`, `<!--->`, `<!-- a -- b -->`, `<![CDAT[x]]>`,
		`<!DOCTYPE a><a/>`, `<!ENTITY x "y">`, `<a>&unknown;</a>`, `<?xml?>`, `<?xmlx encoding="utf-16"?><a/>`, `<??>`,
		"\ufeff<a/>", "<a>x]]</a>", `<a><![CDATA[]]]></a>`, `<a  b = "1"	/>`, `<a></a >`, `</a >`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkMatchesEncodingXML)
}

// The real tools' reports read the same through both.
func TestXMLTokenizerMatchesEncodingXMLOnSamples(t *testing.T) {
	t.Parallel()
	names, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("samples: %v %v", names, err)
	}
	for _, n := range names {
		in, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		checkMatchesEncodingXML(t, in)
		if toks, err := ourTokens(bytes.NewReader(in)); err != nil || len(toks) < 10 {
			t.Errorf("%s: %d tokens, %v", n, len(toks), err)
		}
	}
}

// Each run keeps textCap bytes at most, cut on a rune boundary and marked,
// and the rest is still read to its end.
func TestXMLTokenizerCuts(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		`<a><![CDATA[0123456789]abcdef]>xyz]]></a>`:      {"Sa", "T0123…", "Ea"},
		`<a><![CDATA[01]]]]></a>`:                        {"Sa", "T01]]", "Ea"},
		`<a b="0123456789&amp;x">0123&amp;456789</a>`:    {`Sa b="0123…"`, "T0123…", "Ea"},
		`<a>012&amp;3456</a>`:                            {"Sa", "T012&…", "Ea"},
		`<a>ééééé</a>`:                                   {"Sa", "Téé…", "Ea"},
		`<a>aéé</a>`:                                     {"Sa", "Taé…", "Ea"},
		`<a>éé</a>`:                                      {"Sa", "Téé", "Ea"},
		`<a><!-- 0123456789-- --></a>`:                   nil, // "--" inside a comment
		`<?xml version="1.0" encoding="UTF-8"?><a>x</a>`: {"Sa", "Tx", "Ea"},
	}
	for in, want := range cases {
		z := newXMLTokenizer(strings.NewReader(in), 4, 1<<10, 8)
		var got []string
		var err error
		for {
			var kind xmlTokKind
			if kind, err = z.next(); err != nil || kind == tokEOF {
				break
			}
			switch kind {
			case tokStart:
				s := "S" + string(z.name)
				for _, a := range z.attrs {
					s += fmt.Sprintf(" %s=%q", z.attrBuf[a.nameStart:a.nameEnd], z.attrBuf[a.nameEnd:a.valEnd])
				}
				got = append(got, s)
			case tokEnd:
				got = append(got, "E"+string(z.name))
			case tokText:
				got = append(got, "T"+string(z.text))
			}
		}
		if want == nil {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: %v, want ErrMalformed", in, err)
			}
			continue
		}
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: %q (%v), want %q", in, got, err, want)
		}
	}
}

// Errors name the byte where the input went wrong and what was wrong.
func TestXMLTokenizerErrorsNameTheOffset(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		`<testsuite><testcase name="a&b"/></testsuite>`: "byte 28: an invalid or undeclared character entity",
		`<testsuite x="1" y=2/>`:                        "byte 20: unquoted or missing value of attribute y in <testsuite>",
		`<testsuite><a></b></testsuite>`:                "byte 18: </b> closes no open element",
		"<testsuite>ok\x00</testsuite>":                 "byte 13: illegal character code U+0000",
		"<testsuite>ok\xff</testsuite>":                 "byte 13: invalid UTF-8",
		`<testsuite a="<"/>`:                            "byte 14: < inside an attribute value",
		`<testsuite><!-- a -- b --></testsuite>`:        `byte 18: "--" inside a comment`,
		`<testsuite>]]></testsuite>`:                    "byte 13: ]]> outside a CDATA section",
	}
	for in, says := range cases {
		_, err := ParseJUnit(strings.NewReader(in), DefaultLimits())
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v, want ErrMalformed saying %q", in, err, says)
		}
	}
}
