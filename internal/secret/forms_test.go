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
			"aHVudGVyMi", // base64 "aHVudGVyMiE=" less the edge character
			"h1bnRlcjIh", // "x" + value: "eGh1bnRlcjIh" from the 3rd character
			"odW50ZXIyI", // "xy" + value: "eHlodW50ZXIyIQ==" from the 4th
			"hunter2%21", // url.QueryEscape and url.PathEscape agree
		}},
		{"Escapes", `p@ss w/rd+<&>"é`, []string{
			`p@ss w/rd+<&>"é`,
			"cEBzcyB3L3JkKzwmPiLDq",
			"BAc3Mgdy9yZCs8Jj4iw6",
			"wQHNzIHcvcmQrPCY+IsOp", // standard alphabet
			"wQHNzIHcvcmQrPCY-IsOp", // URL alphabet
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
