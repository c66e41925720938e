package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// values wraps strings as Values.
func values(ss ...string) []Value {
	vs := make([]Value, len(ss))
	for i, s := range ss {
		vs[i] = New(s)
	}
	return vs
}

// maskChunks writes chunks to a new Masker one by one and closes it,
// checking the io.Writer contract and the hold-back bound on the way.
func maskChunks(t testing.TB, k *Masker, chunks [][]byte) string {
	t.Helper()
	var out bytes.Buffer
	k.w = &out
	maxHeld := 0
	if k.m != nil {
		maxHeld = k.m.maxLen - 1
	}
	for _, c := range chunks {
		n, err := k.Write(c)
		if err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v; want %d, nil", c, n, err, len(c))
		}
		if len(k.held) > maxHeld {
			t.Fatalf("holding %d bytes, more than the longest pattern less one (%d)", len(k.held), maxHeld)
		}
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func mask(t testing.TB, vals []Value, chunks ...string) string {
	t.Helper()
	bs := make([][]byte, len(chunks))
	for i, c := range chunks {
		bs[i] = []byte(c)
	}
	return maskChunks(t, NewMasker(nil, vals), bs)
}

// checkSplits masks in split every way that matters: whole, at every
// boundary, at every pair of boundaries (for short inputs), byte by byte
// and in random pieces. Each must give want.
func checkSplits(t *testing.T, vals []Value, in, want string) {
	t.Helper()
	if got := mask(t, vals, in); got != want {
		t.Fatalf("mask(%q) = %q, want %q", in, got, want)
	}
	for i := 0; i <= len(in); i++ {
		if got := mask(t, vals, in[:i], in[i:]); got != want {
			t.Fatalf("mask(%q | %q) = %q, want %q", in[:i], in[i:], got, want)
		}
		if len(in) > 64 {
			continue
		}
		for j := i; j <= len(in); j++ {
			if got := mask(t, vals, in[:i], in[i:j], in[j:]); got != want {
				t.Fatalf("mask(%q | %q | %q) = %q, want %q", in[:i], in[i:j], in[j:], got, want)
			}
		}
	}
	bytewise := make([]string, len(in))
	for i := 0; i < len(in); i++ {
		bytewise[i] = in[i : i+1]
	}
	if got := mask(t, vals, bytewise...); got != want {
		t.Fatalf("mask(%q) byte by byte = %q, want %q", in, got, want)
	}
	rng := rand.New(rand.NewPCG(uint64(len(in)), 7))
	for range 20 {
		if got := mask(t, vals, randomSplit(rng, in)...); got != want {
			t.Fatalf("mask(%q) in random pieces = %q, want %q", in, got, want)
		}
	}
}

func randomSplit(rng *rand.Rand, s string) []string {
	var parts []string
	for len(s) > 0 {
		n := min(len(s), rng.IntN(8))
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return parts
}

const special = `p@ss w/rd+<&>"é`

func jsonOf(s string) string {
	b, _ := json.Marshal(map[string]string{"p": s})
	return string(b)
}

func TestMaskerForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value, in, want string
	}{
		{"Raw", "hunter2!", "token=hunter2! ok\n", "token=*** ok\n"},
		{"Base64Offset0", "hunter2!", "aHVudGVyMiE=\n", "***\n"},
		{"Base64Offset0InsideLongerData", "hunter2!", base64.StdEncoding.EncodeToString([]byte("hunter2!\n")), "***EK"},
		{"Base64Offset1", "hunter2!", "eGh1bnRlcjIh\n", "eG***\n"},
		{"Base64Offset2", "hunter2!", "eHlodW50ZXIyIQ==\n", "eHl***Q==\n"},
		{"Base64RawOffset0", "hunter2!", base64.RawStdEncoding.EncodeToString([]byte("hunter2!")), "***E"},
		{"Base64StdAlphabet", special, base64.StdEncoding.EncodeToString([]byte("xy" + special)), "eHl***"},
		{"Base64URLAlphabet", special, base64.URLEncoding.EncodeToString([]byte("xy" + special)), "eHl***"},
		{"Base64RawURLOffset0", special, base64.RawURLEncoding.EncodeToString([]byte(special)), "***Q"},
		{"Base64InsideLongerData", "hunter2!", base64.StdEncoding.EncodeToString([]byte("Authorization: Basic hunter2!\n")),
			"QXV0aG9yaXphdGlvbjogQmFzaWMg***EK"},
		{"QueryEscape", special, "GET /?p=" + url.QueryEscape(special) + "&x=1", "GET /?p=***&x=1"},
		{"PathEscape", special, "GET /u/" + url.PathEscape(special) + "/x", "GET /u/***/x"},
		{"JSONMarshal", special, jsonOf(special), `{"p":"***"}`},
		{"JSONNoHTMLEscape", special, `{"p":"p@ss w/rd+<&>\"é"}`, `{"p":"***"}`},
		{"LineOfMultiLine", "line-one\nline-two\nab\n", "> line-two\n", "> ***\n"},
		{"ShortLineNotMasked", "line-one\nline-two\nab\n", "ab\n", "ab\n"},
		{"WholeMultiLine", "line-one\nline-two\nab\n", "[line-one\nline-two\nab\n]", "[***]"},
		{"ShortValueExact", "ab1", "xab1y", "x***y"},
		{"ShortValueNoForms", "ab1", "YWIx " + url.QueryEscape("ab1"), "YWIx ***"},
		{"WhitespaceValueExact", "    ", "a    b  c", "a***b  c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkSplits(t, values(tc.value), tc.in, tc.want)
		})
	}
}

