package manifest

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gowebpki/jcs"
)

// TestRFC8785NumberSerialization runs the finite samples of RFC 8785
// Appendix B (IEEE 754 bits → ECMAScript number text) through the JCS
// implementation JSON uses.
func TestRFC8785NumberSerialization(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"}, // minus zero
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	} {
		in := "[" + strconv.FormatFloat(math.Float64frombits(tc.bits), 'g', -1, 64) + "]"
		got, err := jcs.Transform([]byte(in))
		if err != nil {
			t.Errorf("%016x: %v", tc.bits, err)
			continue
		}
		if want := "[" + tc.want + "]"; string(got) != want {
			t.Errorf("%016x: got %s, want %s", tc.bits, got, want)
		}
	}
}

// TestRFC8785Examples are the worked examples of RFC 8785 sections 3.2.2 to
// 3.2.4: whitespace, number and string normalization, and property sorting
// by UTF-16 code units (the emoji's surrogates sort before U+FB33).
func TestRFC8785Examples(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"Serialization",
			`{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		{"Sorting",
			`{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\"," +
				"\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
	} {
		got, err := jcs.Transform([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// fixtureJSON is the JSON view of fixture(), written by hand: keys sorted,
// the size above 2^53 a string, 2^53 itself still a number.
const fixtureJSON = `{"annotations":{"org.deltaci.attempt":"42","org.deltaci.project":"demo"},` +
	`"created":"2026-05-15T12:30:45.123456789Z","entries":[` +
	`{"digest":"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","media_type":"application/octet-stream","mode":33261,"path":"bin/tool","size":1048576},` +
	`{"mode":41471,"path":"bin/tool-latest","target":"tool"},` +
	`{"digest":"blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262","mode":33188,"path":"huge.img","size":"9007199254740993"},` +
	`{"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","media_type":"text/plain; charset=utf-8","mode":33188,"path":"logs/build.log","size":0},` +
	`{"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","mode":33152,"path":"résumé/ü.txt","size":9007199254740992}` +
	`],"version":1}`

func TestJSONGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		m    Manifest
		want string
	}{
		{"Fixture", fixture(), fixtureJSON},
		{"Empty", Manifest{}, `{"entries":[],"version":1}`},
		{"HTMLCharsNotEscaped", Manifest{Annotations: map[string]string{"a<b": "&>"}}, `{"annotations":{"a<b":"&>"},"entries":[],"version":1}`},
		{"CreatedPadsNanos", Manifest{Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))},
			`{"created":"2026-01-02T02:04:05.000000000Z","entries":[],"version":1}`},
		{"MaxSize", Manifest{Entries: []Entry{{Path: "a", Digest: sha256ABC, Size: math.MaxInt64, Mode: ModeRegular | 0o644}}},
			`{"entries":[{"digest":"` + sha256ABC.String() + `","mode":33188,"path":"a","size":"9223372036854775807"}],"version":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := JSON(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("JSON =\n%s\nwant\n%s", got, tc.want)
			}
			back, err := FromJSON(got)
			if err != nil {
				t.Fatalf("FromJSON: %v", err)
			}
			if diff := cmp.Diff(tc.m, back, cmpManifest); diff != "" {
				t.Errorf("FromJSON mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFromJSONIsLenientOnlyAboutLayout: key order and whitespace are free,
// and the same manifest comes back with the same CBOR digest.
func TestFromJSONIsLenientOnlyAboutLayout(t *testing.T) {
	t.Parallel()
	in := "{\n  \"version\": 1,\n  \"entries\": [ { \"size\": 3, \"path\": \"a\", \"mode\": 33188,\n" +
		"  \"digest\": \"" + sha256ABC.String() + "\" } ]\n}\n"
	m, err := FromJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tinyManifest(), m, cmpManifest); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestFromJSONRejects(t *testing.T) {
	t.Parallel()
	entry := func(fields string) string { return `{"entries":[{` + fields + `}],"version":1}` }
	file := `"digest":"` + sha256ABC.String() + `","mode":33188,"path":"a"`
	for _, tc := range []struct{ name, in, msg string }{
		{"NotJSON", `{`, "malformed"},
		{"Trailing", `{"entries":[],"version":1} {}`, "malformed"},
		{"DuplicateKey", `{"entries":[],"version":1,"version":1}`, "malformed"},
		{"UnknownKey", `{"entries":[],"extra":1,"version":1}`, "does not match the schema"},
		{"CaseVariantKey", `{"entries":[],"Version":1}`, "not in its canonical form"},
		{"NoVersion", `{"entries":[]}`, "unsupported manifest version 0"},
		{"Version2", `{"entries":[],"version":2}`, "unsupported manifest version 2"},
		{"NoEntries", `{"version":1}`, "not in its canonical form"},
		{"NullEntries", `{"entries":null,"version":1}`, "not in its canonical form"},
		{"EmptyAnnotations", `{"annotations":{},"entries":[],"version":1}`, "not in its canonical form"},
		{"CreatedWithOffset", `{"created":"2026-05-15T14:30:45.123456789+02:00","entries":[],"version":1}`, "not in its canonical form"},
		{"CreatedShortFraction", `{"created":"2026-05-15T12:30:45.1Z","entries":[],"version":1}`, "not in its canonical form"},
		{"CreatedNotATime", `{"created":"yesterday","entries":[],"version":1}`, "RFC 3339"},
		{"SmallSizeAsString", entry(file + `,"size":"3"`), "sizes up to 2^53 are JSON numbers"},
		{"LargeSizeAsNumber", entry(file + `,"size":9007199254740993`), "larger ones are strings"},
		{"SizeWithFraction", entry(file + `,"size":3.0`), "not a decimal integer"},
		{"SizeWithExponent", entry(file + `,"size":3e0`), "not a decimal integer"},
		{"SizeLeadingZero", entry(file + `,"size":"09007199254740993"`), "not a decimal integer"},
		{"SizeOverflow", entry(file + `,"size":"9223372036854775808"`), "not a decimal integer"},
		{"NegativeSize", entry(file + `,"size":-1`), "negative size"},
		{"NullSize", entry(file + `,"size":null`), "not in its canonical form"},
		{"MissingSize", entry(file), "not in its canonical form"},
		{"BadDigest", entry(`"digest":"sha256:abc","mode":33188,"path":"a","size":3`), "characters after the colon"},
		{"SymlinkWithSize", entry(`"mode":41471,"path":"l","size":0,"target":"t"`), "not in its canonical form"},
		{"AbsolutePath", entry(`"digest":"` + sha256ABC.String() + `","mode":33188,"path":"/a","size":3`), "absolute"},
		{"StringMode", entry(file[:strings.Index(file, `"mode"`)] + `"mode":"33188","path":"a","size":3`), "does not match the schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := FromJSON([]byte(tc.in))
			if err == nil {
				t.Fatalf("FromJSON accepted %s as %+v", tc.in, m)
			}
			assertInvalid(t, err, tc.msg)
		})
	}
}
