// Package digest is the content identity of the artifact store: a digest
// names a blob by the hash of its bytes, written "<algorithm>:<hex>".
//
// Two algorithms are supported, SHA-256 (the default) and BLAKE3, both with
// 32-byte outputs, so every digest is the algorithm name, a colon and exactly
// 64 lowercase hex digits. There is one spelling per digest: uppercase hex,
// other lengths and other algorithms are rejected, so digests can be compared
// as strings and used as keys.
//
// Verification happens while bytes stream: VerifyingReader and
// VerifyingWriter hash in the same pass that moves the data and report a
// *MismatchError or *SizeError at the end instead of success.
package digest

import (
	"fmt"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// Algorithm names a hash function used for content identity.
type Algorithm string

// The supported algorithms.
const (
	SHA256 Algorithm = "sha256"
	BLAKE3 Algorithm = "blake3"

	// Default is the algorithm used when a caller has no preference.
	Default = SHA256
)

// hexLen is the length of the hex part for every supported algorithm: both
// produce 32 bytes.
const hexLen = 64

// Valid reports whether a is a supported algorithm.
func (a Algorithm) Valid() bool { return a == SHA256 || a == BLAKE3 }

// ParseAlgorithm checks an algorithm name from untrusted input (a query
// parameter, a config file) and returns a KindInvalid error if it is not
// supported.
func ParseAlgorithm(s string) (Algorithm, error) {
	a := Algorithm(s)
	if !a.Valid() {
		return "", core.E(core.KindInvalid, "digest.ParseAlgorithm",
			"unknown algorithm %.40q (want %q or %q)", s, SHA256, BLAKE3)
	}
	return a, nil
}

// Digest identifies content. Its fields are unexported so that the only
// ways to build one are Parse, MustParse, a Hasher and FromBytes or
// FromReader: a non-zero Digest is therefore always well formed and nobody
// downstream has to validate it again. Digest is comparable, so == and map
// keys work. The zero value means "no digest" and is rejected wherever a
// digest is required.
type Digest struct {
	alg Algorithm
	hex string
}

// Parse parses "<algorithm>:<64 lowercase hex digits>". Anything else is a
// KindInvalid *core.Error saying what is wrong.
func Parse(s string) (Digest, error) {
	const op = "digest.Parse"
	algName, hexPart, ok := strings.Cut(s, ":")
	if !ok {
		return Digest{}, core.E(core.KindInvalid, op, "digest %.80q is missing the ':' between algorithm and hex", s)
	}
	alg := Algorithm(algName)
	if !alg.Valid() {
		return Digest{}, core.E(core.KindInvalid, op, "digest %.80q has unknown algorithm %.40q (want %q or %q)",
			s, algName, SHA256, BLAKE3)
	}
	if len(hexPart) != hexLen {
		return Digest{}, core.E(core.KindInvalid, op, "digest %.80q has %d characters after the colon, want %d hex digits", s, len(hexPart), hexLen)
	}
	for i := 0; i < len(hexPart); i++ {
		c := hexPart[i]
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			return Digest{}, core.E(core.KindInvalid, op, "digest %.80q has uppercase hex digit %q at offset %d; digests are lowercase",
				s, hexPart[i:i+1], len(algName)+1+i)
		default:
			return Digest{}, core.E(core.KindInvalid, op, "digest %.80q has non-hex byte %q at offset %d", s, hexPart[i:i+1], len(algName)+1+i)
		}
	}
	return Digest{alg: alg, hex: hexPart}, nil
}

// MustParse is Parse for constants and tests; it panics on error.
func MustParse(s string) Digest {
	d, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return d
}

// Algorithm returns the hash function of d ("" for the zero Digest).
func (d Digest) Algorithm() Algorithm { return d.alg }

// Hex returns the 64 lowercase hex digits of d ("" for the zero Digest).
func (d Digest) Hex() string { return d.hex }

// IsZero reports whether d is the zero Digest, i.e. no digest at all.
func (d Digest) IsZero() bool { return d == Digest{} }

// String returns "<algorithm>:<hex>", the form Parse accepts, or "" for the
// zero Digest.
func (d Digest) String() string {
	if d.IsZero() {
		return ""
	}
	return string(d.alg) + ":" + d.hex
}

// MarshalText implements encoding.TextMarshaler. The zero Digest is an
// error rather than "" so that a missing digest never serializes silently;
// use `omitzero` for optional digest fields.
func (d Digest) MarshalText() ([]byte, error) {
	if d.IsZero() {
		return nil, core.E(core.KindInvalid, "digest.MarshalText", "zero digest")
	}
	return []byte(d.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with Parse's rules.
func (d *Digest) UnmarshalText(b []byte) error {
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// GoString makes %#v print the digest readably in test failures.
func (d Digest) GoString() string {
	if d.IsZero() {
		return "digest.Digest{}"
	}
	return fmt.Sprintf("digest.MustParse(%q)", d.String())
}
