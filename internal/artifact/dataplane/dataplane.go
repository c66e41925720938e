// Package dataplane is the artifact store's byte path: uploads, resumable
// upload sessions, presence checks and ranged downloads. It is an SPI so the
// byte path can move to another process or language later; Local is the
// in-process implementation over a blobstore and the metadata store.
package dataplane

import (
	"context"
	"io"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
)

// Blob names stored content.
type Blob struct {
	Digest digest.Digest
	Size   int64
}

// Session is a resumable upload: Offset is where the next chunk must start.
type Session struct {
	ID        string
	Algorithm digest.Algorithm
	Offset    int64
	ExpiresAt time.Time
}

// MaxFindMissing bounds one FindMissing batch.
const MaxFindMissing = 10000

// DataPlane moves bytes in and out of the store. Errors are *core.Error:
//   - KindInvalid: bad arguments, or content that does not match its digest
//     or size (wrapping *digest.MismatchError or *digest.SizeError); nothing
//     is stored then;
//   - KindNotFound: an unknown blob or session (or an expired session);
//   - KindConflict: an Append at the wrong offset (the error's message
//     carries the session's offset, see OffsetError), or a blob GC is
//     deleting right now (upload it again in a moment);
//   - KindCanceled when ctx ends; KindUnavailable when the backend is down.
//
// Upload streams r into the store in one pass, hashing as it goes. With
// expected set, the bytes must hash to it; without, the digest of the bytes
// (algorithm alg) is returned, at the cost of staging them first. When
// expected is already stored, or another Upload of it is in flight and
// succeeds, Upload returns without reading r: identical concurrent uploads
// are deduplicated. Memory use is bounded whatever the size.
//
// StartUpload, Append and Finish are the resumable form: Append must start
// at the session's offset and returns the new one; Finish verifies the
// whole content against d and stores it.
//
// FindMissing returns, in input order, the digests that are not stored.
// Open returns bytes [offset, offset+length) of a blob (length -1: to the
// end), and the blob's size.
type DataPlane interface {
	Upload(ctx context.Context, actor string, alg digest.Algorithm, expected digest.Digest, r io.Reader, size int64) (Blob, error)
	StartUpload(ctx context.Context, alg digest.Algorithm, expected digest.Digest) (Session, error)
	Append(ctx context.Context, id string, offset int64, r io.Reader) (int64, error)
	Finish(ctx context.Context, actor, id string, d digest.Digest) (Blob, error)
	Cancel(ctx context.Context, id string) error
	FindMissing(ctx context.Context, ds []digest.Digest) ([]digest.Digest, error)
	Open(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, int64, error)
}
