package blobstore

import (
	"context"
	"io"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
)

// Quarantiner is implemented by backends that can set a corrupt blob's
// bytes aside instead of deleting them, for a scrub.
//
// Quarantine(ctx, d) moves the stored bytes of d out of the store's key
// space into its quarantine area (QuarantineDir under the store's root or
// prefix), where nothing reads, lists or deletes them, and removes d's
// chunk index. d is then absent: Get, Stat and Verify answer KindNotFound
// and a Put stores it anew. It returns where the bytes went, a path or an
// s3:// URL for the operator who inspects or deletes them. A blob
// quarantined more than once keeps each copy (see QuarantineName). d not
// stored is KindNotFound; the errors otherwise follow Store's.
//
// Quarantine does not check the bytes: the caller has found them corrupt.
// If a Put repairs d at the same moment, the repaired bytes may be the
// ones moved; the scrub orders this with the metadata (see
// registry.Registry.Scrub).
type Quarantiner interface {
	Quarantine(ctx context.Context, d digest.Digest) (string, error)
}

// QuarantineDir is the directory (fs) or key prefix (S3), beside the
// blobs, that holds quarantined bytes.
const QuarantineDir = "quarantine"

// QuarantineName is the name, below QuarantineDir, of d's bytes
// quarantined at t: <alg>/<hex>.<UTC time to the nanosecond>.
func QuarantineName(d digest.Digest, t time.Time) string {
	return string(d.Algorithm()) + "/" + d.Hex() + "." + t.UTC().Format("20060102T150405.000000000Z")
}

// Pacer bounds how fast a long read goes, such as a scrub's. Wait returns
// once n more bytes may be read, or ctx's error if ctx ends first. It is
// safe for concurrent use.
type Pacer interface {
	Wait(ctx context.Context, n int) error
}

type pacerKey struct{}

// WithPacer returns ctx carrying p: Verify, and the check of stored bytes
// that begins a Put, read the stored bytes no faster than p allows, and
// report to it every byte they read. Other reads are not paced.
func WithPacer(ctx context.Context, p Pacer) context.Context {
	return context.WithValue(ctx, pacerKey{}, p)
}

// paced returns r read through the pacer ctx carries, if any.
func paced(ctx context.Context, r io.Reader) io.Reader {
	p, _ := ctx.Value(pacerKey{}).(Pacer)
	if p == nil {
		return r
	}
	return &pacedReader{ctx: ctx, p: p, r: r}
}

type pacedReader struct {
	ctx context.Context
	p   Pacer
	r   io.Reader
}

// Read pays for the bytes it got once it has them, so the bytes read
// never run ahead of the pace by more than one read.
func (r *pacedReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		if werr := r.p.Wait(r.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}
