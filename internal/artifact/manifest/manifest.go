// Package manifest describes a tree of artifact files by content and gives
// it one canonical byte encoding, so that a manifest has a stable digest
// that refs, retention and GC can point at.
//
// # Canonical CBOR (the identity)
//
// Encode writes RFC 8949 core deterministic CBOR (section 4.2.1: shortest
// integer and length heads, definite lengths, map keys sorted bytewise by
// their encoding) and the manifest digest is the hash of exactly those bytes.
// Maps use one-letter text keys to keep large manifests small. No CBOR tags
// are used anywhere, so every decoder, in any language, sees plain maps,
// arrays, text and integers.
//
// The top-level map (keys in encoded order):
//
//	"a"  annotations  map text→text  optional; omitted when empty; keys non-empty
//	"c"  created      int            optional; nanoseconds since the Unix epoch, UTC
//	"e"  entries      array of entry maps, required (possibly empty)
//	"v"  version      uint           required; must be 1
//
// An entry map:
//
//	"d"  digest       text  "sha256:<hex>" or "blake3:<hex>"; regular files only, required there
//	"l"  link target  text  symlinks only, required there; non-empty, no NUL
//	"m"  mode         uint  required; see below
//	"p"  path         text  required
//	"s"  size         uint  regular files only, required there (also when 0); at most 2^63-1
//	"t"  media type   text  optional, regular files only; omitted when empty
//
// The created time is an integer, not RFC 3339 text and not tag 0 or 1: an
// integer has exactly one core deterministic encoding, so there is no second
// canonical-form rule to enforce for text (offsets, fraction digits) and no
// tag a foreign decoder might rewrite. It covers the years 1678 to 2262.
// Leaving it out keeps manifests of identical trees at identical digests.
//
// Mode uses the POSIX st_mode layout, as git and tar do, rather than Go's
// fs.FileMode bits, so other languages can read it: the file type in
// 0o170000 is 0o100000 (regular file) or 0o120000 (symlink), and the low
// 0o777 are permission bits. Nothing else is allowed: no directories (they
// are implied by paths; empty directories are not recorded), devices,
// setuid, setgid or sticky bits. A symlink's mode is always exactly 0o120777
// so that the platform's link permissions cannot change the digest.
//
// Paths are relative, slash-separated and clean: valid UTF-8, not empty, no
// leading or trailing "/", no empty, "." or ".." segments, no backslash and
// no NUL. Entries are sorted by path in bytewise order, paths are unique,
// and no entry lies below another entry (a file or symlink cannot also be a
// directory). Symlink targets are recorded as given and are untrusted:
// whoever materializes a manifest must keep links inside its root.
//
// Decode is strict: it rejects anything Encode would not have produced,
// namely unknown or duplicate keys, indefinite lengths, tags, trailing
// bytes, manifests that fail Validate and any other non-canonical form
// (it decodes, re-encodes and compares the bytes).
//
// # JSON (a view)
//
// JSON gives the same manifest as RFC 8785 (JCS) canonical JSON with
// readable keys: version, entries, annotations, created and, per entry,
// path, mode, digest, size, media_type, target. Integers above 2^53 are
// strings so that JavaScript clients lose no precision (only sizes can be
// that large); created is an RFC 3339 string in UTC with exactly nine
// fraction digits. The JSON bytes are a view: the manifest digest is always
// the hash of the CBOR.
package manifest

