package digest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/deltaci/deltaci/internal/core"
)

// ChunkSize is the span each digest of a ChunkIndex covers: a blob is cut
// into chunks of ChunkSize bytes, the last one shorter. Small enough that
// a range costs at most two extra MiB of reading, large enough that the
// index is 1/32768 of the blob.
const ChunkSize = 1 << 20

// sumLen is the length of one chunk digest; both algorithms give 32 bytes.
const sumLen = 32

// ChunkIndex lists the digests of a blob's fixed-size chunks, recorded
// when the blob is stored, so that a byte range can be verified by reading
// only the chunks it covers. Each sum is the hash, under the blob's
// algorithm, of one chunk's bytes.
//
// An index is as trustworthy as the bytes it was computed from: the stores
// compute it from bytes that proved to hash to Blob. Its binary form
// carries a checksum bound to Blob, which catches an index damaged in
// storage or copied from another blob, but not one forged together with
// the blob's bytes by someone who can write the storage; only the digest
// of the whole blob catches that.
type ChunkIndex struct {
	// Blob is the digest of the whole blob.
	Blob Digest
	// Size is the blob's length in bytes.
	Size int64
	// ChunkSize is the span of each sum (ChunkSize for indexes this code
	// writes).
	ChunkSize int64
	// Sums holds one digest per chunk, in order.
	Sums [][sumLen]byte
}

// Chunks returns how many chunks a blob of the index's size has.
func (x ChunkIndex) Chunks() int64 { return chunkCount(x.Size, x.ChunkSize) }

func chunkCount(size, chunk int64) int64 {
	n := size / chunk
	if size%chunk != 0 {
		n++
	}
	return n
}

// Span returns the bytes [start, end) of chunk i.
func (x ChunkIndex) Span(i int64) (start, end int64) {
	start = i * x.ChunkSize
	return start, min(start+x.ChunkSize, x.Size)
}

// Check verifies that b is chunk i: a *MismatchError (or a *SizeError
// when b is not the chunk's length) whose digests are the chunk's, not
// the blob's.
func (x ChunkIndex) Check(i int64, b []byte) error {
	start, end := x.Span(i)
	if int64(len(b)) != end-start {
		return &SizeError{Expected: end - start, Actual: int64(len(b))}
	}
	h, err := NewHasher(x.Blob.alg)
	if err != nil {
		return err
	}
	_, _ = h.Write(b)
	var got [sumLen]byte
	h.h.Sum(got[:0])
	if got != x.Sums[i] {
		return &MismatchError{Expected: x.chunkDigest(x.Sums[i]), Actual: x.chunkDigest(got)}
	}
	return nil
}

func (x ChunkIndex) chunkDigest(sum [sumLen]byte) Digest {
	return Digest{alg: x.Blob.alg, hex: hex.EncodeToString(sum[:])}
}

// valid reports what is wrong with the index's fields, or "".
func (x ChunkIndex) valid() string {
	switch {
	case x.Blob.IsZero():
		return "no blob digest"
	case x.Size < 0:
		return "negative size"
	case x.ChunkSize < minChunkSize || x.ChunkSize > maxChunkSize:
		return "chunk size out of range"
	case int64(len(x.Sums)) != x.Chunks():
		return "wrong number of chunk digests for the size"
	}
	return ""
}

// Bounds of a stored chunk size: anything outside was not written by this
// code, whatever its checksum says.
const (
	minChunkSize = 4 << 10
	maxChunkSize = 1 << 30
)

// The binary form of a ChunkIndex:
//
//	magic      8 bytes  "dcchunk1"
//	chunk size 4 bytes  big-endian
//	blob size  8 bytes  big-endian, at most 2^63-1
//	sums       32 bytes per chunk, in order
//	checksum   32 bytes SHA-256 of the blob digest's string form followed
//	                    by every byte above
var chunkMagic = []byte("dcchunk1")

const chunkHeaderLen = 8 + 4 + 8

