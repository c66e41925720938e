package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"

	"github.com/zeebo/blake3"

	"github.com/deltaci/deltaci/internal/core"
)

// Hasher computes a Digest incrementally. It is an io.Writer whose Write
// never fails; Digest may be called at any point and more writes may
// follow. A Hasher is not safe for concurrent use.
type Hasher struct {
	alg Algorithm
	h   hash.Hash
}

// NewHasher returns a Hasher for alg. An unsupported algorithm is a
// KindInvalid error rather than a panic because algorithms can come from
// configuration or requests.
func NewHasher(alg Algorithm) (*Hasher, error) {
	switch alg {
	case SHA256:
		return &Hasher{alg: alg, h: sha256.New()}, nil
	case BLAKE3:
		return &Hasher{alg: alg, h: blake3.New()}, nil
	}
	return nil, core.E(core.KindInvalid, "digest.NewHasher", "unknown algorithm %.40q (want %q or %q)", alg, SHA256, BLAKE3)
}

// Write hashes p. It always returns len(p), nil.
func (h *Hasher) Write(p []byte) (int, error) { return h.h.Write(p) }

// Algorithm returns the hash function of h.
func (h *Hasher) Algorithm() Algorithm { return h.alg }

// Digest returns the digest of everything written so far.
func (h *Hasher) Digest() Digest {
	var buf [32]byte
	return Digest{alg: h.alg, hex: hex.EncodeToString(h.h.Sum(buf[:0]))}
}

// Reset forgets everything written so the Hasher can be reused.
func (h *Hasher) Reset() { h.h.Reset() }

// FromBytes returns the digest of b under alg.
func FromBytes(alg Algorithm, b []byte) (Digest, error) {
	h, err := NewHasher(alg)
	if err != nil {
		return Digest{}, err
	}
	_, _ = h.Write(b)
	return h.Digest(), nil
}

// FromReader hashes r to EOF and returns its digest and length. Errors from
// r are returned unchanged.
func FromReader(alg Algorithm, r io.Reader) (Digest, int64, error) {
	h, err := NewHasher(alg)
	if err != nil {
		return Digest{}, 0, err
	}
	n, err := io.Copy(h, r)
	if err != nil {
		return Digest{}, n, err
	}
	return h.Digest(), n, nil
}
