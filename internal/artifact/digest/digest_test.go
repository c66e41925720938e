package digest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
)

const (
	hexABC   = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	hexEmpty = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in  string
		alg Algorithm
	}{
		{"sha256:" + hexABC, SHA256},
		{"blake3:" + hexEmpty, BLAKE3},
		{"sha256:" + strings.Repeat("0", 64), SHA256},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			d, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d.Algorithm() != tc.alg || d.Hex() != tc.in[len(tc.alg)+1:] {
				t.Errorf("Parse = (%q, %q), want (%q, %q)", d.Algorithm(), d.Hex(), tc.alg, tc.in[len(tc.alg)+1:])
			}
			if got := d.String(); got != tc.in {
				t.Errorf("String = %q, want %q", got, tc.in)
			}
			if d.IsZero() {
				t.Error("IsZero = true for a parsed digest")
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, msg string
	}{
		{"Empty", "", "missing the ':'"},
		{"MissingColon", "sha256" + hexABC, "missing the ':'"},
		{"OnlyHex", hexABC, "missing the ':'"},
		{"UnknownAlgorithm", "md5:" + hexABC, `unknown algorithm "md5"`},
		{"UppercaseAlgorithm", "SHA256:" + hexABC, `unknown algorithm "SHA256"`},
		{"EmptyAlgorithm", ":" + hexABC, `unknown algorithm ""`},
		{"SpaceBeforeColon", "sha256 :" + hexABC, "unknown algorithm"},
		{"EmptyHex", "sha256:", "has 0 characters after the colon"},
		{"Short", "sha256:" + hexABC[:63], "has 63 characters"},
		{"Long", "sha256:" + hexABC + "0", "has 65 characters"},
		{"SHA512Length", "sha256:" + hexABC + hexABC, "has 128 characters"},
		{"Uppercase", "sha256:" + strings.ToUpper(hexABC), "uppercase hex digit \"B\" at offset 7"},
		{"UppercaseLate", "blake3:" + hexEmpty[:63] + "F", "uppercase hex digit \"F\" at offset 70"},
		{"NonHex", "sha256:" + hexABC[:10] + "g" + hexABC[11:], "non-hex byte \"g\" at offset 17"},
		{"Space", "sha256:" + hexABC[:63] + " ", "non-hex byte \" \""},
		{"SecondColon", "sha256:" + hexABC[:20] + ":" + hexABC[21:], `non-hex byte ":"`},
		{"NUL", "sha256:" + hexABC[:63] + "\x00", `non-hex byte "\x00"`},
		{"Multibyte", "sha256:" + hexABC[:62] + "é", `non-hex byte "\xc3" at offset 69`},
		{"LeadingSpace", " sha256:" + hexABC, "unknown algorithm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want error", tc.in, d)
			}
			if !d.IsZero() {
				t.Errorf("Parse returned non-zero digest %v with an error", d)
			}
			if !errors.Is(err, core.ErrInvalid) || core.KindOf(err) != core.KindInvalid {
				t.Errorf("error %v is not KindInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

func TestParseAlgorithm(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"sha256", "blake3"} {
		if a, err := ParseAlgorithm(s); err != nil || string(a) != s {
			t.Errorf("ParseAlgorithm(%q) = %q, %v", s, a, err)
		}
	}
	for _, s := range []string{"", "SHA256", "sha512", "blake2b"} {
		if _, err := ParseAlgorithm(s); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("ParseAlgorithm(%q) error = %v, want KindInvalid", s, err)
		}
	}
	if Default != SHA256 {
		t.Errorf("Default = %q, want sha256", Default)
	}
}

func TestZeroDigest(t *testing.T) {
	t.Parallel()
	var d Digest
	if !d.IsZero() || d.String() != "" || d.Algorithm() != "" || d.Hex() != "" {
		t.Errorf("zero digest: IsZero=%v String=%q", d.IsZero(), d.String())
	}
	if _, err := d.MarshalText(); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("MarshalText(zero) error = %v, want KindInvalid", err)
	}
	if got := d.GoString(); got != "digest.Digest{}" {
		t.Errorf("GoString = %q", got)
	}
}

func TestTextRoundTrip(t *testing.T) {
	t.Parallel()
	type doc struct {
		D   Digest `json:"d"`
		Opt Digest `json:"opt,omitzero"`
	}
	in := doc{D: MustParse("blake3:" + hexEmpty)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"d":"blake3:` + hexEmpty + `"}`; string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip = %#v, want %#v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"d":"sha256:ABC"}`), &out); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("Unmarshal of a bad digest: error = %v, want KindInvalid", err)
	}
}

func TestMustParsePanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("MustParse did not panic")
		}
	}()
	MustParse("sha256:nope")
}