import (
	"cmp"
	"io/fs"
	"maps"
	"math"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// Media types for serving a manifest in either encoding.
const (
	MediaTypeCBOR = "application/vnd.deltaci.manifest.v1+cbor"
	MediaTypeJSON = "application/vnd.deltaci.manifest.v1+json"
)

// Version is the schema version written as "v" and the only one accepted.
const Version = 1

// Limits on a manifest's size. Validate enforces them so that Encode never
// produces bytes that Decode would refuse.
const (
	MaxEntries     = 1 << 20
	MaxAnnotations = 1 << 10
)

// Mode bits, in the POSIX st_mode layout.
const (
	ModeTypeMask uint32 = 0o170000 // S_IFMT: the file type
	ModeRegular  uint32 = 0o100000 // S_IFREG
	ModeSymlink  uint32 = 0o120000 // S_IFLNK
	ModePerm     uint32 = 0o777    // rwx for user, group, other
)

// Manifest lists the files of an artifact tree and free-form annotations.
type Manifest struct {
	// Entries are sorted by Path (bytewise) with unique paths; see
	// SortEntries.
	Entries []Entry
	// Annotations are free-form metadata (who built it, from which
	// attempt). Nil and empty are the same manifest.
	Annotations map[string]string
	// Created is optional; the zero time means absent. It is stored with
	// nanosecond precision in UTC.
	Created time.Time
}

// Entry is one regular file or symlink in a manifest.
type Entry struct {
	Path string
	// Digest and Size identify a regular file's content; both are zero for
	// a symlink.
	Digest digest.Digest
	Size   int64
	// Mode is a POSIX st_mode value: ModeRegular or ModeSymlink plus
	// permission bits.
	Mode uint32
	// MediaType is optional and only for regular files.
	MediaType string
	// Target is the link target of a symlink and empty otherwise.
	Target string
}

// IsSymlink reports whether e is a symlink entry.
func (e Entry) IsSymlink() bool { return e.Mode&ModeTypeMask == ModeSymlink }

// FileMode converts e.Mode to the Go file mode to create the entry with.
func (e Entry) FileMode() fs.FileMode {
	fm := fs.FileMode(e.Mode & ModePerm)
	if e.IsSymlink() {
		fm |= fs.ModeSymlink
	}
	return fm
}

// ModeFromFileMode converts a Go file mode (from os.Lstat) to a manifest
// mode. Only regular files and symlinks can be recorded, and setuid, setgid
// and sticky bits are refused rather than dropped silently. Symlinks get the
// one canonical mode 0o120777 whatever their platform permissions.
func ModeFromFileMode(fm fs.FileMode) (uint32, error) {
	const op = "manifest.ModeFromFileMode"
	switch {
	case fm&fs.ModeSymlink != 0:
		return ModeSymlink | ModePerm, nil
	case !fm.IsRegular():
		return 0, core.E(core.KindInvalid, op, "file mode %v is neither a regular file nor a symlink", fm)
	case fm&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0:
		return 0, core.E(core.KindInvalid, op, "file mode %v has setuid, setgid or sticky bits", fm)
	}
	return ModeRegular | uint32(fm.Perm()), nil
}

// SortEntries sorts entries into the order Validate requires: bytewise by
// path.
func SortEntries(entries []Entry) {
	slices.SortFunc(entries, func(a, b Entry) int { return cmp.Compare(a.Path, b.Path) })
}

// The range of Created: what int64 nanoseconds since the epoch can hold.
var (
	minCreated = time.Unix(0, math.MinInt64)
	maxCreated = time.Unix(0, math.MaxInt64)
)

// Validate checks every rule of the schema (see the package doc) and
// returns a KindInvalid *core.Error naming the first violation.
func (m Manifest) Validate() error {
	const op = "manifest.Validate"
	if len(m.Entries) > MaxEntries {
		return core.E(core.KindInvalid, op, "manifest has %d entries, more than the limit of %d", len(m.Entries), MaxEntries)
	}
	// Paths that are entries; an entry below one of them is a conflict.
	leaves := make(map[string]struct{}, len(m.Entries))
	for i, e := range m.Entries {
		if err := e.validate(); err != nil {
			return core.E(core.KindInvalid, op, "entry %d (%.200q): %s", i, e.Path, err.Error())
		}
		if i > 0 && m.Entries[i-1].Path >= e.Path {
			if m.Entries[i-1].Path == e.Path {
				return core.E(core.KindInvalid, op, "entry %d: duplicate path %.200q", i, e.Path)
			}
			return core.E(core.KindInvalid, op, "entry %d: path %.200q sorts before the previous path %.200q; entries must be sorted bytewise by path",
				i, e.Path, m.Entries[i-1].Path)
		}
		for j := range len(e.Path) {
			if e.Path[j] != '/' {
				continue
			}
			if _, ok := leaves[e.Path[:j]]; ok {
				return core.E(core.KindInvalid, op, "entry %d: path %.200q lies below the entry %.200q, which is not a directory",
					i, e.Path, e.Path[:j])
			}
		}
		leaves[e.Path] = struct{}{}
	}
	if len(m.Annotations) > MaxAnnotations {
		return core.E(core.KindInvalid, op, "manifest has %d annotations, more than the limit of %d", len(m.Annotations), MaxAnnotations)
	}
	// Sorted, so that the first violation reported is the same every time.
	for _, k := range slices.Sorted(maps.Keys(m.Annotations)) {
		v := m.Annotations[k]
		switch {
		case k == "":
			return core.E(core.KindInvalid, op, "annotation with an empty key")
		case !utf8.ValidString(k):
			return core.E(core.KindInvalid, op, "annotation key %.200q is not valid UTF-8", k)
		case !utf8.ValidString(v):
			return core.E(core.KindInvalid, op, "annotation %.200q has a value that is not valid UTF-8", k)
		}
	}
	if !m.Created.IsZero() && (m.Created.Before(minCreated) || m.Created.After(maxCreated)) {
		return core.E(core.KindInvalid, op, "created time %v is outside the years 1678 to 2262", m.Created)
	}
	return nil
}

// entryError is a validation failure of one entry; Validate adds which.
type entryError string

func (e entryError) Error() string { return string(e) }

func (e Entry) validate() error {
	if err := validatePath(e.Path); err != nil {
		return err
	}
	if extra := e.Mode &^ (ModeTypeMask | ModePerm); extra != 0 {
		return entryError("mode " + octal(e.Mode) + " has bits besides file type and permissions (setuid, setgid and sticky are not supported)")
	}
	switch e.Mode & ModeTypeMask {
	case ModeRegular:
		switch {
		case e.Digest.IsZero():
			return entryError("regular file has no digest")
		case e.Size < 0:
			return entryError("negative size")
		case e.Target != "":
			return entryError("regular file has a link target")
		}
		if e.MediaType != "" {
			if !utf8.ValidString(e.MediaType) {
				return entryError("media type is not valid UTF-8")
			}
			mt, _, err := mime.ParseMediaType(e.MediaType)
			if err != nil {
				return entryError("media type is malformed: " + err.Error())
			}
			if !strings.Contains(mt, "/") {
				return entryError("media type " + strconv.Quote(mt) + " has no subtype")
			}
		}
	case ModeSymlink:
		switch {
		case e.Mode != ModeSymlink|ModePerm:
			return entryError("symlink mode " + octal(e.Mode) + " is not 0o120777")
		case !e.Digest.IsZero() || e.Size != 0:
			return entryError("symlink has a digest or size")
		case e.MediaType != "":
			return entryError("symlink has a media type")
		case e.Target == "":
			return entryError("symlink has no target")
		case strings.IndexByte(e.Target, 0) >= 0:
			return entryError("symlink target contains NUL")
		case !utf8.ValidString(e.Target):
			return entryError("symlink target is not valid UTF-8")
		}
	default:
		return entryError("mode " + octal(e.Mode) + " is neither a regular file (0o100000) nor a symlink (0o120000)")
	}
	return nil
}

func validatePath(p string) error {
	switch {
	case p == "":
		return entryError("empty path")
	case !utf8.ValidString(p):
		return entryError("path is not valid UTF-8")
	case strings.IndexByte(p, 0) >= 0:
		return entryError("path contains NUL")
	case strings.IndexByte(p, '\\') >= 0:
		return entryError(`path contains a backslash; use "/"`)
	case p[0] == '/':
		return entryError("path is absolute")
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return entryError(`path has an empty segment ("//" or a trailing "/")`)
		case ".", "..":
			return entryError(`path has a "` + seg + `" segment`)
		}
	}
	return nil
}

func octal(mode uint32) string { return "0o" + strconv.FormatUint(uint64(mode), 8) }
