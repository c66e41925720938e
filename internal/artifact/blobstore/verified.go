package blobstore

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// CorruptError reports stored bytes that do not match their digest:
// damage in the store (a failing disk, an object changed behind the
// store's back), never the caller's fault. It classifies as KindInternal.
// Unlike the *digest.MismatchError of a client's upload, which is invalid
// input, it does not unwrap to its verdict; Cause returns it.
type CorruptError struct {
	Digest digest.Digest
	// Chunk is the first chunk found damaged: by a read, which did not
	// hand its bytes out, or by a check of the whole blob (Verify), against
	// the blob's stored chunk index. -1 when that is not known: the whole
	// blob's digest found the damage and no intact index tells where.
	Chunk int64
	// Err is the verdict: a *digest.MismatchError (of the chunk's digests
	// when Chunk >= 0) or a *digest.SizeError.
	Err error
}

func (e *CorruptError) Error() string {
	if e.Chunk >= 0 {
		return fmt.Sprintf("stored blob %s is corrupt: chunk %d (bytes from %d) does not match the digest recorded for it (%v)",
			e.Digest, e.Chunk, e.Chunk*digest.ChunkSize, e.Err)
	}
	return fmt.Sprintf("stored blob %s is corrupt: its bytes do not hash to its digest (%v)", e.Digest, e.Err)
}

// Unwrap classifies the error as internal.
func (e *CorruptError) Unwrap() error { return &core.Error{Kind: core.KindInternal} }

// Cause returns the verdict, a *digest.MismatchError or *digest.SizeError.
func (e *CorruptError) Cause() error { return e.Err }

// AsCorrupt returns the *CorruptError in err's chain, if any.
func AsCorrupt(err error) (*CorruptError, bool) {
	var ce *CorruptError
	ok := errors.As(err, &ce)
	return ce, ok
}

// Raw is a backend's stored bytes, unverified, and the place where it
// keeps each blob's chunk index. Read, Verify and Existing build the
// verified operations of Store on it, so that every backend verifies the
// same way. Errors follow Store's classification.
type Raw interface {
	// StatRaw returns the stored size of d; KindNotFound when absent.
	StatRaw(ctx context.Context, d digest.Digest) (Info, error)
	// OpenRaw opens bytes [offset, offset+length) of d as stored; the range
	// lies within the size StatRaw gave.
	OpenRaw(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error)
	// LoadIndex returns the stored chunk index of d, in its binary form;
	// KindNotFound when there is none.
	LoadIndex(ctx context.Context, d digest.Digest) ([]byte, error)
	// SaveIndex stores the chunk index of d, replacing any.
	SaveIndex(ctx context.Context, d digest.Digest, index []byte) error
}

// verifyBufSize is the read size of a whole-blob check.
const verifyBufSize = 256 << 10

// chunkBufs holds chunk buffers, so that every verified read does not
// allocate a MiB.
var chunkBufs = sync.Pool{New: func() any { b := make([]byte, digest.ChunkSize); return &b }}

