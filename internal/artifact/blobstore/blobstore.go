// Package blobstore is the storage SPI of the artifact store: a flat,
// content-addressed space of blobs named by their digest. Two backends
// implement it, blobstore/fs (a local directory) and blobstore/s3 (any S3
// API through minio-go), and blobstore/blobstoretest is the conformance
// suite that proves they behave the same.
//
// The store knows nothing of manifests, refs or reachability; the registry
// and GC above it decide what to keep. What the store promises is that a
// blob is never visible under a digest its bytes do not hash to.
package blobstore

import (
	"context"
	"io"
	"iter"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
)

// Info describes one stored blob.
type Info struct {
	Digest digest.Digest
	Size   int64
	// ModTime is when the blob was last written (for GC's grace window); a
	// repeated Put that finds the blob present does not touch it.
	ModTime time.Time
}

// Store is a content-addressed blob store. Implementations are safe for
// concurrent use; concurrent Puts of the same digest are expected (two
// uploads of the same file) and all succeed.
//
// Errors are *core.Error values or wrap them, so core.KindOf classifies
// them. Every method may return:
//   - KindInvalid for a zero digest or malformed arguments;
//   - KindCanceled, wrapping ctx.Err(), when ctx ends first (errors.Is
//     matches context.Canceled or context.DeadlineExceeded);
//   - KindUnavailable when the backend cannot be reached (retrying may help);
//   - KindInternal for anything else (a disk error, a misconfigured bucket).
//
// Put(ctx, d, r, size) stores the bytes of r under d. size is the exact
// length, or -1 when unknown. The bytes are hashed in the same pass that
// stores them, and the blob becomes visible under d only after they proved
// to hash to d and to have the given size; otherwise Put returns a
// KindInvalid error wrapping *digest.MismatchError or *digest.SizeError and
// nothing is left under d, nor in the backend's staging area (a temp file or
// an incomplete multipart upload). The same holds when ctx is canceled
// mid-way. Reading stops at the first error, so r may be left partly read.
// If d is already stored, Put returns nil without reading r: the stored
// bytes were verified when they were written, and skipping the upload is the
// point of content addressing. (A size that differs from the stored size is
// still refused with KindInvalid, since no content can match both.)
//
// Get(ctx, d, offset, length) opens bytes [offset, offset+length) of d;
// length -1 means to the end. The range must lie within the blob:
// 0 <= offset <= size and offset+length <= size, else KindInvalid (an empty
// range at the end is allowed). An absent blob is KindNotFound. When the
// range is the whole blob, the reader verifies the digest while it is read
// and its final Read returns, instead of io.EOF, a KindInternal error
// wrapping *digest.MismatchError if the stored bytes were corrupted. Partial
// ranges cannot be verified and are not. The caller must Close the reader;
// canceling ctx may also end a read in progress.
//
// Stat(ctx, d) returns d's Info, or KindNotFound.
//
// Delete(ctx, d) removes d. Deleting an absent blob returns nil, so that a
// GC sweep interrupted half-way can simply run again; GC, not the store,
// decides whether a blob may go. Readers that already opened d may still
// finish on some backends (fs), not on others.
//
// List(ctx) yields every stored blob once, in no particular order, for GC.
// Blobs put or deleted while the listing runs may or may not appear. A
// failure ends the sequence with one (Info{}, err) pair. Objects in the
// backend whose names are not digests are skipped, and so never deleted.
type Store interface {
	Put(ctx context.Context, d digest.Digest, r io.Reader, size int64) error
	Get(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error)
	Stat(ctx context.Context, d digest.Digest) (Info, error)
	Delete(ctx context.Context, d digest.Digest) error
	List(ctx context.Context) iter.Seq2[Info, error]
}

// StaleRemover is implemented by backends whose Puts stage data outside the
// key space (fs temp files, S3 multipart uploads). A process that crashed
// mid-Put leaves that data behind; RemoveStale deletes what has been idle
// for longer than olderThan and returns how many items it removed. Choose
// olderThan well above the longest pause in an upload, since a live Put's
// staging data is removed too if it looks stale.
type StaleRemover interface {
	RemoveStale(ctx context.Context, olderThan time.Duration) (int, error)
}
