package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fuzzSecrets splits blob at NUL bytes into at most 6 secrets of at most
// 64 bytes. '*' is dropped: the mask itself is made of it, so a secret
// holding "***" would show up in any masked output.
func fuzzSecrets(blob []byte) []Value {
	var vals []Value
	for _, s := range bytes.Split(bytes.ReplaceAll(blob, []byte("*"), nil), []byte{0}) {
		if len(s) > 0 && len(vals) < 6 {
			vals = append(vals, New(string(s[:min(len(s), 64)])))
		}
	}
	return vals
}

// encoding is a way a job might print a secret.
type encoding struct {
	f func(string) string
	// least is, for an encoding printed over several lines, the length
	// from which no line may survive but the last (see minWrappedBytes);
	// 0 for an encoding on one line.
	least int
}

// encodings are what a job might print a secret as, computed here
// independently of forms.
var encodings = append(oneLineEncodings(
	func(s string) string { return s },
	func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	func(s string) string { return base64.StdEncoding.EncodeToString([]byte("x" + s)) },
	func(s string) string { return base64.StdEncoding.EncodeToString([]byte("xy" + s)) },
	func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) },
	func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte("xyz" + s + "z")) },
	func(s string) string { return base64.URLEncoding.EncodeToString([]byte("x" + s)) },
	url.QueryEscape,
	url.PathEscape,
	func(s string) string { b, _ := json.Marshal(s); return string(b) },
	func(s string) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		return b.String()
	},
	func(s string) string { // the longest line, as a program printing line by line would
		var longest string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.Trim(l, " \t\r"); len(l) > len(longest) {
				longest = l
			}
		}
		return longest
	},
	func(s string) string { return hex.EncodeToString([]byte(s)) },
	func(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) },
),
	// base64, base64 -w 64 or openssl base64, xxd -p and xxd -p -u, of
	// the secret alone or after a byte or two.
	encoding{func(s string) string { return wrap(base64.StdEncoding.EncodeToString([]byte(s)), 76) }, 8},
	encoding{func(s string) string { return wrap(base64.StdEncoding.EncodeToString([]byte(s)), 64) }, 8},
	encoding{func(s string) string { return wrap(base64.StdEncoding.EncodeToString([]byte("x"+s)), 64) }, 11},
	encoding{func(s string) string { return wrap(base64.StdEncoding.EncodeToString([]byte("xy"+s)), 76) }, 11},
	encoding{func(s string) string { return wrap(hex.EncodeToString([]byte(s)), 60) }, 12},
	encoding{func(s string) string { return wrap(strings.ToUpper(hex.EncodeToString([]byte(s))), 60) }, 12},
)

func oneLineEncodings(fs ...func(string) string) []encoding {
	out := make([]encoding, len(fs))
	for i, f := range fs {
		out[i] = encoding{f: f}
	}
	return out
}

// fuzzText expands template: byte 0x01 followed by a selector byte becomes
// an encoding of a secret; everything else is literal.
func fuzzText(template []byte, vals []Value) string {
	var b strings.Builder
	for i := 0; i < len(template) && b.Len() < 8<<10; i++ {
		if template[i] == 1 && i+1 < len(template) && len(vals) > 0 {
			sel := int(template[i+1])
			b.WriteString(encodings[sel%len(encodings)].f(vals[sel/len(encodings)%len(vals)].Reveal()))
			i++
			continue
		}
		b.WriteByte(template[i])
	}
	return b.String()
}

// fuzzChunks cuts text into pieces of cuts[i]%32 bytes, the last piece
// taking the rest; a cut byte ≥ 0xe0 asks for a Flush after its piece.
func fuzzChunks(text string, cuts []byte) (chunks []string, flushAfter []bool) {
	for _, c := range cuts {
		n := min(int(c%32), len(text))
		chunks = append(chunks, text[:n])
		flushAfter = append(flushAfter, c >= 0xe0)
		text = text[n:]
	}
	return append(chunks, text), append(flushAfter, false)
}

