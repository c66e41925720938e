package eventlog

import (
	"context"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/google/uuid"
)

// Session is a resumable upload in progress. Sessions are transient
// data-plane state: they are not events, but GC never deletes a blob an
// active session expects.
type Session struct {
	ID        string
	Algorithm digest.Algorithm
	Expected  digest.Digest // zero when the client did not announce it
	Received  int64         // bytes received so far: the next offset
	CreatedAt time.Time
	ExpiresAt time.Time
}

func sessionFromRow(r SessionRow) (Session, error) {
	s := Session{ID: r.ID, Algorithm: digest.Algorithm(r.Algorithm), Received: r.Received,
		CreatedAt: fromMS(r.CreatedAt), ExpiresAt: fromMS(r.ExpiresAt)}
	if r.ExpectedDigest != "" {
		d, err := digest.Parse(r.ExpectedDigest)
		if err != nil {
			return Session{}, err
		}
		s.Expected = d
	}
	return s, nil
}

// CreateSession opens an upload session that expires after ttl without progress.
func (s *Store) CreateSession(ctx context.Context, alg digest.Algorithm, expected digest.Digest, ttl time.Duration) (Session, error) {
	now := s.Now()
	row := SessionRow{ID: uuid.Must(uuid.NewV7()).String(), Algorithm: string(alg), Received: 0,
		CreatedAt: now.UnixMilli(), ExpiresAt: now.Add(ttl).UnixMilli()}
	if !expected.IsZero() {
		row.ExpectedDigest = expected.String()
	}
	err := s.drv.Write(ctx, func(q Queries) error { return q.InsertSession(ctx, row) })
	if err != nil {
		return Session{}, err
	}
	return sessionFromRow(row)
}

// Session returns an upload session (core.KindNotFound when it does not
// exist or has expired).
func (s *Store) Session(ctx context.Context, id string) (Session, error) {
	r, err := s.drv.Read().GetSession(ctx, id)
	if err != nil {
		if core.KindOf(err) == core.KindNotFound {
			return Session{}, notFound("upload session", "upload session %s does not exist or has ended", id)
		}
		return Session{}, err
	}
	if r.ExpiresAt < s.Now().UnixMilli() {
		return Session{}, notFound("upload session", "upload session %s has expired", id)
	}
	return sessionFromRow(r)
}

// AdvanceSession moves a session's offset from → to and extends its expiry;
// a concurrent writer that moved it first gets core.KindConflict.
func (s *Store) AdvanceSession(ctx context.Context, id string, from, to int64, ttl time.Duration) error {
	return s.drv.Write(ctx, func(q Queries) error {
		n, err := q.SetSessionReceived(ctx, id, from, to, s.Now().Add(ttl).UnixMilli())
		if err != nil {
			return err
		}
		if n != 1 {
			return core.E(core.KindConflict, "upload session", "session %s is no longer at offset %d", id, from)
		}
		return nil
	})
}

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.drv.Write(ctx, func(q Queries) error { return q.DeleteSession(ctx, id) })
}

// ExpiredSessions lists sessions past their expiry, for cleanup.
func (s *Store) ExpiredSessions(ctx context.Context) ([]Session, error) {
	rows, err := s.drv.Read().ListExpiredSessions(ctx, s.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	out := make([]Session, 0, len(rows))
	for _, r := range rows {
		sess, err := sessionFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	return out, nil
}

// Lease keeps digests (the blobs a push will reference, its manifest, a
// blob an upload is storing) from garbage collection while the work that
// will reference them is alive. GC never marks a leased blob deleting,
// never adopts leased bytes as an orphan and never deletes a leased
// manifest, however short its grace window. The holder renews the lease
// before it expires and releases it when done; a holder that dies leaves a
// lease that simply expires. Leases are not events.
type Lease struct {
	ID        string
	ExpiresAt time.Time
}

// ErrLeaseExpired is returned by RenewLease when the lease lapsed (or was
// released) before it was renewed. GC may have taken what it covered in
// the meantime: take a new lease, and expect a commit to name a blob to
// upload again.
var ErrLeaseExpired = core.E(core.KindNotFound, "renew lease", "the lease expired before it was renewed; take a new one")

// TakeLease leases ds for ttl. It runs in a write transaction, so it
// serializes with GC: a blob live when TakeLease returns stays live until
// the lease ends, and one GC had already marked is reported missing by
// Missing and must be uploaded again.
func (s *Store) TakeLease(ctx context.Context, ds []digest.Digest, ttl time.Duration) (Lease, error) {
	if len(ds) == 0 {
		return Lease{}, core.E(core.KindInvalid, "take lease", "a lease needs at least one digest")
	}
	if ttl <= 0 {
		return Lease{}, core.E(core.KindInvalid, "take lease", "lease duration %s is not positive", ttl)
	}
	ids := make([]string, 0, len(ds))
	seen := make(map[digest.Digest]bool, len(ds))
	for _, d := range ds {
		if d.IsZero() {
			return Lease{}, core.E(core.KindInvalid, "take lease", "a leased digest is empty")
		}
		if !seen[d] {
			seen[d] = true
			ids = append(ids, d.String())
		}
	}
	l := Lease{ID: uuid.Must(uuid.NewV7()).String(), ExpiresAt: s.Now().Add(ttl)}
	err := s.drv.Write(ctx, func(q Queries) error { return q.InsertLease(ctx, l.ID, ids, l.ExpiresAt.UnixMilli()) })
	if err != nil {
		return Lease{}, err
	}
	return l, nil
}

// RenewLease moves a lease's expiry to ttl from now and returns it;
// ErrLeaseExpired when the lease has already lapsed or was released.
func (s *Store) RenewLease(ctx context.Context, id string, ttl time.Duration) (time.Time, error) {
	if ttl <= 0 {
		return time.Time{}, core.E(core.KindInvalid, "renew lease", "lease duration %s is not positive", ttl)
	}
	now := s.Now()
	until := now.Add(ttl)
	err := s.drv.Write(ctx, func(q Queries) error {
		n, err := q.RenewLease(ctx, id, now.UnixMilli(), until.UnixMilli())
		if err == nil && n == 0 {
			return ErrLeaseExpired
		}
		return err
	})
	if err != nil {
		return time.Time{}, err
	}
	return until, nil
}

// ReleaseLease ends a lease; releasing one that has ended is not an error.
func (s *Store) ReleaseLease(ctx context.Context, id string) error {
	return s.drv.Write(ctx, func(q Queries) error { return q.DeleteLease(ctx, id) })
}

// ExpireLeases deletes the rows of lapsed leases and returns how many.
func (s *Store) ExpireLeases(ctx context.Context) (int64, error) {
	var n int64
	err := s.drv.Write(ctx, func(q Queries) error {
		var err error
		n, err = q.DeleteExpiredLeases(ctx, s.Now().UnixMilli())
		return err
	})
	return n, err
}

// Held reports whether an active lease or upload session holds d now.
func (s *Store) Held(ctx context.Context, d digest.Digest) (bool, error) {
	return held(ctx, s.drv.Read(), d.String(), s.Now())
}

// leased is Held inside a transaction: GC checks it in the transaction
// that would take d.
func (tx *Tx) leased(ctx context.Context, d string) (bool, error) {
	return held(ctx, tx.q, d, tx.now)
}

func held(ctx context.Context, q Queries, d string, now time.Time) (bool, error) {
	n, err := q.CountActiveLeasesFor(ctx, d, now.UnixMilli())
	if err != nil || n > 0 {
		return n > 0, err
	}
	n, err = q.CountActiveSessionsFor(ctx, d, now.UnixMilli())
	return n > 0, err
}
