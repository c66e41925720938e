package registry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// DefaultLeaseTTL is how long a GC lease lasts unless renewed. Its holder
// renews it every third of that, so a holder stalled for over two thirds
// of it (a suspended laptop) can lose it; the push then notices and
// retries.
const DefaultLeaseTTL = 5 * time.Minute

// MaxLeaseDigests is the most digests one lease covers; a longer list is
// held as several leases.
const MaxLeaseDigests = dataplane.MaxFindMissing

// LeaseTerms says how long a GC lease lasts and how often its holder
// renews it.
type LeaseTerms struct {
	TTL   time.Duration // DefaultLeaseTTL when zero
	Renew time.Duration // TTL/3 when zero
}

func (lt LeaseTerms) ttl() time.Duration {
	if lt.TTL <= 0 {
		return DefaultLeaseTTL
	}
	return lt.TTL
}

func (lt LeaseTerms) renew() time.Duration {
	if lt.Renew <= 0 {
		return lt.ttl() / 3
	}
	return lt.Renew
}

// Leaser keeps digests (blobs and manifests) from garbage collection while
// work that will reference them is in flight: see eventlog.Lease. A
// Registry is the local Leaser; the HTTP client's Catalog is a remote one.
//
// TakeLease leases ds (at most MaxLeaseDigests) for ttl and returns the
// lease's id. RenewLease extends it to ttl from now, or returns a
// core.KindNotFound error (eventlog.ErrLeaseExpired) when it has lapsed.
// ReleaseLease ends it; releasing an ended lease is not an error.
// TakeLease returns ErrNoLeases when the store cannot lease at all.
type Leaser interface {
	TakeLease(ctx context.Context, ds []digest.Digest, ttl time.Duration) (string, error)
	RenewLease(ctx context.Context, id string, ttl time.Duration) error
	ReleaseLease(ctx context.Context, id string) error
}

// ErrNoLeases is returned by a Leaser whose store cannot lease (a server
// older than leases). A push goes on without a lease, relying on its
// bounded retries.
var ErrNoLeases = errors.New("the store does not lease blobs against GC")

// TakeLease implements Leaser.
func (r *Registry) TakeLease(ctx context.Context, ds []digest.Digest, ttl time.Duration) (string, error) {
	return metaLeaser{r.Meta}.TakeLease(ctx, ds, ttl)
}

// RenewLease implements Leaser.
func (r *Registry) RenewLease(ctx context.Context, id string, ttl time.Duration) error {
	return metaLeaser{r.Meta}.RenewLease(ctx, id, ttl)
}

// ReleaseLease implements Leaser.
func (r *Registry) ReleaseLease(ctx context.Context, id string) error {
	return r.Meta.ReleaseLease(ctx, id)
}

type metaLeaser struct{ m *eventlog.Store }

func (l metaLeaser) TakeLease(ctx context.Context, ds []digest.Digest, ttl time.Duration) (string, error) {
	if len(ds) > MaxLeaseDigests {
		return "", core.E(core.KindInvalid, "take lease", "%d digests in one lease; at most %d", len(ds), MaxLeaseDigests)
	}
	lease, err := l.m.TakeLease(ctx, ds, ttl)
	return lease.ID, err
}

func (l metaLeaser) RenewLease(ctx context.Context, id string, ttl time.Duration) error {
	_, err := l.m.RenewLease(ctx, id, ttl)
	return err
}

func (l metaLeaser) ReleaseLease(ctx context.Context, id string) error {
	return l.m.ReleaseLease(ctx, id)
}

// hold is a set of leases over some digests, renewed in the background
// until released.
type hold struct {
	l      Leaser
	terms  LeaseTerms
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	batches [][]digest.Digest
	ids     []string // one lease per batch
}

// holdLease leases ds, as several leases when they are many, and renews
// them until release. A lease that lapsed anyway (the holder stalled) is
// taken again; what GC took in between shows up as a failed commit, which
// a push retries.
func holdLease(ctx context.Context, l Leaser, ds []digest.Digest, terms LeaseTerms, log *slog.Logger) (*hold, error) {
	h := &hold{l: l, terms: terms, log: log, done: make(chan struct{})}
	for start := 0; start < len(ds); start += MaxLeaseDigests {
		batch := ds[start:min(len(ds), start+MaxLeaseDigests)]
		id, err := l.TakeLease(ctx, batch, terms.ttl())
		if err != nil {
			h.releaseAll(ctx)
			return nil, err
		}
		h.batches = append(h.batches, batch)
		h.ids = append(h.ids, id)
	}
	rctx, cancel := context.WithCancel(ctx)
	h.cancel = cancel
	go h.renew(rctx)
	return h, nil
}

func (h *hold) renew(ctx context.Context) {
	defer close(h.done)
	t := time.NewTicker(h.terms.renew())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		for i, id := range h.ids {
			err := h.l.RenewLease(ctx, id, h.terms.ttl())
			if core.KindOf(err) == core.KindNotFound {
				h.log.WarnContext(ctx, "a GC lease lapsed before it was renewed; taking it again", slog.String("lease", id))
				var nid string
				if nid, err = h.l.TakeLease(ctx, h.batches[i], h.terms.ttl()); err == nil {
					h.ids[i] = nid
				}
			}
			if err != nil && ctx.Err() == nil {
				// The next tick tries again, well before the lease lapses.
				h.log.WarnContext(ctx, "renewing a GC lease failed", slog.String("lease", id), slog.Any("err", err))
			}
		}
		h.mu.Unlock()
	}
}

