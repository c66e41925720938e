package httpapi

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/core"
)

func TestParseRange(t *testing.T) {
	t.Parallel()
	const size = 100
	for _, tc := range []struct {
		name    string
		header  string
		size    int64
		want    byteRange
		partial bool
		err     string // "invalid", "unsatisfiable" or ""
	}{
		{"None", "", size, byteRange{}, false, ""},
		{"Closed", "bytes=0-9", size, byteRange{0, 10}, true, ""},
		{"OneByte", "bytes=99-99", size, byteRange{99, 1}, true, ""},
		{"Open", "bytes=90-", size, byteRange{90, 10}, true, ""},
		{"LastClamped", "bytes=90-1000", size, byteRange{90, 10}, true, ""},
		{"Suffix", "bytes=-5", size, byteRange{95, 5}, true, ""},
		{"SuffixLongerThanBlob", "bytes=-500", size, byteRange{0, 100}, true, ""},
		{"UnitCaseAndSpaces", " Bytes = 1-2 ", size, byteRange{1, 2}, true, ""},
		{"HugeLastSaturates", "bytes=0-99999999999999999999999", size, byteRange{0, 100}, true, ""},
		{"OtherUnitIgnored", "items=0-1", size, byteRange{}, false, ""},
		{"MultiIgnored", "bytes=0-1,5-6", size, byteRange{}, false, ""},
		{"StartAtSize", "bytes=100-", size, byteRange{}, false, "unsatisfiable"},
		{"HugeStart", "bytes=99999999999999999999-", size, byteRange{}, false, "unsatisfiable"},
		{"SuffixZero", "bytes=-0", size, byteRange{}, false, "unsatisfiable"},
		{"EmptyBlob", "bytes=0-", 0, byteRange{}, false, "unsatisfiable"},
		{"EmptyBlobSuffix", "bytes=-1", 0, byteRange{}, false, "unsatisfiable"},
		{"NoEquals", "bytes 0-1", size, byteRange{}, false, "invalid"},
		{"NoDash", "bytes=5", size, byteRange{}, false, "invalid"},
		{"Backwards", "bytes=5-1", size, byteRange{}, false, "invalid"},
		{"Negative", "bytes=-1-2", size, byteRange{}, false, "invalid"},
		{"Plus", "bytes=+1-2", size, byteRange{}, false, "invalid"},
		{"Letters", "bytes=a-b", size, byteRange{}, false, "invalid"},
		{"Empty", "bytes=-", size, byteRange{}, false, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, partial, err := parseRange(tc.header, tc.size)
			if kind := errKind(err); kind != tc.err {
				t.Fatalf("parseRange(%q, %d) error = %v, want %s", tc.header, tc.size, err, cmpOr(tc.err, "none"))
			}
			if got != tc.want || partial != tc.partial {
				t.Errorf("parseRange(%q, %d) = %+v partial=%v, want %+v partial=%v", tc.header, tc.size, got, partial, tc.want, tc.partial)
			}
		})
	}
}

