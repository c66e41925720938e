package blobstore

import (
	"context"
	"errors"
	"io"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// The functions below are for backends, so that every implementation
// checks arguments and classifies errors the way Store documents.

// CheckPut validates Put's arguments.
func CheckPut(op string, d digest.Digest, size int64) error {
	if d.IsZero() {
		return core.E(core.KindInvalid, op, "no digest")
	}
	if size < -1 {
		return core.E(core.KindInvalid, op, "size %d of %s is negative (use -1 for unknown)", size, d)
	}
	return nil
}

// CheckDigest refuses the zero digest.
func CheckDigest(op string, d digest.Digest) error {
	if d.IsZero() {
		return core.E(core.KindInvalid, op, "no digest")
	}
	return nil
}

// CheckRange resolves Get's offset and length against a blob of the given
// size and returns the number of bytes the range covers.
func CheckRange(op string, d digest.Digest, offset, length, size int64) (int64, error) {
	if offset < 0 || offset > size {
		return 0, core.E(core.KindInvalid, op, "offset %d is outside %s (%d bytes)", offset, d, size)
	}
	if length == -1 {
		return size - offset, nil
	}
	if length < 0 || length > size-offset {
		return 0, core.E(core.KindInvalid, op, "range of %d bytes at offset %d is outside %s (%d bytes)", length, offset, d, size)
	}
	return length, nil
}

// CheckSize refuses a Put whose declared size contradicts the size of the
// blob already stored under d.
func CheckSize(op string, d digest.Digest, declared, stored int64) error {
	if declared >= 0 && declared != stored {
		return core.E(core.KindInvalid, op, "%s is stored with %d bytes, not %d", d, stored, declared)
	}
	return nil
}

// NotFound is the error for an absent blob.
func NotFound(op string, d digest.Digest) error {
	return core.E(core.KindNotFound, op, "blob %s not found", d)
}

// PutError classifies an error met while reading Put's source: a digest or
// size verdict is KindInvalid, the end of ctx is KindCanceled, and anything
// else (the caller's reader failing) is passed on with op added.
func PutError(ctx context.Context, op string, err error) error {
	var mismatch *digest.MismatchError
	var size *digest.SizeError
	switch {
	case errors.As(err, &mismatch), errors.As(err, &size):
		return core.Wrap(core.KindInvalid, op, err)
	case ctx.Err() != nil:
		return Canceled(ctx, op)
	}
	return core.Wrap(core.KindOf(err), op, err)
}

// Canceled is the error for an operation cut short by the end of ctx.
func Canceled(ctx context.Context, op string) error {
	return core.Wrap(core.KindCanceled, op, ctx.Err())
}

// ContextReader returns a reader that fails with ctx's error once ctx is
// done, so that a long copy stops between reads. A Read already blocked in
// r is not interrupted.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return &ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