// MarshalBinary encodes the index in the form ParseChunkIndex reads.
func (x ChunkIndex) MarshalBinary() ([]byte, error) {
	if why := x.valid(); why != "" {
		return nil, core.E(core.KindInvalid, "digest.ChunkIndex", "index of %s: %s", x.Blob, why)
	}
	b := make([]byte, 0, chunkHeaderLen+sumLen*len(x.Sums)+sumLen)
	b = append(b, chunkMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(x.ChunkSize))
	b = binary.BigEndian.AppendUint64(b, uint64(x.Size))
	for _, s := range x.Sums {
		b = append(b, s[:]...)
	}
	sum := indexChecksum(x.Blob, b)
	return append(b, sum[:]...), nil
}

func indexChecksum(blob Digest, body []byte) [sha256.Size]byte {
	h := sha256.New()
	_, _ = h.Write([]byte(blob.String()))
	_, _ = h.Write(body)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// ParseChunkIndex decodes the index of blob from its binary form. Anything
// else, including an intact index of another blob, is a KindInvalid error.
func ParseChunkIndex(blob Digest, b []byte) (ChunkIndex, error) {
	const op = "digest.ParseChunkIndex"
	bad := func(why string) (ChunkIndex, error) {
		return ChunkIndex{}, core.E(core.KindInvalid, op, "chunk index of %s: %s", blob, why)
	}
	if blob.IsZero() {
		return bad("no blob digest")
	}
	if len(b) < chunkHeaderLen+sumLen || !bytes.Equal(b[:len(chunkMagic)], chunkMagic) {
		return bad("not a chunk index")
	}
	chunk := int64(binary.BigEndian.Uint32(b[8:12]))
	size := binary.BigEndian.Uint64(b[12:20])
	if chunk < minChunkSize || chunk > maxChunkSize || size > 1<<63-1 {
		return bad("chunk size or blob size out of range")
	}
	x := ChunkIndex{Blob: blob, Size: int64(size), ChunkSize: chunk}
	body := b[:len(b)-sumLen]
	if n := x.Chunks(); n != int64(len(body)-chunkHeaderLen)/sumLen || (len(body)-chunkHeaderLen)%sumLen != 0 {
		return bad("length does not match the blob size")
	}
	if sum := indexChecksum(blob, body); !bytes.Equal(sum[:], b[len(body):]) {
		return bad("checksum mismatch (damaged, or the index of another blob)")
	}
	x.Sums = make([][sumLen]byte, x.Chunks())
	for i := range x.Sums {
		copy(x.Sums[i][:], body[chunkHeaderLen+i*sumLen:])
	}
	return x, nil
}

// ChunkHasher computes the chunk digests of bytes written to it, for the
// index of the blob they turn out to be. Write never fails. It is not safe
// for concurrent use.
type ChunkHasher struct {
	h    *Hasher
	in   int64 // bytes of the current chunk written so far
	size int64
	sums [][sumLen]byte
}

// NewChunkHasher returns a ChunkHasher for blobs of algorithm alg, with
// chunks of ChunkSize.
func NewChunkHasher(alg Algorithm) (*ChunkHasher, error) {
	h, err := NewHasher(alg)
	if err != nil {
		return nil, err
	}
	return &ChunkHasher{h: h}, nil
}

// Write hashes p into the running chunks. It always returns len(p), nil.
func (c *ChunkHasher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		take := min(int64(len(p)), ChunkSize-c.in)
		_, _ = c.h.Write(p[:take])
		c.in += take
		c.size += take
		p = p[take:]
		if c.in == ChunkSize {
			c.cut()
		}
	}
	return n, nil
}

func (c *ChunkHasher) cut() {
	var s [sumLen]byte
	c.h.h.Sum(s[:0])
	c.sums = append(c.sums, s)
	c.h.Reset()
	c.in = 0
}

// Index returns the index of everything written, as the chunks of blob.
// The caller vouches that the bytes hash to blob. Nothing may be written
// after Index.
func (c *ChunkHasher) Index(blob Digest) ChunkIndex {
	if c.in > 0 {
		c.cut()
	}
	return ChunkIndex{Blob: blob, Size: c.size, ChunkSize: ChunkSize, Sums: c.sums}
}

// Size returns the number of bytes written so far.
func (c *ChunkHasher) Size() int64 { return c.size }