// assertNoLeak checks that out holds no secret and, for secrets long
// enough to have derived forms, none of the whole encodings, nor a line of
// one printed over several lines but a short last line.
func assertNoLeak(t *testing.T, vals []Value, out string) {
	t.Helper()
	for _, v := range vals {
		s := v.Reveal()
		if strings.Contains(out, s) {
			t.Fatalf("output %q contains secret %q", out, s)
		}
		if len(s) < MinFormLen {
			continue
		}
		for i, enc := range encodings[1:] {
			e := enc.f(s)
			if len(e) >= MinFormLen && strings.Contains(out, e) {
				t.Fatalf("output %q contains encoding %d of secret %q: %q", out, i+1, s, e)
			}
			if enc.least == 0 || len(s) > maxEncodedLen {
				continue
			}
			lines := strings.Split(strings.TrimSuffix(e, "\n"), "\n")
			for j, line := range lines {
				if (len(line) >= enc.least || j < len(lines)-1) && strings.Contains(out, line) {
					t.Fatalf("output %q contains line %d of encoding %d of secret %q: %q", out, j+1, i+1, s, line)
				}
			}
		}
	}
}

func FuzzMasker(f *testing.F) {
	f.Fuzz(func(t *testing.T, secrets, template, cuts []byte) {
		vals := fuzzSecrets(secrets)
		text := fuzzText(template, vals)
		chunks, flushAfter := fuzzChunks(text, cuts)

		patterns := patternsOf(vals)
		want := naiveMask(patterns, text)
		if got := mask(t, vals, chunks...); got != want {
			t.Fatalf("values %q, chunks %q:\ngot  %q\nwant %q", vals, chunks, got, want)
		}
		assertNoLeak(t, vals, want)
		if !slicesAnyIn(patterns, text) && want != text {
			t.Fatalf("text without any secret changed: %q → %q", text, want)
		}

		// With flushes the output may differ (a flushed tail is masked
		// early or passed on), but it must still leak nothing.
		var out bytes.Buffer
		k := NewMasker(&out, vals)
		for i, c := range chunks {
			if n, err := k.Write([]byte(c)); err != nil || n != len(c) {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if flushAfter[i] {
				if err := k.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		assertNoLeak(t, vals, out.String())
	})
}

func slicesAnyIn(patterns []string, text string) bool {
	for _, p := range patterns {
		if strings.Contains(text, p) {
			return true
		}
	}
	return false
}

// parseErrorRE is every message parseFile may give: line numbers and valid
// names only, so that no line's content (perhaps a secret) is echoed.
var parseErrorRE = regexp.MustCompile(`^line [0-9]+: (expected NAME=value|` +
	`the text before '=' is not a valid secret name \(use upper-case letters, digits and '_', not starting with a digit\)|` +
	`[A-Z_][A-Z0-9_]* is empty or blank|` +
	`[A-Z_][A-Z0-9_]* is set again \(first on line [0-9]+\)|` +
	`[A-Z_][A-Z0-9_]* contains a NUL byte, which an environment variable cannot hold)$`)

func FuzzParseFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := parseFile(data)
		if err != nil {
			if !parseErrorRE.MatchString(err.Error()) {
				t.Fatalf("unexpected error message: %q", err)
			}
			return
		}
		var b strings.Builder
		for name, v := range vals {
			if !ValidName(name) || blank(v) || strings.ContainsAny(v, "\n\x00") {
				t.Fatalf("parsed %q=%q", name, v)
			}
			if !bytes.Contains(data, []byte(name+"="+v)) {
				t.Fatalf("value of %s is not verbatim from the file: %q", name, v)
			}
			b.WriteString(name + "=" + v + "\r\n")
		}
		again, err := parseFile([]byte(b.String()))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", b.String(), err)
		}
		if diff := cmp.Diff(vals, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
