package secret

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// wrap breaks s into lines of width characters, each ending in a newline,
// as base64, openssl base64 and xxd -p print.
func wrap(s string, width int) string {
	var b strings.Builder
	for len(s) > width {
		b.WriteString(s[:width] + "\n")
		s = s[width:]
	}
	return b.String() + s + "\n"
}

// printableSecret returns n random printable bytes, none of them '*' (the
// mask), like a token or password kept in an environment variable.
func printableSecret(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		for b[i] == 0 || b[i] == '*' {
			b[i] = byte('!' + rng.IntN('~'-'!'+1))
		}
	}
	return string(b)
}

// encodedOutput is what a command prints when a job pipes a secret
// through it.
type encodedOutput struct {
	command string
	encode  func(secret string) string
	// least is the shortest line that must not survive: the characters
	// made of the secret's bits only are masked from 6 bytes' worth on (8
	// base64 characters, 12 hex digits), and a base64 line has up to 3
	// others (bits of a byte before the secret, the last bits, padding).
	least int
}

// TestMaskerWrappedBase64 masks what `printf %s "$SECRET" | base64` and
// its variants print, for secrets long enough to wrap.
func TestMaskerWrappedBase64(t *testing.T) {
	t.Parallel()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	checkEncodedOutputs(t, []encodedOutput{
		{`base64`, func(s string) string { return wrap(b64(s), 76) }, 8},
		{`base64 -w 64`, func(s string) string { return wrap(b64(s), 64) }, 8},
		{`openssl base64`, func(s string) string { return wrap(b64(s), 64) }, 8},
		{`base64 of "x$SECRET"`, func(s string) string { return wrap(b64("x"+s), 76) }, 11},
		{`openssl base64 of "x$SECRET"`, func(s string) string { return wrap(b64("x"+s), 64) }, 11},
		{`base64 of "xy$SECRET"`, func(s string) string { return wrap(b64("xy"+s), 76) }, 11},
		{`base64 -w 64 of "xy$SECRET"`, func(s string) string { return wrap(b64("xy"+s), 64) }, 11},
	})
}

// TestMaskerHex masks a secret printed as hex: whole, as od and tr or
// hexdump print it, and wrapped at 60 columns, as xxd -p prints it.
func TestMaskerHex(t *testing.T) {
	t.Parallel()
	lower := func(s string) string { return hex.EncodeToString([]byte(s)) }
	upper := func(s string) string { return strings.ToUpper(lower(s)) }
	checkEncodedOutputs(t, []encodedOutput{
		{`xxd -p`, func(s string) string { return wrap(lower(s), 60) }, 12},
		{`xxd -p -u`, func(s string) string { return wrap(upper(s), 60) }, 12},
		{`od -An -tx1 | tr -d ' \n'`, func(s string) string { return lower(s) + "\n" }, 12},
		{`hexdump -ve '1/1 "%.2X"'`, func(s string) string { return upper(s) + "\n" }, 12},
	})
}

// checkEncodedOutputs masks each output, for secrets of 57, 100 and 300
// bytes, written whole and in pieces of every size: no line of the
// encoding may survive, except a last line too short to mask (see
// minWrappedBytes), and the text around it must.
func checkEncodedOutputs(t *testing.T, outputs []encodedOutput) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, size := range []int{57, 100, 300} {
		secret := printableSecret(rng, size)
		m := newMatcher(dedupe(forms(secret)), denseCells)
		for _, o := range outputs {
			t.Run(fmt.Sprintf("%s/%d", o.command, size), func(t *testing.T) {
				t.Parallel()
				encoded := o.encode(secret)
				in := "$ encode\n" + encoded + "done\n"
				want := maskChunks(t, &Masker{m: m}, [][]byte{[]byte(in)})
				if !strings.HasPrefix(want, "$ encode\n") || !strings.HasSuffix(want, "\ndone\n") {
					t.Fatalf("text around the encoding changed: %q", want)
				}
				lines := strings.Split(strings.TrimSuffix(encoded, "\n"), "\n")
				for i, line := range lines {
					if strings.Contains(want, line) && (len(line) >= o.least || i < len(lines)-1) {
						t.Errorf("line %d of %d survives: %q in %q", i+1, len(lines), line, want)
					}
				}
				for n := 1; n <= len(in); n++ {
					var chunks [][]byte
					for rest := in; rest != ""; rest = rest[min(n, len(rest)):] {
						chunks = append(chunks, []byte(rest[:min(n, len(rest))]))
					}
					if got := maskChunks(t, &Masker{m: m}, chunks); got != want {
						t.Fatalf("in pieces of %d bytes:\n got %q\nwant %q", n, got, want)
					}
				}
			})
		}
	}
}

// TestMaskerLeavesShortPiecesOfWrappedLines checks that a line break near
// the end of an encoding does not make its last few characters a pattern:
// those occur in output that holds no secret.
func TestMaskerLeavesShortPiecesOfWrappedLines(t *testing.T) {
	t.Parallel()
	// 98 bytes: the base64 wrapped at 64 ends in a line of 4 characters,
	// the hex wrapped at 60 in one of 16.
	secret := printableSecret(rand.New(rand.NewPCG(7, 8)), 98)
	enc := base64.StdEncoding.EncodeToString([]byte(secret))
	last := enc[len(enc)-4:]
	in := "checksum " + last + "\n" + "id " + enc[len(enc)-7:len(enc)-2] + "\n"
	checkSplits(t, values(secret), in, in)
}