func errKind(err error) string {
	var re *rangeError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &re):
		return "unsatisfiable"
	case core.KindOf(err) == core.KindInvalid:
		return "invalid"
	}
	return "other: " + err.Error()
}

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		header        string
		start, length int64
		ok            bool
	}{
		{"bytes 0-9", 0, 10, true},
		{"bytes 10-19/100", 10, 10, true},
		{"bytes 10-19/*", 10, 10, true},
		{"BYTES 5-5", 5, 1, true},
		{"0-1023", 0, 1024, true}, // as Docker registry clients send it
		{"  bytes   7-8  ", 7, 2, true},
		{"bytes 10-19/19", 0, 0, false}, // the total must lie past the chunk
		{"bytes 10-19/x", 0, 0, false},
		{"bytes 9-8", 0, 0, false},
		{"bytes -1-2", 0, 0, false},
		{"bytes 1-", 0, 0, false},
		{"bytes -5", 0, 0, false},
		{"items 0-1", 0, 0, false},
		{"bytes */100", 0, 0, false},
		{"bytes 0-99999999999999999999", 0, 0, false},
		{"bytes 0-9223372036854775807", 0, 0, false},
		{"", 0, 0, false},
	} {
		start, length, err := parseContentRange(tc.header)
		if (err == nil) != tc.ok || start != tc.start || length != tc.length {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, ok=%v", tc.header, start, length, err, tc.start, tc.length, tc.ok)
		}
		if err != nil && core.KindOf(err) != core.KindInvalid {
			t.Errorf("parseContentRange(%q): %v is not invalid", tc.header, err)
		}
	}
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ accept, want string }{
		{"", manifest.MediaTypeCBOR},
		{"*/*", manifest.MediaTypeCBOR},
		{manifest.MediaTypeJSON, manifest.MediaTypeJSON},
		{"application/json", "application/json"},
		{"application/json, */*;q=0.1", "application/json"},
		{"application/*", manifest.MediaTypeCBOR},
		{"application/cbor;q=0.2, application/json;q=0.9", "application/json"},
		{"*/*;q=1, " + manifest.MediaTypeCBOR + ";q=0, application/cbor;q=0", manifest.MediaTypeJSON},
		{"text/html", manifest.MediaTypeCBOR},
		{"application/json;q=abc", manifest.MediaTypeCBOR},
		{"application/json;q=2", manifest.MediaTypeCBOR},
		{";;;,,,", manifest.MediaTypeCBOR},
	} {
		if got := negotiate(tc.accept); got != tc.want {
			t.Errorf("negotiate(%q) = %q, want %q", tc.accept, got, tc.want)
		}
	}
}

// FuzzParseRange checks that whatever the header, a range that parses
// lies inside the blob and is not empty, and that failures are the two
// documented kinds.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=5-", "bytes=0-1,2-3", "bytes=9-1", "items=1-2", "bytes=99999999999999999999-"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		r, partial, err := parseRange(header, size)
		switch kind := errKind(err); {
		case kind == "unsatisfiable" || kind == "invalid":
			if partial {
				t.Fatalf("parseRange(%q, %d) failed but says partial", header, size)
			}
			return
		case kind != "":
			t.Fatalf("parseRange(%q, %d): unexpected error %v", header, size, err)
		}
		if !partial {
			if r != (byteRange{}) {
				t.Fatalf("parseRange(%q, %d) = %+v for a whole blob", header, size, r)
			}
			return
		}
		if r.start < 0 || r.length < 1 || r.start > size-r.length {
			t.Fatalf("parseRange(%q, %d) = %+v, outside the blob", header, size, r)
		}
		// The Content-Range we answer with is one parseResponseRange reads back.
		first, last, total, ok := parseResponseRange(formatContentRange(r, size))
		if !ok || first != r.start || last != r.start+r.length-1 || total != size {
			t.Fatalf("Content-Range of %+v (size %d) does not read back: %d %d %d %v", r, size, first, last, total, ok)
		}
	})
}

// FuzzParseContentRange checks that a chunk range that parses is non-empty,
// starts at 0 or later and ends within int64, and that it survives being
// written the way the Client writes it.
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-9", "bytes 10-19/100", "bytes 1-2/*", "0-1023", "bytes 9-8", "bytes 1-2/2", "bytes -1-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		start, length, err := parseContentRange(header)
		if err != nil {
			if core.KindOf(err) != core.KindInvalid || start != 0 || length != 0 {
				t.Fatalf("parseContentRange(%q) = %d, %d, %v", header, start, length, err)
			}
			return
		}
		if start < 0 || length < 1 || start > math.MaxInt64-length {
			t.Fatalf("parseContentRange(%q) = %d, %d", header, start, length)
		}
		again := "bytes " + strconv.FormatInt(start, 10) + "-" + strconv.FormatInt(start+length-1, 10)
		s2, l2, err := parseContentRange(again)
		if err != nil || s2 != start || l2 != length {
			t.Fatalf("parseContentRange(%q) = %d, %d; its rewrite %q = %d, %d, %v", header, start, length, again, s2, l2, err)
		}
	})
}

// FuzzNegotiate checks that any Accept header yields one of the manifest
// media types.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "*/*", "application/json;q=0.5, application/cbor", "a/b;q=x", ",,;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		got := negotiate(accept)
		if !strings.HasPrefix(got, "application/") || (!strings.Contains(got, "cbor") && !strings.Contains(got, "json")) {
			t.Fatalf("negotiate(%q) = %q", accept, got)
		}
	})
}
