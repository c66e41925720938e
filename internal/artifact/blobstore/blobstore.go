// Package blobstore is the storage SPI of the artifact store: a flat,
// content-addressed space of blobs named by their digest. Two backends
// implement it, blobstore/fs (a local directory) and blobstore/s3 (any S3
// API through minio-go), and blobstore/blobstoretest is the conformance
// suite that proves they behave the same.
//
// The store knows nothing of manifests, refs or reachability; the registry
// and GC above it decide what to keep. What the store promises is that a
// blob is never visible under a digest its bytes do not hash to, and that
// bytes damaged after they were stored are never handed out as the blob
// (see Get). The verification is shared: each backend exposes its stored
// bytes unverified through a Raw, and Read, Verify and Existing in this
// package do the checking the same way for all.
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
// Put also records the blob's chunk index (see Get), computed in the same
// pass.
// If d is already stored, Put first verifies the stored bytes (reading
// them whole, as Verify does). When they are intact it returns nil without
// reading r: skipping the upload is the point of content addressing. (A
// size that differs from the stored size is then refused with KindInvalid,
// since no content can match both.) When they are not, Put stores r's bytes
// in their place, once they proved to be d: a corrupt blob is repaired by
// uploading it again.
//
// Get(ctx, d, offset, length) opens bytes [offset, offset+length) of d;
// length -1 means to the end. The range must lie within the blob:
// 0 <= offset <= size and offset+length <= size, else KindInvalid (an empty
// range at the end is allowed). An absent blob is KindNotFound. Every read
// is verified, and damage is a *CorruptError (KindInternal), never a
// *digest.MismatchError, which is a client's fault:
//   - With the blob's chunk index (digest.ChunkIndex, recorded by Put), the
//     reader reads the chunks the range covers one at a time and hands out
//     a chunk's bytes only once it matched its recorded digest; a whole
//     read also checks the digest of the whole blob before it hands out
//     the last chunk. So no damaged byte is ever handed out, and damage in
//     the first chunk read fails the first Read.
//   - A blob stored without an index (before indexes existed, or whose
//     index was lost or damaged) is read whole as a stream, verified at the
//     end: the final Read returns the *CorruptError instead of io.EOF, and
//     the index is then recorded from the verified bytes. A partial range
//     of such a blob first reads the whole blob to rebuild the index (Get
//     returns the *CorruptError if it is damaged), then reads the range as
//     above.
//
// The caller must Close the reader; canceling ctx also ends a read in
// progress.
//
// Verify(ctx, d) reads d whole and checks it against d: its Info when the
// bytes are intact (recording the chunk index if it was missing, damaged
// or stale), a *CorruptError when they are not, KindNotFound when d is not
// stored.
//
// Stat(ctx, d) returns d's Info, or KindNotFound. It reads no bytes.
//
// Delete(ctx, d) removes d and its chunk index. Deleting an absent blob
// returns nil, so that a GC sweep interrupted half-way can simply run again;
// GC, not the store, decides whether a blob may go. Readers that already
// opened d may still finish on some backends (fs), not on others.
//
// List(ctx) yields every stored blob once, in no particular order, for GC.
// Blobs put or deleted while the listing runs may or may not appear. A
// failure ends the sequence with one (Info{}, err) pair. Objects in the
// backend whose names are not digests are skipped, and so never deleted;
// chunk indexes are not listed.
type Store interface {
	Put(ctx context.Context, d digest.Digest, r io.Reader, size int64) error
	Get(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error)
	Verify(ctx context.Context, d digest.Digest) (Info, error)
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

// StaleSparer is a StaleRemover whose staging items name their blob (S3
// multipart uploads), so that it can spare those of blobs an upload in
// flight still holds, however long ago they began: a multipart upload's
// age is its start, not its last part. RemoveStaleExcept is RemoveStale
// that keeps every item whose blob keep reports held; an error from keep
// ends it.
type StaleSparer interface {
	RemoveStaleExcept(ctx context.Context, olderThan time.Duration, keep func(digest.Digest) (bool, error)) (int, error)
}
