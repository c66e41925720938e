package digest

import (
	"fmt"
	"io"

	"github.com/deltaci/deltaci/internal/core"
)

// MismatchError reports content whose digest is not the expected one. It
// matches core.ErrInvalid under errors.Is and has Kind KindInvalid under
// core.KindOf; a caller that read the bytes from its own storage rather
// than from a client should treat it as corruption instead.
type MismatchError struct {
	Expected Digest
	Actual   Digest
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("digest mismatch: expected %s, got %s", e.Expected, e.Actual)
}

// Unwrap returns a KindInvalid *core.Error carrying the same message, so
// that errors.Is, errors.As and core.KindOf classify the mismatch without
// knowing this type.
func (e *MismatchError) Unwrap() error { return &core.Error{Kind: core.KindInvalid, Msg: e.Error()} }

// SizeError reports content whose length is not the expected one. When the
// content is too long, verification stops as soon as it passes Expected, so
// Actual is only a lower bound. It classifies like MismatchError.
type SizeError struct {
	Expected int64
	Actual   int64
}

func (e *SizeError) Error() string {
	if e.Actual > e.Expected {
		return fmt.Sprintf("size mismatch: expected %d bytes, got at least %d", e.Expected, e.Actual)
	}
	return fmt.Sprintf("size mismatch: expected %d bytes, got %d (short content)", e.Expected, e.Actual)
}

// Unwrap returns a KindInvalid *core.Error; see MismatchError.Unwrap.
func (e *SizeError) Unwrap() error { return &core.Error{Kind: core.KindInvalid, Msg: e.Error()} }

// verifier is the state VerifyingReader and VerifyingWriter share: the
// running hash, the expectation and the byte count.
type verifier struct {
	h    *Hasher
	want Digest
	size int64 // < 0: unknown
	n    int64
}

func newVerifier(op string, want Digest, size int64) (verifier, error) {
	if want.IsZero() {
		return verifier{}, core.E(core.KindInvalid, op, "no expected digest to verify against")
	}
	h, err := NewHasher(want.alg)
	if err != nil {
		return verifier{}, err
	}
	return verifier{h: h, want: want, size: size}, nil
}

// admit fails when k more bytes would run past the expected size, so that
// overlong content is refused before it is consumed further.
func (v *verifier) admit(k int) error {
	if v.size >= 0 && int64(k) > v.size-v.n {
		return &SizeError{Expected: v.size, Actual: v.n + int64(k)}
	}
	return nil
}

func (v *verifier) write(p []byte) {
	_, _ = v.h.Write(p)
	v.n += int64(len(p))
}

func (v *verifier) finish() error {
	if v.size >= 0 && v.n != v.size {
		return &SizeError{Expected: v.size, Actual: v.n}
	}
	if got := v.h.Digest(); got != v.want {
		return &MismatchError{Expected: v.want, Actual: got}
	}
	return nil
}

// VerifyingReader passes bytes through from an io.Reader while hashing them
// and, at the end of the content, returns io.EOF only if the content has the
// expected digest (and size, when one was given). Otherwise the final Read
// returns a *MismatchError or *SizeError instead of io.EOF.
//
// Bytes are handed out before they are verified: a caller must not treat
// what it read as trustworthy (commit it, rename it into place) until Read
// has returned io.EOF. Errors from the underlying reader are returned
// unchanged; the verdict at the end is sticky.
type VerifyingReader struct {
	r   io.Reader
	v   verifier
	err error // io.EOF after success, or the verdict or setup error
}

// NewVerifyingReader returns a reader that verifies r against want. A size
// of zero or more is the exact expected length; a negative size means the
// length is unknown and only the digest is checked. A zero want makes every
// Read fail with a KindInvalid error.
func NewVerifyingReader(r io.Reader, want Digest, size int64) *VerifyingReader {
	v, err := newVerifier("digest.VerifyingReader", want, size)
	return &VerifyingReader{r: r, v: v, err: err}
}

// Read implements io.Reader; see VerifyingReader for the end-of-content
// contract.
func (vr *VerifyingReader) Read(p []byte) (int, error) {
	if vr.err != nil {
		return 0, vr.err
	}
	n, err := vr.r.Read(p)
	if n > 0 {
		if aerr := vr.v.admit(n); aerr != nil {
			vr.err = aerr
			return 0, aerr
		}
		vr.v.write(p[:n])
	}
	if err == io.EOF {
		vr.err = vr.v.finish()
		if vr.err == nil {
			vr.err = io.EOF
		}
		return n, vr.err
	}
	return n, err
}

// N returns the number of bytes read so far.
func (vr *VerifyingReader) N() int64 { return vr.v.n }

// VerifyingWriter passes bytes through to an io.Writer while hashing them,
// for callers that push content (an upload body copied into a temporary
// file). Verify, called after the last Write, gives the verdict. A Write
// that would run past the expected size fails with a *SizeError before
// anything of it reaches the underlying writer.
type VerifyingWriter struct {
	w   io.Writer
	v   verifier
	err error // sticky setup or size error
}

// NewVerifyingWriter returns a writer that forwards to w (or only hashes,
// when w is nil) and verifies against want and, when size >= 0, the exact
// size. A zero want makes every Write and Verify fail with a KindInvalid
// error.
func NewVerifyingWriter(w io.Writer, want Digest, size int64) *VerifyingWriter {
	v, err := newVerifier("digest.VerifyingWriter", want, size)
	return &VerifyingWriter{w: w, v: v, err: err}
}

// Write implements io.Writer. Only the bytes the underlying writer accepted
// are hashed, so a short write leaves the hash consistent with what was
// stored.
func (vw *VerifyingWriter) Write(p []byte) (int, error) {
	if vw.err != nil {
		return 0, vw.err
	}
	if err := vw.v.admit(len(p)); err != nil {
		vw.err = err
		return 0, err
	}
	if vw.w == nil {
		vw.v.write(p)
		return len(p), nil
	}
	n, err := vw.w.Write(p)
	vw.v.write(p[:n])
	return n, err
}

// Verify reports whether everything written has the expected size and
// digest: nil, a *MismatchError or a *SizeError.
func (vw *VerifyingWriter) Verify() error {
	if vw.err != nil {
		return vw.err
	}
	return vw.v.finish()
}

// N returns the number of bytes written so far.
func (vw *VerifyingWriter) N() int64 { return vw.v.n }
