package registry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/core"
)

// DefaultScrubRate is how many bytes a second a scrub reads unless told
// otherwise: slow enough to leave a disk or a bucket to its users, fast
// enough to check 4 TiB a day.
const DefaultScrubRate = 50 << 20

// ScrubOptions bound one scrub.
type ScrubOptions struct {
	// Rate is the most bytes a second the scrub reads, on average; 0 means
	// DefaultScrubRate and a negative rate means no limit.
	Rate int64
	// Limit, when positive, ends the scrub once it checked that many blobs.
	Limit int
	// Since, when set, limits the scrub to blobs whose bytes were written
	// at or after it.
	Since time.Time
	// Pacer, when set, replaces Rate: every byte read is reported to it.
	Pacer blobstore.Pacer
	// Progress, when set, is called after each blob with the report so
	// far; it must not keep the report's Corrupt slice.
	Progress func(ScrubReport)
}

func (o ScrubOptions) pacer() blobstore.Pacer {
	switch {
	case o.Pacer != nil:
		return o.Pacer
	case o.Rate < 0:
		return nil
	case o.Rate == 0:
		return &Limiter{Rate: DefaultScrubRate}
	}
	return &Limiter{Rate: o.Rate}
}

// Partial reports whether the options check only some blobs.
func (o ScrubOptions) Partial() bool { return o.Limit > 0 || !o.Since.IsZero() }

// RepairHint says how to repair the blobs a scrub quarantined.
const RepairHint = "push the files that hold them again, from a good copy if need be (push DIR --ref NAMESPACE/NAME:TAG): " +
	"a push uploads every blob find-missing lists, which repairs it; until then, pulls of the manifests that list them fail"

// CorruptBlob is a blob a scrub found corrupt and quarantined.
type CorruptBlob struct {
	Digest digest.Digest
	Size   int64
	// Chunk is the first damaged chunk (of digest.ChunkSize bytes), -1
	// when only the whole blob's digest found the damage.
	Chunk int64
	// Reason is the check's verdict.
	Reason string
	// Quarantine is where the bytes went (a path or an s3:// URL); empty
	// when GC deleted them before they could be moved.
	Quarantine string
	// Files are where the refs hold the blob (at most MaxScrubFiles):
	// the files to push again.
	Files []RefFile
}

// RefFile is a file of the manifest a ref points to.
type RefFile struct {
	Ref  string // namespace/name:tag
	Path string
}

// MaxScrubFiles bounds the files a scrub names for each corrupt blob.
const MaxScrubFiles = 10

// ScrubReport says what one scrub did.
type ScrubReport struct {
	Blobs    int   // blobs checked
	Bytes    int64 // bytes read to check them
	Corrupt  []CorruptBlob
	Vanished int // listed, then deleted (by GC) before they were checked
	Skipped  int // written before ScrubOptions.Since
	// Partial is set when the scrub did not check every stored blob: its
	// options limited it, or it stopped at Limit.
	Partial bool
	Started time.Time
	Took    time.Duration
}

// Scrub reads every stored blob and checks it against its digest, at the
// rate the options allow (see blobstore.WithPacer). A blob found corrupt
// is quarantined (see blobstore.Quarantiner) so that it is never served
// again, in three steps ordered against uploads and GC:
//
//  1. a blob.quarantined event (digest, size, damaged chunk, verdict,
//     actor) takes the blob out of the live ones (live → deleting), so
//     that no upload records it while its bytes move;
//  2. the bytes move to the blob store's quarantine area;
//  3. a blob.gone event records them gone.
//
// From then on reads of the blob answer not found, find-missing lists it,
// and a push of the files that hold it uploads it again, which repairs it.
// A scrub stopped between the steps leaves the blob deleting, which the
// next GC finishes (deleting the damaged bytes instead of keeping them).
//
// A scrub that checked every blob ends with a scrub.completed event. It
// returns at the first error other than a corrupt or vanished blob, with
// the report so far; the blob store must be a blobstore.Quarantiner.
func (r *Registry) Scrub(ctx context.Context, actor string, opts ScrubOptions) (rep ScrubReport, err error) {
	const op = "scrub"
	q, ok := r.Blobs.(blobstore.Quarantiner)
	if !ok {
		return rep, core.E(core.KindInternal, op, "the blob store (%T) cannot quarantine corrupt blobs", r.Blobs)
	}
	if actor == "" {
		return rep, core.E(core.KindInvalid, op, "no actor: the audit trail must say who scrubbed")
	}
	log := r.transfer().log()
	rep.Started, rep.Partial = time.Now(), opts.Partial()
	defer func() { rep.Took = time.Since(rep.Started) }()
	vctx := ctx
	if p := opts.pacer(); p != nil {
		vctx = blobstore.WithPacer(ctx, p)
	}
	for info, err := range r.Blobs.List(ctx) {
		if err != nil {
			return rep, err
		}
		if !opts.Since.IsZero() && info.ModTime.Before(opts.Since) {
			rep.Skipped++
			continue
		}
		if opts.Limit > 0 && rep.Blobs >= opts.Limit {
			break
		}
		got, err := r.Blobs.Verify(vctx, info.Digest)
		ce, corrupt := blobstore.AsCorrupt(err)
		switch {
		case err == nil:
			rep.Blobs++
			rep.Bytes += got.Size
		case corrupt:
			rep.Blobs++
			rep.Bytes += info.Size
			cb, err := r.quarantine(ctx, actor, q, ce, info.Size)
			if err != nil {
				return rep, err
			}
			rep.Corrupt = append(rep.Corrupt, cb)
			log.LogAttrs(ctx, slog.LevelError, "scrub found a stored blob corrupt and quarantined it; push its files again to repair it",
				slog.String("digest", cb.Digest.String()), slog.Int64("size", cb.Size), slog.Int64("chunk", cb.Chunk),
				slog.String("quarantine", cb.Quarantine), slog.String("error", cb.Reason))
		case core.KindOf(err) == core.KindNotFound:
			rep.Vanished++
		default:
			return rep, err
		}
		if opts.Progress != nil {
			opts.Progress(rep)
		}
	}
	if len(rep.Corrupt) > 0 {
		if err := r.files(ctx, rep.Corrupt); err != nil {
			log.WarnContext(ctx, "finding the files that hold the corrupt blobs", slog.Any("err", err))
		}
	}
	err = r.Meta.RecordScrub(ctx, actor, eventlog.ScrubPayload{Blobs: int64(rep.Blobs), Bytes: rep.Bytes,
		Corrupt: int64(len(rep.Corrupt)), Partial: rep.Partial})
	log.LogAttrs(ctx, slog.LevelInfo, "scrub finished", slog.Int("blobs", rep.Blobs), slog.Int64("bytes", rep.Bytes),
		slog.Int("corrupt", len(rep.Corrupt)), slog.Bool("partial", rep.Partial), slog.Duration("took", time.Since(rep.Started)))
	return rep, err
}

