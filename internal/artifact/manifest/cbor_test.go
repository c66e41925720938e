package manifest

import (
	"bytes"
	"encoding/hex"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/artifact/digest"
)

// hx decodes hex written with optional spaces for readability.
func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestRFC8949AppendixA checks the encoder options Encode uses against the
// examples of RFC 8949 Appendix A that core deterministic encoding
// produces (definite lengths, shortest floats).
func TestRFC8949AppendixA(t *testing.T) {
	t.Parallel()
	negBig, _ := new(big.Int).SetString("-18446744073709551616", 10)
	for _, tc := range []struct {
		v    any
		want string
	}{
		{0, "00"},
		{1, "01"},
		{10, "0a"},
		{23, "17"},
		{24, "1818"},
		{25, "1819"},
		{100, "1864"},
		{1000, "1903e8"},
		{1000000, "1a000f4240"},
		{1000000000000, "1b000000e8d4a51000"},
		{uint64(18446744073709551615), "1bffffffffffffffff"},
		{negBig, "3bffffffffffffffff"},
		{-1, "20"},
		{-10, "29"},
		{-100, "3863"},
		{-1000, "3903e7"},
		{0.0, "f90000"},
		{math.Copysign(0, -1), "f98000"},
		{1.0, "f93c00"},
		{1.1, "fb3ff199999999999a"},
		{1.5, "f93e00"},
		{65504.0, "f97bff"},
		{100000.0, "fa47c35000"},
		{3.4028234663852886e+38, "fa7f7fffff"},
		{1.0e+300, "fb7e37e43c8800759c"},
		{5.960464477539063e-8, "f90001"},
		{0.00006103515625, "f90400"},
		{-4.0, "f9c400"},
		{-4.1, "fbc010666666666666"},
		{math.Inf(1), "f97c00"},
		{math.NaN(), "f97e00"},
		{math.Inf(-1), "f9fc00"},
		{false, "f4"},
		{true, "f5"},
		{nil, "f6"},
		{[]byte{}, "40"},
		{[]byte{1, 2, 3, 4}, "4401020304"},
		{"", "60"},
		{"a", "6161"},
		{"IETF", "6449455446"},
		{"\"\\", "62225c"},
		{"\u00fc", "62c3bc"},
		{"\u6c34", "63e6b0b4"},
		{"\U00010151", "64f0908591"},
		{[]int{}, "80"},
		{[]int{1, 2, 3}, "83010203"},
		{[]any{1, []int{2, 3}, []int{4, 5}}, "8301820203820405"},
		{[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25},
			"98190102030405060708090a0b0c0d0e0f101112131415161718181819"},
		{map[int]int{}, "a0"},
		{map[int]int{3: 4, 1: 2}, "a201020304"},
		{map[string]any{"b": []int{2, 3}, "a": 1}, "a26161016162820203"},
		{[]any{"a", map[string]string{"b": "c"}}, "826161a161626163"},
		{map[string]string{"e": "E", "d": "D", "c": "C", "b": "B", "a": "A"}, "a56161614161626142616361436164614461656145"},
	} {
		got, err := encMode.Marshal(tc.v)
		if err != nil {
			t.Errorf("Marshal(%#v): %v", tc.v, err)
			continue
		}
		if want := hx(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("Marshal(%#v) = %x, want %x", tc.v, got, want)
		}
	}
}

// TestCoreDeterministicKeyOrder is the example of RFC 8949 section 4.2.1:
// keys sort by the bytewise order of their encodings, so 100 (0x1864)
// precedes -1 (0x20), unlike the length-first order of RFC 7049.
func TestCoreDeterministicKeyOrder(t *testing.T) {
	t.Parallel()
	m := map[any]int{
		false: 7, [1]int{-1}: 6, [1]int{100}: 5, "aa": 4, "z": 3, -1: 2, 100: 1, 10: 0,
	}
	got, err := encMode.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := hx(t, "a8 0a00 186401 2002 617a03 62616104 81186405 812006 f407")
	if !bytes.Equal(got, want) {
		t.Errorf("Marshal = %x, want %x", got, want)
	}
}

