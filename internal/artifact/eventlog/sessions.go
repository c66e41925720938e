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