// quarantine takes a corrupt blob out of the store, as Scrub describes.
func (r *Registry) quarantine(ctx context.Context, actor string, q blobstore.Quarantiner, ce *blobstore.CorruptError, size int64) (CorruptBlob, error) {
	cb := CorruptBlob{Digest: ce.Digest, Size: size, Chunk: ce.Chunk, Reason: ce.Error()}
	took, err := r.Meta.QuarantineBlob(ctx, actor, eventlog.QuarantinePayload{Digest: ce.Digest.String(), Size: size,
		Chunk: ce.Chunk, Reason: cb.Reason})
	if err != nil {
		return cb, err
	}
	where, err := q.Quarantine(ctx, ce.Digest)
	switch {
	case err == nil:
		cb.Quarantine = where
	case core.KindOf(err) != core.KindNotFound: // not found: GC took the bytes meanwhile
		return cb, err
	}
	if took {
		return cb, r.Meta.QuarantineDone(ctx, actor, ce.Digest)
	}
	return cb, nil
}

// files fills in which files of which refs hold each corrupt blob, by
// reading the manifest of every ref once: costly on a large store, and
// done only when a scrub found damage.
func (r *Registry) files(ctx context.Context, corrupt []CorruptBlob) error {
	want := map[digest.Digest]int{}
	for i, c := range corrupt {
		want[c.Digest] = i
	}
	refs, err := r.Meta.Refs(ctx, "")
	if err != nil {
		return err
	}
	entries := map[digest.Digest][]manifest.Entry{} // by manifest, its entries that hold a corrupt blob
	for _, ref := range refs {
		held, seen := entries[ref.Manifest]
		if !seen {
			_, m, err := r.Manifest(ctx, ref.Manifest.String())
			if err != nil {
				// Deleted since the refs were listed, say: the others still count.
				entries[ref.Manifest] = nil
				continue
			}
			for _, e := range m.Entries {
				if _, ok := want[e.Digest]; ok && !e.IsSymlink() {
					held = append(held, e)
				}
			}
			entries[ref.Manifest] = held
		}
		for _, e := range held {
			c := &corrupt[want[e.Digest]]
			if len(c.Files) < MaxScrubFiles {
				c.Files = append(c.Files, RefFile{Ref: ref.String(), Path: e.Path})
			}
		}
	}
	return nil
}

// Limiter is a blobstore.Pacer that lets Rate bytes a second through on
// average, and at most Burst at once after a pause. It is safe for
// concurrent use.
type Limiter struct {
	Rate int64
	// Burst is what a pause saves up; Rate (a second's worth) when 0.
	Burst int64
	// Now and Sleep are the clock, time.Now and a timer when nil; tests
	// give a fake one.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	last   time.Time
	tokens float64 // bytes that may go now; negative: owed
}

// Wait implements blobstore.Pacer: the bytes are counted as read, and Wait
// sleeps until the rate has paid for them.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	if l.Rate <= 0 {
		return nil
	}
	rate, burst := float64(l.Rate), float64(l.Burst)
	if burst <= 0 {
		burst = rate
	}
	l.mu.Lock()
	now := l.now()
	if l.last.IsZero() {
		l.tokens = burst
	} else {
		l.tokens = min(burst, l.tokens+now.Sub(l.last).Seconds()*rate)
	}
	l.last = now
	l.tokens -= float64(n)
	owed := l.tokens
	l.mu.Unlock()
	if owed >= 0 {
		return nil
	}
	return l.sleep(ctx, time.Duration(-owed/rate*float64(time.Second)))
}

func (l *Limiter) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Limiter) sleep(ctx context.Context, d time.Duration) error {
	if l.Sleep != nil {
		return l.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