func TestMasker(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		values []string
		in     string
		want   string
	}{
		{"NoValues", nil, "plain text\n", "plain text\n"},
		{"EmptyValueIgnored", []string{""}, "plain text\n", "plain text\n"},
		{"NoSecretIdentical", []string{"hunter2!"}, "hunter hunter2 unter2! hunter2?\n", "hunter hunter2 unter2! hunter2?\n"},
		{"AtStart", []string{"hunter2!"}, "hunter2! rest", "*** rest"},
		{"AtEnd", []string{"hunter2!"}, "rest hunter2!", "rest ***"},
		{"Only", []string{"hunter2!"}, "hunter2!", "***"},
		{"Repeated", []string{"hunter2!"}, "hunter2! hunter2!\nhunter2!", "*** ***\n***"},
		{"AdjacentIsOneMask", []string{"hunter2!"}, "hunter2!hunter2!", "***"},
		{"PartialAtEndPassesOnClose", []string{"hunter2!"}, "x hunter2", "x hunter2"},
		{"RestartInsideNearMiss", []string{"hunter2!"}, "hunthunter2hunter2!", "hunthunter2***"},
		{"Overlapping", []string{"abcdef12", "ef12ghij"}, "<abcdef12ghij>", "<***>"},
		{"Nested", []string{"abcdefgh", "cdef"}, "abcdefgh cdef abcdefg", "*** *** ab***g"},
		{"PrefixOfAnother", []string{"abcd-x", "abcd-xyz-long"}, "abcd-xyz abcd-xyz-long", "***yz ***"},
		{"TwoSecretsTouching", []string{"alpha-1", "beta-22"}, "alpha-1beta-22", "***"},
		{"SelfOverlap", []string{"aaaa"}, "aaaaaaa baaab", "*** baaab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkSplits(t, values(tc.values...), tc.in, tc.want)
		})
	}
}

func TestMaskerHoldsBackOnlyWhatCouldMatch(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	k := NewMasker(&out, values("hunter2!"))
	step := func(in, want string) {
		t.Helper()
		if _, err := k.Write([]byte(in)); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Fatalf("after Write(%q) output = %q, want %q", in, out.String(), want)
		}
	}
	step("log line\n", "log line\n")
	step("pass: hun", "log line\npass: ")
	step("ter", "log line\npass: ")
	step("2!\n", "log line\npass: ***\n")
	step("hunter2", "log line\npass: ***\n")
	step("?", "log line\npass: ***\nhunter2?")
}