// Read implements Store.Get over raw: see Store for what is verified, and
// when.
func Read(ctx context.Context, op string, raw Raw, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	if err := CheckDigest(op, d); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, Canceled(ctx, op)
	}
	info, err := raw.StatRaw(ctx, d)
	if err != nil {
		return nil, err
	}
	if length == 0 {
		// Nothing to verify; a caller learning that the blob is there
		// costs no index and no bytes.
		if _, err := CheckRange(op, d, offset, 0, info.Size); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	idx, ok, err := loadIndex(ctx, raw, d, info.Size)
	if err != nil {
		return nil, err
	}
	whole := offset == 0 && (length == -1 || length == info.Size)
	if !ok {
		if whole {
			return stream(ctx, op, raw, d, info.Size)
		}
		// A range can only be checked against chunk digests: make them
		// from the whole blob, verified, once.
		if _, idx, err = check(ctx, op, raw, d); err != nil {
			return nil, err
		}
	}
	n, err := CheckRange(op, d, offset, length, idx.Size)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		// Nothing to hand out; an index records only verified bytes, so
		// an empty blob with one is the empty blob.
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	first, end := offset/idx.ChunkSize, (offset+n+idx.ChunkSize-1)/idx.ChunkSize
	spanStart, _ := idx.Span(first)
	_, spanEnd := idx.Span(end - 1)
	src, err := raw.OpenRaw(ctx, d, spanStart, spanEnd-spanStart)
	if err != nil {
		return nil, err
	}
	r := &chunkReader{ctx: ctx, op: op, idx: idx, src: src, next: first, end: end, skip: offset - spanStart, left: n,
		buf: chunkBufs.Get().(*[]byte)}
	if whole {
		if r.whole, err = digest.NewHasher(d.Algorithm()); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// loadIndex returns the stored index of d when it is intact and describes
// the size stored now; ok is false otherwise (none, damaged, written with
// another chunk size, or the blob's size changed since), and the index is
// then rebuilt from the bytes when needed.
func loadIndex(ctx context.Context, raw Raw, d digest.Digest, size int64) (digest.ChunkIndex, bool, error) {
	b, err := raw.LoadIndex(ctx, d)
	if err != nil {
		if core.KindOf(err) == core.KindNotFound {
			return digest.ChunkIndex{}, false, nil
		}
		return digest.ChunkIndex{}, false, err
	}
	x, err := digest.ParseChunkIndex(d, b)
	if err != nil || x.ChunkSize != digest.ChunkSize || x.Size != size {
		return digest.ChunkIndex{}, false, nil
	}
	return x, true, nil
}

// Verify implements Store.Verify over raw.
func Verify(ctx context.Context, op string, raw Raw, d digest.Digest) (Info, error) {
	if err := CheckDigest(op, d); err != nil {
		return Info{}, err
	}
	info, _, err := check(ctx, op, raw, d)
	return info, err
}

// Existing is the first step of a Put: it verifies what is stored under d,
// if anything. done is true when the Put is over with err: the stored
// bytes are intact (err is nil, or KindInvalid when size contradicts
// them), or they could not be checked. done is false when the Put must
// store its bytes: nothing is stored, or what is stored is corrupt.
func Existing(ctx context.Context, op string, raw Raw, d digest.Digest, size int64) (done bool, err error) {
	info, _, err := check(ctx, op, raw, d)
	if err == nil {
		return true, CheckSize(op, d, size, info.Size)
	}
	if _, corrupt := AsCorrupt(err); corrupt || core.KindOf(err) == core.KindNotFound {
		return false, nil
	}
	return true, err
}

// check reads d whole, verifies it against d and returns its index,
// storing the index if the stored one is not the same.
func check(ctx context.Context, op string, raw Raw, d digest.Digest) (Info, digest.ChunkIndex, error) {
	if ctx.Err() != nil {
		return Info{}, digest.ChunkIndex{}, Canceled(ctx, op)
	}
	info, err := raw.StatRaw(ctx, d)
	if err != nil {
		return Info{}, digest.ChunkIndex{}, err
	}
	src, err := raw.OpenRaw(ctx, d, 0, info.Size)
	if err != nil {
		return Info{}, digest.ChunkIndex{}, err
	}
	defer src.Close()
	ch, err := digest.NewChunkHasher(d.Algorithm())
	if err != nil {
		return Info{}, digest.ChunkIndex{}, err
	}
	vr := digest.NewVerifyingReader(io.TeeReader(paced(ctx, ContextReader(ctx, src)), ch), d, info.Size)
	buf := make([]byte, verifyBufSize)
	for {
		_, err := vr.Read(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			err = readError(ctx, op, d, err)
			if ce, ok := AsCorrupt(err); ok {
				locateDamage(ctx, raw, ce, info.Size, ch)
			}
			return Info{}, digest.ChunkIndex{}, err
		}
	}
	idx := ch.Index(d)
	if old, ok, _ := loadIndex(ctx, raw, d, idx.Size); !ok || !sameSums(old, idx) {
		SaveIndex(ctx, raw, idx)
	}
	return info, idx, nil
}

// locateDamage names the first damaged chunk of a blob whose whole check
// failed, when its stored index tells: the first chunk whose bytes, as ch
// hashed them all, do not match their recorded digest. Without an index
// for the stored size, or after bytes that ran short, ce keeps Chunk -1.
func locateDamage(ctx context.Context, raw Raw, ce *CorruptError, size int64, ch *digest.ChunkHasher) {
	idx, ok, _ := loadIndex(ctx, raw, ce.Digest, size)
	if !ok || ch.Size() != size {
		return
	}
	got := ch.Index(ce.Digest)
	for i := range idx.Sums {
		if got.Sums[i] == idx.Sums[i] {
			continue
		}
		want, err1 := chunkDigest(ce.Digest, idx.Sums[i])
		have, err2 := chunkDigest(ce.Digest, got.Sums[i])
		if err1 == nil && err2 == nil {
			ce.Chunk, ce.Err = int64(i), &digest.MismatchError{Expected: want, Actual: have}
		}
		return
	}
}

// chunkDigest names one chunk's sum as a digest of the blob's algorithm.
func chunkDigest(blob digest.Digest, sum [32]byte) (digest.Digest, error) {
	return digest.Parse(string(blob.Algorithm()) + ":" + hex.EncodeToString(sum[:]))
}

func sameSums(a, b digest.ChunkIndex) bool {
	if len(a.Sums) != len(b.Sums) {
		return false
	}
	for i := range a.Sums {
		if a.Sums[i] != b.Sums[i] {
			return false
		}
	}
	return true
}

// SaveIndex records idx, computed from bytes that proved to be its blob.
// A failure is not reported: the index is rebuilt from the bytes when it
// is next needed.
func SaveIndex(ctx context.Context, raw Raw, idx digest.ChunkIndex) {
	b, err := idx.MarshalBinary()
	if err != nil {
		return
	}
	_ = raw.SaveIndex(ctx, idx.Blob, b)
}

// readError classifies an error met while reading stored bytes: a
// verdict against d is a *CorruptError, the end of ctx is KindCanceled.
func readError(ctx context.Context, op string, d digest.Digest, err error) error {
	var mismatch *digest.MismatchError
	var size *digest.SizeError
	switch {
	case errors.As(err, &mismatch), errors.As(err, &size):
		return &CorruptError{Digest: d, Chunk: -1, Err: err}
	case ctx.Err() != nil:
		return Canceled(ctx, op)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return core.E(core.KindInternal, op, "stored blob %s ended before its size", d)
	}
	var ce *core.Error
	if errors.As(err, &ce) {
		return err
	}
	return core.Wrap(core.KindInternal, op, err)
}

// stream reads a whole blob that has no index: every byte is handed out
// before the verdict, which the final Read gives instead of io.EOF. The
// index is recorded from the bytes once they proved to be d.
func stream(ctx context.Context, op string, raw Raw, d digest.Digest, size int64) (io.ReadCloser, error) {
	src, err := raw.OpenRaw(ctx, d, 0, size)
	if err != nil {
		return nil, err
	}
	ch, err := digest.NewChunkHasher(d.Algorithm())
	if err != nil {
		src.Close()
		return nil, err
	}
	return &streamReader{ctx: ctx, op: op, raw: raw, d: d, src: src, ch: ch,
		vr: digest.NewVerifyingReader(io.TeeReader(ContextReader(ctx, src), ch), d, size)}, nil
}

type streamReader struct {
	ctx context.Context
	op  string
	raw Raw
	d   digest.Digest
	src io.Closer
	ch  *digest.ChunkHasher
	vr  *digest.VerifyingReader
	err error // sticky: io.EOF after a positive verdict, or the failure
}

func (s *streamReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.vr.Read(p)
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		SaveIndex(s.ctx, s.raw, s.ch.Index(s.d))
		s.err = io.EOF
	default:
		s.err = readError(s.ctx, s.op, s.d, err)
	}
	return n, s.err
}

func (s *streamReader) Close() error { return s.src.Close() }

// chunkReader hands out a range of a blob chunk by chunk, each only once
// it matched its recorded digest.
type chunkReader struct {
	ctx  context.Context
	op   string
	idx  digest.ChunkIndex
	src  io.ReadCloser // the covered chunks, from the first one's start
	next int64         // the chunk to load next
	end  int64         // one past the last chunk to load
	skip int64         // bytes of the next chunk before the range
	left int64         // bytes of the range not handed out yet
	// whole, for a read of the whole blob, hashes every chunk so that the
	// blob's own digest is checked before the last chunk goes out.
	whole *digest.Hasher
	buf   *[]byte
	out   []byte // verified bytes not handed out yet
	err   error  // sticky
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		switch {
		case r.err != nil:
			return 0, r.err
		case r.left == 0:
			r.err = io.EOF
		default:
			r.err = r.load()
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	r.left -= int64(n)
	return n, nil
}

// load reads and verifies the next chunk.
func (r *chunkReader) load() error {
	if r.buf == nil {
		return core.E(core.KindInternal, r.op, "read of %s after Close", r.idx.Blob)
	}
	start, end := r.idx.Span(r.next)
	b := (*r.buf)[:end-start]
	if _, err := io.ReadFull(ContextReader(r.ctx, r.src), b); err != nil {
		return readError(r.ctx, r.op, r.idx.Blob, err)
	}
	if err := r.idx.Check(r.next, b); err != nil {
		return &CorruptError{Digest: r.idx.Blob, Chunk: r.next, Err: err}
	}
	if r.whole != nil {
		_, _ = r.whole.Write(b)
		if r.next == r.end-1 {
			if got := r.whole.Digest(); got != r.idx.Blob {
				return &CorruptError{Digest: r.idx.Blob, Chunk: -1, Err: &digest.MismatchError{Expected: r.idx.Blob, Actual: got}}
			}
		}
	}
	r.out = b[r.skip:min(int64(len(b)), r.skip+r.left)]
	r.skip = 0
	r.next++
	return nil
}

func (r *chunkReader) Close() error {
	if r.buf != nil {
		r.out = nil
		chunkBufs.Put(r.buf)
		r.buf = nil
	}
	return r.src.Close()
}
