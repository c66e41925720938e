package manifest

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

var (
	sha256ABC   = digest.MustParse("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
	sha256Empty = digest.MustParse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	blake3Empty = digest.MustParse("blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")
)

// cmpManifest compares manifests as values: digests by ==, times by
// instant, nil and empty annotations as equal.
var cmpManifest = cmp.Options{
	cmp.Comparer(func(a, b digest.Digest) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

// fixture is a manifest that uses every field and the awkward values:
// a symlink, a size above 2^53, a size of exactly 2^53, an empty file and a
// non-ASCII path.
func fixture() Manifest {
	return Manifest{
		Entries: []Entry{
			{Path: "bin/tool", Digest: sha256ABC, Size: 1 << 20, Mode: ModeRegular | 0o755, MediaType: "application/octet-stream"},
			{Path: "bin/tool-latest", Mode: ModeSymlink | 0o777, Target: "tool"},
			{Path: "huge.img", Digest: blake3Empty, Size: 1<<53 + 1, Mode: ModeRegular | 0o644},
			{Path: "logs/build.log", Digest: sha256Empty, Size: 0, Mode: ModeRegular | 0o644, MediaType: "text/plain; charset=utf-8"},
			{Path: "résumé/ü.txt", Digest: sha256Empty, Size: 1 << 53, Mode: ModeRegular | 0o600},
		},
		Annotations: map[string]string{"org.deltaci.attempt": "42", "org.deltaci.project": "demo"},
		Created:     time.Date(2026, 5, 15, 12, 30, 45, 123456789, time.UTC),
	}
}

func regular(path string) Entry {
	return Entry{Path: path, Digest: sha256ABC, Size: 3, Mode: ModeRegular | 0o644}
}

func TestValidateOK(t *testing.T) {
	t.Parallel()
	for name, m := range map[string]Manifest{
		"Fixture":       fixture(),
		"Empty":         {},
		"Siblings":      {Entries: []Entry{regular("a"), regular("a-b"), regular("a.b"), regular("a0/b"), regular("ab")}},
		"DotFiles":      {Entries: []Entry{regular("..x"), regular(".config"), regular("a/.../b")}},
		"DirAndFileMix": {Entries: []Entry{regular("a/b"), regular("a/c/d"), regular("a/cd")}},
		"EpochCreated":  {Created: time.Unix(0, 0)},
		"AbsoluteLink":  {Entries: []Entry{{Path: "l", Mode: ModeSymlink | 0o777, Target: "/usr/bin/env"}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := m.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	link := Entry{Path: "l", Mode: ModeSymlink | 0o777, Target: "x"}
	one := func(e Entry) Manifest { return Manifest{Entries: []Entry{e}} }
	with := func(e Entry, f func(*Entry)) Manifest { f(&e); return one(e) }
	for _, tc := range []struct {
		name string
		m    Manifest
		msg  string
	}{
		{"EmptyPath", one(regular("")), "empty path"},
		{"AbsolutePath", one(regular("/etc/passwd")), "absolute"},
		{"DotDot", one(regular("a/../b")), `".." segment`},
		{"LeadingDotDot", one(regular("../b")), `".." segment`},
		{"Dot", one(regular("./b")), `"." segment`},
		{"OnlyDot", one(regular(".")), `"." segment`},
		{"DoubleSlash", one(regular("a//b")), "empty segment"},
		{"TrailingSlash", one(regular("a/")), "empty segment"},
		{"Backslash", one(regular(`a\b`)), "backslash"},
		{"NUL", one(regular("a\x00b")), "NUL"},
		{"BadUTF8Path", one(regular("a\xffb")), "UTF-8"},
		{"Unsorted", Manifest{Entries: []Entry{regular("b"), regular("a")}}, "sorted bytewise"},
		{"UnsortedBytewise", Manifest{Entries: []Entry{regular("a/b"), regular("a-b")}}, "sorted bytewise"},
		{"Duplicate", Manifest{Entries: []Entry{regular("a"), regular("a")}}, "duplicate path"},
		{"FileIsAlsoDir", Manifest{Entries: []Entry{regular("a"), regular("a/b")}}, `lies below the entry "a"`},
		{"LinkIsAlsoDir", Manifest{Entries: []Entry{{Path: "a", Mode: ModeSymlink | 0o777, Target: "/etc"}, regular("a/b/c")}}, `lies below the entry "a"`},
		{"NoDigest", with(regular("a"), func(e *Entry) { e.Digest = digest.Digest{} }), "no digest"},
		{"NegativeSize", with(regular("a"), func(e *Entry) { e.Size = -1 }), "negative size"},
		{"FileWithTarget", with(regular("a"), func(e *Entry) { e.Target = "b" }), "link target"},
		{"Directory", with(regular("a"), func(e *Entry) { e.Mode = 0o040755 }), "neither a regular file"},
		{"NoType", with(regular("a"), func(e *Entry) { e.Mode = 0o644 }), "neither a regular file"},
		{"Setuid", with(regular("a"), func(e *Entry) { e.Mode = ModeRegular | 0o4755 }), "setuid"},
		{"HighBits", with(regular("a"), func(e *Entry) { e.Mode = 1<<20 | ModeRegular | 0o644 }), "bits besides"},
		{"BadMediaType", with(regular("a"), func(e *Entry) { e.MediaType = "not a media type" }), "media type is malformed"},
		{"MediaTypeWithoutSubtype", with(regular("a"), func(e *Entry) { e.MediaType = "text" }), "no subtype"},
		{"LinkMode", with(link, func(e *Entry) { e.Mode = ModeSymlink | 0o755 }), "not 0o120777"},
		{"LinkDigest", with(link, func(e *Entry) { e.Digest = sha256ABC }), "digest or size"},
		{"LinkSize", with(link, func(e *Entry) { e.Size = 4 }), "digest or size"},
		{"LinkMediaType", with(link, func(e *Entry) { e.MediaType = "text/plain" }), "media type"},
		{"LinkNoTarget", with(link, func(e *Entry) { e.Target = "" }), "no target"},
		{"LinkNULTarget", with(link, func(e *Entry) { e.Target = "a\x00" }), "NUL"},
		{"LinkBadUTF8", with(link, func(e *Entry) { e.Target = "\xff" }), "UTF-8"},
		{"EmptyAnnotationKey", Manifest{Annotations: map[string]string{"": "x"}}, "empty key"},
		{"BadUTF8AnnotationKey", Manifest{Annotations: map[string]string{"\xff": "x"}}, "not valid UTF-8"},
		{"BadUTF8AnnotationValue", Manifest{Annotations: map[string]string{"k": "\xff"}}, "not valid UTF-8"},
		{"CreatedTooEarly", Manifest{Created: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}, "1678 to 2262"},
		{"CreatedTooLate", Manifest{Created: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, "1678 to 2262"},
		{"TooManyEntries", Manifest{Entries: make([]Entry, MaxEntries+1)}, "limit"},
		{"TooManyAnnotations", Manifest{Annotations: manyAnnotations(MaxAnnotations + 1)}, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.m.Validate()
			assertInvalid(t, err, tc.msg)
			// Encode and JSON refuse what Validate refuses.
			if _, err := Encode(tc.m); !errors.Is(err, core.ErrInvalid) {
				t.Errorf("Encode error = %v, want KindInvalid", err)
			}
			if _, err := JSON(tc.m); !errors.Is(err, core.ErrInvalid) {
				t.Errorf("JSON error = %v, want KindInvalid", err)
			}
		})
	}
}

func manyAnnotations(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[strings.Repeat("k", i+1)] = ""
	}
	return m
}

func assertInvalid(t *testing.T, err error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", msg)
	}
	if !errors.Is(err, core.ErrInvalid) || core.KindOf(err) != core.KindInvalid {
		t.Errorf("error %v is not KindInvalid", err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not mention %q", err, msg)
	}
}

func TestSortEntries(t *testing.T) {
	t.Parallel()
	es := []Entry{regular("b"), regular("a/b"), regular("a-b"), regular("a")}
	SortEntries(es)
	var got []string
	for _, e := range es {
		got = append(got, e.Path)
	}
	if want := []string{"a", "a-b", "a/b", "b"}; !cmp.Equal(got, want) {
		t.Errorf("SortEntries = %q, want %q", got, want)
	}
}

func TestModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fm   fs.FileMode
		mode uint32
		back fs.FileMode
	}{
		{0o644, 0o100644, 0o644},
		{0o755, 0o100755, 0o755},
		{fs.ModeSymlink | 0o777, 0o120777, fs.ModeSymlink | 0o777},
		{fs.ModeSymlink | 0o755, 0o120777, fs.ModeSymlink | 0o777},
	} {
		got, err := ModeFromFileMode(tc.fm)
		if err != nil || got != tc.mode {
			t.Errorf("ModeFromFileMode(%v) = %#o, %v; want %#o", tc.fm, got, err, tc.mode)
		}
		if back := (Entry{Mode: got}).FileMode(); back != tc.back {
			t.Errorf("FileMode(%#o) = %v, want %v", got, back, tc.back)
		}
	}
	for _, fm := range []fs.FileMode{fs.ModeDir | 0o755, fs.ModeNamedPipe | 0o644, fs.ModeDevice, fs.ModeSetuid | 0o755, fs.ModeSticky | 0o644} {
		if _, err := ModeFromFileMode(fm); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("ModeFromFileMode(%v) error = %v, want KindInvalid", fm, err)
		}
	}
}