func TestMaskerFlush(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		chunks []string // Flush after each but the last
		want   string
	}{
		{"ShortTailAsIs", []string{"x hun", "ter2! y"}, "x hun*** y"},
		{"LongTailMasked", []string{"x hunte", "r2! y"}, "x *** y"},
		{"LongTailFalseAlarm", []string{"x hunte", "d y"}, "x ***d y"},
		{"FlushAgainMidSecret", []string{"x hunt", "e", "r2! y"}, "x *** y"},
		{"ShortThenLong", []string{"x hu", "nte", "r2! y"}, "x hu*** y"},
		{"NothingHeld", []string{"plain ", "text"}, "plain text"},
		{"Prompt", []string{"Password: ", "ok"}, "Password: ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			k := NewMasker(&out, values("hunter2!"))
			for i, c := range tc.chunks {
				if _, err := k.Write([]byte(c)); err != nil {
					t.Fatal(err)
				}
				if i < len(tc.chunks)-1 {
					if err := k.Flush(); err != nil {
						t.Fatal(err)
					}
					if len(k.held) != 0 {
						t.Fatalf("Flush left %d bytes held", len(k.held))
					}
				}
			}
			if err := k.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("output = %q, want %q", out.String(), tc.want)
			}
		})
	}
}

// closeRecorder records whether Close was called on it.
type closeRecorder struct {
	bytes.Buffer
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestMaskerClose(t *testing.T) {
	t.Parallel()
	var w closeRecorder
	k := NewMasker(&w, values("hunter2!"))
	if _, err := k.Write([]byte("x hunter")); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if w.String() != "x hunter" || w.closed {
		t.Errorf("after Close: output %q, underlying closed %v; want %q, false", w.String(), w.closed, "x hunter")
	}
	if err := k.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if n, err := k.Write([]byte("more")); n != 0 || !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %d, %v; want 0, ErrClosed", n, err)
	}
	if err := k.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
}

type failWriter struct {
	n   int // bytes accepted per call
	err error
}

func (f failWriter) Write(p []byte) (int, error) { return min(f.n, len(p)), f.err }

func TestMaskerWriteErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk full")
	for _, tc := range []struct {
		name string
		w    io.Writer
		want error
	}{
		{"Error", failWriter{0, boom}, boom},
		{"ShortWrite", failWriter{2, nil}, io.ErrShortWrite},
	} {
		for _, vals := range [][]Value{nil, values("hunter2!")} {
			k := NewMasker(tc.w, vals)
			if n, err := k.Write([]byte("some output\n")); n != 0 || !errors.Is(err, tc.want) {
				t.Errorf("%s: Write = %d, %v; want 0, %v", tc.name, n, err, tc.want)
			}
			if _, err := k.Write([]byte("x")); !errors.Is(err, tc.want) {
				t.Errorf("%s: the error is not sticky: %v", tc.name, err)
			}
			if err := k.Close(); !errors.Is(err, tc.want) {
				t.Errorf("%s: Close = %v, want %v", tc.name, err, tc.want)
			}
		}
	}
}

func TestMaskerConcurrentWrites(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	k := NewMasker(&out, values("hunter2!"))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if _, err := k.Write([]byte("a hunter2! b\n")); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("a *** b\n", 800); out.String() != want {
		t.Errorf("concurrent output is not 800 masked lines: %q…", out.String()[:min(out.Len(), 100)])
	}
}

// TestMaskerLargeWrite crosses the internal chunk size with a secret
// straddling the boundary.
func TestMaskerLargeWrite(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("x", chunk-3) + "hunter2!" + strings.Repeat("y", chunk)
	want := strings.Repeat("x", chunk-3) + Mask + strings.Repeat("y", chunk)
	if got := mask(t, values("hunter2!"), in); got != want {
		t.Errorf("a secret across the internal chunk boundary is not masked")
	}
}