// The hand-written canonical CBOR of tinyManifest: every byte is spelled out
// so the schema cannot drift without this test noticing.
var (
	// The text "sha256:ba78…" as a CBOR text string: head 0x78 0x47 (71 bytes).
	tinyDigestCBOR = "7847" + hex.EncodeToString([]byte(sha256ABC.String()))
	// {"d": "sha256:…", "m": 0o100644, "p": "a", "s": 3}
	tinyEntryHex = "a4 6164" + tinyDigestCBOR + " 616d 1981a4 6170 6161 6173 03"
	// {"e": [entry], "v": 1}
	tinyHex = "a2 6165 81" + tinyEntryHex + " 6176 01"
)

func tinyManifest() Manifest {
	return Manifest{Entries: []Entry{{Path: "a", Digest: sha256ABC, Size: 3, Mode: 0o100644}}}
}

func TestEncodeGoldenBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		m    Manifest
		want string
	}{
		{"Tiny", tinyManifest(), tinyHex},
		{"Empty", Manifest{}, "a2 6165 80 6176 01"},
		{"EmptyAnnotationsOmitted", Manifest{Annotations: map[string]string{}}, "a2 6165 80 6176 01"},
		// {"a": {"k": "v"}, "c": 0, "e": [{"l": "t", "m": 0o120777, "p": "l"}], "v": 1}
		{"AllTopLevelKeys", Manifest{
			Entries:     []Entry{{Path: "l", Mode: ModeSymlink | 0o777, Target: "t"}},
			Annotations: map[string]string{"k": "v"},
			Created:     time.Unix(0, 0),
		}, "a4 6161 a1616b6176 6163 00 6165 81 a3 616c 6174 616d 19a1ff 6170 616c 6176 01"},
		{"NegativeCreated", Manifest{Created: time.Unix(0, -1)}, "a3 6163 20 6165 80 6176 01"},
		{"EmptyFile", Manifest{Entries: []Entry{{Path: "a", Digest: sha256ABC, Mode: 0o100644}}},
			"a2 6165 81 a4 6164" + tinyDigestCBOR + " 616d 1981a4 6170 6161 6173 00 6176 01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Encode(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			want := hx(t, tc.want)
			if !bytes.Equal(got, want) {
				t.Fatalf("Encode =\n%x\nwant\n%x", got, want)
			}
			back, err := Decode(want)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tc.m, back, cmpManifest); diff != "" {
				t.Errorf("Decode mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	m := fixture()
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, back, cmpManifest); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	if back.Created.Location() != time.UTC {
		t.Errorf("decoded Created is in %v, want UTC", back.Created.Location())
	}
	// The local time zone of Created does not change the bytes.
	m.Created = m.Created.In(time.FixedZone("X", -7*3600))
	if b2, _ := Encode(m); !bytes.Equal(b, b2) {
		t.Error("Encode depends on the time zone of Created")
	}
}

// goldenDigests pins the identity of fixture(). Its bytes were checked
// with an independent CBOR reader (shortest heads, sorted keys, definite
// lengths) when the value was committed. If it changes, every stored
// manifest digest changes with it: that needs a new schema version, not a
// new golden value.
var goldenDigests = map[digest.Algorithm]string{
	digest.SHA256: "sha256:efae4650f5a4986c0b71b8231e26a65a6d8ac950f20eb1e5ec764c15c1a517e3",
	digest.BLAKE3: "blake3:f3ebae379556da7ee88461eb6cbb98e8b9a24990dcfd928dcadd2ded69e8419d",
}

func TestDigestGolden(t *testing.T) {
	t.Parallel()
	b, err := Encode(fixture())
	if err != nil {
		t.Fatal(err)
	}
	for alg, want := range goldenDigests {
		got, err := Digest(fixture(), alg)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != want {
			t.Errorf("Digest(fixture, %s) = %s, want %s", alg, got, want)
		}
		if direct, _ := digest.FromBytes(alg, b); direct != got {
			t.Errorf("Digest is not the hash of Encode's bytes: %s vs %s", got, direct)
		}
	}
	if _, err := Digest(fixture(), "md5"); err == nil {
		t.Error("Digest with an unknown algorithm succeeded")
	}
	if _, err := Digest(Manifest{Entries: []Entry{{}}}, digest.SHA256); err == nil {
		t.Error("Digest of an invalid manifest succeeded")
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	var (
		entry = tinyEntryHex
		dg    = "6164" + tinyDigestCBOR
	)
	const (
		mode     = "616d 1981a4"
		pathA    = "6170 6161"
		size3    = "6173 03"
		ver      = "6176 01"
		entriesE = "6165"
	)
	// A sanity check that the pieces make a valid manifest, so every
	// rejection below is caused by its one change.
	if _, err := Decode(hx(t, "a2"+entriesE+"81 a4"+dg+mode+pathA+size3+ver)); err != nil {
		t.Fatalf("base manifest rejected: %v", err)
	}
	size23 := "a2" + entriesE + "81 a4" + dg + mode + pathA + "6173 17" + ver
	if _, err := Decode(hx(t, size23)); err != nil {
		t.Fatalf("size 23 rejected: %v", err)
	}
	const notCanonical = "not in canonical CBOR form"
	for _, tc := range []struct {
		name, in, msg string
	}{
		{"Empty", "", "EOF"},
		{"NotAMap", "80", "cannot unmarshal array"},
		{"Truncated", tinyHex[:len(tinyHex)-2], "unexpected EOF"},
		{"TrailingByte", tinyHex + "00", "extraneous data"},
		{"TopKeysOutOfOrder", "a2" + ver + entriesE + "81" + entry, notCanonical},
		{"EntryKeysOutOfOrder", "a2" + entriesE + "81 a4" + dg + pathA + mode + size3 + ver, notCanonical},
		{"LongInteger23", "a2" + entriesE + "81 a4" + dg + mode + pathA + "6173 1817" + ver, notCanonical},
		{"LongVersion", "a2" + entriesE + "81" + entry + "6176 1801", notCanonical},
		{"LongTextLength", "a2" + entriesE + "81 a4" + dg + mode + "6170 780161" + size3 + ver, notCanonical},
		{"LongArrayLength", "a2" + entriesE + "9801" + entry + ver, notCanonical},
		{"LongMapLength", "b802" + entriesE + "81" + entry + ver, notCanonical},
		{"IndefiniteArray", "a2" + entriesE + "9f" + entry + "ff" + ver, "indefinite-length"},
		{"IndefiniteMap", "bf" + entriesE + "81" + entry + ver + "ff", "indefinite-length"},
		{"IndefiniteText", "a2" + entriesE + "81 a4" + dg + mode + "6170 7f6161ff" + size3 + ver, "indefinite-length"},
		{"DuplicateTopKey", "a3" + entriesE + "81" + entry + ver + ver, "duplicate map key"},
		{"DuplicateEntryKey", "a2" + entriesE + "81 a5" + dg + mode + pathA + pathA + size3 + ver, "duplicate map key"},
		{"DuplicateAnnotation", "a3 6161 a2 616b6176 616b6176" + entriesE + "80" + ver, "duplicate map key"},
		{"Tag", "a2" + entriesE + "81" + entry + "6176 c101", "tag"},
		{"TaggedCreated", "a3 6163 c100" + entriesE + "80" + ver, "tag"},
		{"UnknownTopKey", "a3" + entriesE + "81" + entry + ver + "6178 00", "unknown field"},
		{"UnknownEntryKey", "a2" + entriesE + "81 a5" + dg + mode + pathA + size3 + "6178 00" + ver, "unknown field"},
		{"UppercaseKey", "a2" + entriesE + "81" + entry + "6156 01", "unknown field"},
		{"IntegerKey", "a3 01 01" + entriesE + "81" + entry + ver, "unknown field"},
		{"Version2", "a2" + entriesE + "81" + entry + "6176 02", "unsupported manifest version 2"},
		{"NoVersion", "a1" + entriesE + "81" + entry, "unsupported manifest version 0"},
		{"NoEntries", "a1" + ver, "no entries"},
		{"NullEntries", "a2" + entriesE + "f6" + ver, "no entries"},
		{"EmptyAnnotations", "a3 6161 a0" + entriesE + "80" + ver, notCanonical},
		{"NullCreated", "a3 6163 f6" + entriesE + "80" + ver, notCanonical},
		{"NegativeSize", "a2" + entriesE + "81 a4" + dg + mode + pathA + "6173 20" + ver, "cannot unmarshal negative integer"},
		{"FloatSize", "a2" + entriesE + "81 a4" + dg + mode + pathA + "6173 f94200" + ver, "cannot unmarshal primitives"},
		{"SizeAboveInt64", "a2" + entriesE + "81 a4" + dg + mode + pathA + "6173 1bffffffffffffffff" + ver, "does not fit in int64"},
		{"ModeAboveUint32", "a2" + entriesE + "81 a4" + dg + "616d 1b0000000100000000" + pathA + size3 + ver, "overflows"},
		{"ByteStringPath", "a2" + entriesE + "81 a4" + dg + mode + "6170 4161" + size3 + ver, "cannot unmarshal byte string"},
		{"InvalidUTF8Path", "a2" + entriesE + "81 a4" + dg + mode + "6170 61ff" + size3 + ver, "invalid UTF-8"},
		{"UppercaseDigest", "a2" + entriesE + "81 a4 6164 7847" + hex.EncodeToString([]byte("sha256:"+strings.ToUpper(sha256ABC.Hex()))) + mode + pathA + size3 + ver, "uppercase hex"},
		{"MissingSize", "a2" + entriesE + "81 a3" + dg + mode + pathA + ver, `"d" and "s" are required`},
		{"MissingDigest", "a2" + entriesE + "81 a3" + mode + pathA + size3 + ver, `"d" and "s" are required`},
		{"SymlinkWithSize", "a2" + entriesE + "81 a4 616c 6174 616d 19a1ff" + pathA + size3 + ver, `a symlink has no "d" or "s"`},
		{"EmptyDigestText", "a2" + entriesE + "81 a4 6164 60" + mode + pathA + size3 + ver, `"d" and "s" are required`},
		{"EmptyTarget", "a2" + entriesE + "81 a3 616c 60 616d 19a1ff" + pathA + ver, "no target"},
		{"AbsolutePath", "a2" + entriesE + "81 a4" + dg + mode + "6170 622f61" + size3 + ver, "absolute"},
		{"UnsortedEntries", "a2" + entriesE + "82 a4" + dg + mode + "6170 6162" + size3 + "a4" + dg + mode + pathA + size3 + ver, "sorted bytewise"},
		{"DuplicatePaths", "a2" + entriesE + "82" + entry + entry + ver, "duplicate path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := Decode(hx(t, tc.in))
			if err == nil {
				t.Fatalf("Decode accepted %s as %+v", tc.in, m)
			}
			assertInvalid(t, err, tc.msg)
		})
	}
}

// TestDecodeLimits shows Decode refuses more entries than MaxEntries
// without materializing them, since the array head alone claims them.
func TestDecodeLimits(t *testing.T) {
	t.Parallel()
	_, err := Decode(hx(t, "a2 6165 9affffffff 6176 01"))
	assertInvalid(t, err, "exceeded max number of elements")
	_, err = Decode(hx(t, "a2 6165 9a00100001"))
	assertInvalid(t, err, "exceeded max number of elements")
	// At the limit the decoder goes on to find the content missing.
	_, err = Decode(hx(t, "a2 6165 9a00100000"))
	assertInvalid(t, err, "unexpected EOF")
}

// TestDecoderIsStrictOutsideManifests checks the decoder options on their
// own, independent of the re-encode comparison.
func TestDecoderIsStrictOutsideManifests(t *testing.T) {
	t.Parallel()
	var v any
	for name, in := range map[string]string{
		"Duplicate":  "a2 6161 01 6161 02",
		"Indefinite": "9f 01 ff",
		"Tag":        "c1 00",
	} {
		if err := decMode.Unmarshal(hx(t, in), &v); err == nil {
			t.Errorf("%s: decoder accepted %s", name, in)
		}
	}
	var s struct {
		A int `cbor:"a"`
	}
	if err := decMode.Unmarshal(hx(t, "a1 6141 01"), &s); err == nil {
		t.Error("decoder matched key \"A\" to field \"a\" case-insensitively")
	}
}
