package secret

import (
	"encoding/base64"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		want        []string
	}{
		{"Empty", "", nil},
		{"ShortExactOnly", "ab1", []string{"ab1"}},
		{"Plain", "hunter2!", []string{
			"hunter2!",
			"aHVudGVyMi",       // base64 "aHVudGVyMiE=" less the edge character
			"h1bnRlcjIh",       // "x" + value: "eGh1bnRlcjIh" from the 3rd character
			"odW50ZXIyI",       // "xy" + value: "eHlodW50ZXIyIQ==" from the 4th
			"aHVudGVyMiE=",     // the whole base64, one line at any width
			"68756e7465723221", // hex
			"68756E7465723221",
			"hunter2%21", // url.QueryEscape and url.PathEscape agree
		}},
		{"Escapes", `p@ss w/rd+<&>"é`, []string{
			`p@ss w/rd+<&>"é`,
			"cEBzcyB3L3JkKzwmPiLDq",
			"BAc3Mgdy9yZCs8Jj4iw6",
			"wQHNzIHcvcmQrPCY+IsOp", // standard alphabet
			"wQHNzIHcvcmQrPCY-IsOp", // URL alphabet
			"cEBzcyB3L3JkKzwmPiLDqQ==",
			"7040737320772f72642b3c263e22c3a9",
			"7040737320772F72642B3C263E22C3A9",
			"p%40ss+w%2Frd%2B%3C%26%3E%22%C3%A9",
			"p@ss%20w%2Frd+%3C&%3E%22%C3%A9",
			`p@ss w/rd+\u003c\u0026\u003e\"é`,
			`p@ss w/rd+<&>\"é`,
		}},
		{"Lines", "  first-line \r\nab\n\tlast\n", []string{
			"  first-line \r\nab\n\tlast\n",
			"ICBmaXJzdC1saW5lIA0KYWIKCWxhc3QK",
			"AgZmlyc3QtbGluZSANCmFiCglsYXN0C",
			"gIGZpcnN0LWxpbmUgDQphYgoJbGFzdA",
			"202066697273742d6c696e65200d0a61620a096c6173740a",
			"202066697273742D6C696E65200D0A61620A096C6173740A",
			"++first-line+%0D%0Aab%0A%09last%0A",
			"%20%20first-line%20%0D%0Aab%0A%09last%0A",
			`  first-line \r\nab\n\tlast\n`,
			"first-line",
			"last",
		}},
		{"HugeVerbatimAndLines", strings.Repeat("x", maxEncodedLen) + "\nlast", []string{
			strings.Repeat("x", maxEncodedLen) + "\nlast", strings.Repeat("x", maxEncodedLen), "last"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, forms(tc.value)); diff != "" {
				t.Errorf("forms(%q) (-want +got):\n%s", tc.value, diff)
			}
		})
	}
}

func TestWrappedLines(t *testing.T) {
	t.Parallel()
	const enc = "abcdefghijklmnopqrstuvwxyz"
	for _, tc := range []struct {
		name                   string
		from, to, width, least int
		want                   []string
	}{
		{"WholeLines", 0, 26, 10, 1, []string{"abcdefghij", "klmnopqrst", "uvwxyz"}},
		{"ShortLastLineLeft", 0, 26, 10, 7, []string{"abcdefghij", "klmnopqrst"}},
		{"PartsFromTheMiddle", 3, 24, 10, 1, []string{"defghij", "klmnopqrst", "uvwx"}},
		{"ShortPartsLeft", 8, 24, 10, 4, []string{"klmnopqrst", "uvwx"}},
		{"OneLine", 2, 6, 10, 4, []string{"cdef"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, wrappedLines(enc, tc.from, tc.to, tc.width, tc.least)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestBase64Core checks the claim base64Core rests on: whatever bytes
// surround a value, its encoding contains the same core, and the characters
// just outside the core do change with the neighbours.
func TestBase64Core(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	encodings := map[string]*base64.Encoding{
		"std": base64.StdEncoding, "url": base64.URLEncoding,
		"rawstd": base64.RawStdEncoding, "rawurl": base64.RawURLEncoding,
	}
	for name, enc := range encodings {
		alphabet := base64.StdEncoding
		if name == "url" || name == "rawurl" {
			alphabet = base64.URLEncoding
		}
		for n := MinFormLen; n <= 24; n++ {
			for pre := 0; pre <= 5; pre++ {
				for _, post := range []int{0, 1, 2, 3} {
					v := randBytes(n)
					prefix, suffix := randBytes(pre), randBytes(post)
					e := enc.EncodeToString(slices.Concat(prefix, v, suffix))
					core := base64Core(alphabet, string(v), pre%3)
					from := (8*pre + 5) / 6 // first character made of v's bits only
					if got := e[from : from+len(core)]; got != core {
						t.Fatalf("%s: value %x after %d bytes: encoding has %q where the core %q should be", name, v, pre, got, core)
					}
					// Flipping the neighbouring bytes must change the
					// characters on either side: the core is as long as it can be.
					if pre > 0 && from > 0 {
						prefix[pre-1] ^= 0xff
						if e2 := enc.EncodeToString(slices.Concat(prefix, v, suffix)); e2[from-1] == e[from-1] {
							t.Fatalf("%s: the character before the core does not depend on the prefix", name)
						}
					}
					if to := from + len(core); post > 0 && to < len(e) {
						suffix[0] ^= 0xff
						if e2 := enc.EncodeToString(slices.Concat(prefix, v, suffix)); e2[to] == e[to] {
							t.Fatalf("%s: the character after the core does not depend on the suffix", name)
						}
					}
				}
			}
		}
	}
}