// naiveMask is the reference: find every occurrence of every pattern, mask
// the union, one Mask per maximal run.
func naiveMask(patterns []string, text string) string {
	masked := make([]bool, len(text))
	for _, p := range patterns {
		for i := strings.Index(text, p); i >= 0; {
			for j := i; j < i+len(p); j++ {
				masked[j] = true
			}
			next := strings.Index(text[i+1:], p)
			if next < 0 {
				break
			}
			i += 1 + next
		}
	}
	var b strings.Builder
	for i := 0; i < len(text); i++ {
		switch {
		case !masked[i]:
			b.WriteByte(text[i])
		case i == 0 || !masked[i-1]:
			b.WriteString(Mask)
		}
	}
	return b.String()
}

func patternsOf(vals []Value) []string {
	var ps []string
	for _, v := range vals {
		ps = append(ps, forms(v.Reveal())...)
	}
	return dedupe(ps)
}

// TestMaskerMatchesReference compares the streaming Masker, with its
// transition table full and with only the root dense (every other state
// sparse), against naiveMask on random secrets over a small alphabet, so
// that overlaps and near misses are common.
func TestMaskerMatchesReference(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	word := func(alphabet string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for round := range 300 {
		var vals []Value
		for range 1 + rng.IntN(4) {
			vals = append(vals, New(word("abc\n", 1+rng.IntN(9))))
		}
		patterns := patternsOf(vals)
		var text strings.Builder
		for range rng.IntN(12) {
			text.WriteString(word("abcxyz\n ", rng.IntN(6)))
			if ps := patterns; rng.IntN(2) == 0 {
				text.WriteString(ps[rng.IntN(len(ps))])
			}
		}
		in := text.String()
		want := naiveMask(patterns, in)
		for _, cells := range []int{denseCells, 1} {
			k := &Masker{m: newMatcher(patterns, cells)}
			chunks := [][]byte{}
			for _, c := range randomSplit(rng, in) {
				chunks = append(chunks, []byte(c))
			}
			if got := maskChunks(t, k, chunks); got != want {
				t.Fatalf("round %d, cells %d: values %q, input %q: got %q, want %q", round, cells, vals, in, got, want)
			}
		}
	}
}

// TestMaskerLongSecret uses a key long enough that most of its automaton
// is sparse.
func TestMaskerLongSecret(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	raw := make([]byte, 3000)
	for i := range raw {
		raw[i] = byte(rng.IntN(256))
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	var key strings.Builder
	key.WriteString("-----BEGIN KEY-----\n")
	for i := 0; i < len(b64); i += 64 {
		key.WriteString(b64[i:min(i+64, len(b64))] + "\n")
	}
	key.WriteString("-----END KEY-----")
	k := NewMasker(nil, values(key.String()))
	if k.m.ndense >= int32(len(k.m.fail)) {
		t.Fatalf("expected sparse states: %d dense of %d", k.m.ndense, len(k.m.fail))
	}
	line := b64[640:704]
	in := "cat key\n" + key.String() + "\nline: " + line + "\njson: " + jsonOf(key.String()) + "\n" +
		base64.StdEncoding.EncodeToString([]byte("x"+key.String())) + "\n"
	got := maskChunks(t, k, [][]byte{[]byte(in[:100]), []byte(in[100:2000]), []byte(in[2000:])})
	for _, leak := range []string{line, b64[:64], "-----BEGIN KEY-----"} {
		if strings.Contains(got, leak) {
			t.Errorf("output contains %q", leak)
		}
	}
	if want := naiveMask(patternsOf(values(key.String())), in); got != want {
		t.Errorf("output differs from the reference:\n%s\nwant\n%s", got, want)
	}
}

// TestMaskerBenchInput checks the benchmark's work: every secret printed in
// the log is masked, and the rest is untouched.
func TestMaskerBenchInput(t *testing.T) {
	t.Parallel()
	vals, text := benchInput()
	got := mask(t, vals, string(text[:100000]), string(text[100000:]))
	for _, v := range vals {
		if strings.Contains(got, v.Reveal()) {
			t.Errorf("output contains a secret")
		}
	}
	if want := naiveMask(patternsOf(vals), string(text)); got != want {
		t.Errorf("output differs from the reference")
	}
	if strings.Count(got, Mask) < 50 {
		t.Errorf("only %d masks: the input prints too few secrets to measure", strings.Count(got, Mask))
	}
}