// release stops the renewals and ends the leases.
func (h *hold) release(ctx context.Context) {
	h.cancel()
	<-h.done
	h.releaseAll(ctx)
}

func (h *hold) releaseAll(ctx context.Context) {
	// Even when ctx has ended: a lease left behind only expires later.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range h.ids {
		if err := h.l.ReleaseLease(ctx, id); err != nil {
			h.log.WarnContext(ctx, "releasing a GC lease failed; it expires on its own", slog.String("lease", id), slog.Any("err", err))
		}
	}
	h.ids = nil
}

// leasedKey marks a context whose caller already holds a lease on some
// digests, so that LeasedUploads does not take a second one.
type leasedKey struct{}

func withLeased(ctx context.Context, ds map[digest.Digest]bool) context.Context {
	return context.WithValue(ctx, leasedKey{}, ds)
}

func isLeased(ctx context.Context, d digest.Digest) bool {
	ds, _ := ctx.Value(leasedKey{}).(map[digest.Digest]bool)
	return ds[d]
}

// LeasedUploads is a data plane whose uploads of a known digest hold a GC
// lease on it for as long as they run, renewed while the bytes arrive. So
// GC never takes bytes an upload has stored but not recorded yet, however
// long the upload took and whatever age the blob store gives them (an S3
// multipart object's LastModified is the start of its upload). A push that
// holds a lease on its digests already passes it down in its context, and
// no second lease is taken.
type LeasedUploads struct {
	dataplane.DataPlane
	Leaser Leaser // a Registry over the same metadata
	Terms  LeaseTerms
	Log    *slog.Logger
}

// Upload implements dataplane.DataPlane.
func (u *LeasedUploads) Upload(ctx context.Context, actor string, alg digest.Algorithm, expected digest.Digest, r io.Reader, size int64) (dataplane.Blob, error) {
	if expected.IsZero() {
		return u.DataPlane.Upload(ctx, actor, alg, expected, r, size)
	}
	if !isLeased(ctx, expected) {
		h, err := holdLease(ctx, u.Leaser, []digest.Digest{expected}, u.Terms, u.log())
		if err != nil {
			return dataplane.Blob{}, err
		}
		defer h.release(ctx)
	}
	// The lease keeps GC off the blob from now on, but GC may have marked
	// it before: its bytes, still stored, make the upload skip writing,
	// and then they are gone (not found) or the blob is being deleted (a
	// conflict). Offer the body again, as long as none of it was read.
	ur := &unread{r: r}
	var b dataplane.Blob
	err := againWhileCollected(ctx, u.log(), func() error {
		var err error
		b, err = u.DataPlane.Upload(ctx, actor, alg, expected, ur, size)
		if ur.read {
			return permanent{err}
		}
		return err
	})
	return b, err
}

// Finish implements dataplane.DataPlane.
func (u *LeasedUploads) Finish(ctx context.Context, actor, id string, d digest.Digest) (dataplane.Blob, error) {
	if d.IsZero() {
		return u.DataPlane.Finish(ctx, actor, id, d)
	}
	if !isLeased(ctx, d) {
		h, err := holdLease(ctx, u.Leaser, []digest.Digest{d}, u.Terms, u.log())
		if err != nil {
			return dataplane.Blob{}, err
		}
		defer h.release(ctx)
	}
	// As in Upload; a Finish that fails so keeps its staged bytes.
	var b dataplane.Blob
	err := againWhileCollected(ctx, u.log(), func() error {
		var err error
		b, err = u.DataPlane.Finish(ctx, actor, id, d)
		return err
	})
	return b, err
}

// unread tells whether a reader was read from at all.
type unread struct {
	r    io.Reader
	read bool
}

func (u *unread) Read(p []byte) (int, error) {
	u.read = true
	return u.r.Read(p)
}

// permanent is an error againWhileCollected returns at once.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// collectedAttempts bounds how often an upload is offered again while GC
// deletes an earlier copy of its blob: GC finishes with a blob within
// moments, or a later GC finishes what a crashed one left.
const collectedAttempts = 8

// againWhileCollected runs fn until it succeeds, fails otherwise than with
// core.KindConflict or core.KindNotFound (the marks of a blob GC is
// deleting), returns a permanent error, or collectedAttempts have passed;
// it waits a little longer each time.
func againWhileCollected(ctx context.Context, log *slog.Logger, fn func() error) error {
	wait := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		var p permanent
		if errors.As(err, &p) {
			if p.err == nil {
				return nil
			}
			return p.err
		}
		k := core.KindOf(err)
		if err == nil || (k != core.KindConflict && k != core.KindNotFound) || attempt >= collectedAttempts {
			return err
		}
		log.DebugContext(ctx, reofferMessage, slog.Any("err", err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return &core.Error{Kind: core.KindCanceled, Op: "upload", Err: ctx.Err()}
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// reofferMessage is logged each time an upload is offered again.
const reofferMessage = "blob is being garbage-collected; offering it again"

func (u *LeasedUploads) log() *slog.Logger {
	if u.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return u.Log
}
