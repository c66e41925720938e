package eventlog

import (
	"context"
	"fmt"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// Store is the metadata store: commands append events, and each event's
// projection is applied in the same transaction.
type Store struct {
	drv Driver
	now func() time.Time
	cp  CheckpointConfig
}

// Option configures a Store.
type Option func(*Store)

// WithClock replaces time.Now, for tests of grace windows and retention.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New wraps an engine driver.
func New(drv Driver, opts ...Option) *Store {
	s := &Store{drv: drv, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Close closes the driver.
func (s *Store) Close() error { return s.drv.Close() }

// Now is the store clock, at the stored millisecond precision.
func (s *Store) Now() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Tx is one write transaction of the metadata store.
type Tx struct {
	q     Queries
	actor string
	now   time.Time
}

// Update runs fn in one write transaction; events fn emits carry actor.
func (s *Store) Update(ctx context.Context, actor string, fn func(*Tx) error) error {
	return s.drv.Write(ctx, func(q Queries) error {
		return fn(&Tx{q: q, actor: actor, now: s.Now()})
	})
}

// emit appends one event after the current head and applies its projection.
func (tx *Tx) emit(ctx context.Context, kind Kind, subject string, payload any) (Event, error) {
	body, err := encode(payload)
	if err != nil {
		return Event{}, err
	}
	head, err := tx.q.GetHead(ctx)
	if err != nil {
		return Event{}, fmt.Errorf("read log head: %w", err)
	}
	e := Event{
		Seq: head.Seq + 1, At: tx.now, Kind: kind, Subject: subject, Actor: tx.actor,
		Payload: body, PrevHash: head.Hash,
	}
	e.Hash = chainHash(e.Seq, e.At.UnixMilli(), e.Kind, e.Subject, e.Actor, e.Payload, e.PrevHash)
	if err := tx.q.InsertEvent(ctx, e.row()); err != nil {
		return Event{}, err
	}
	if err := tx.q.SetHead(ctx, Head{Seq: e.Seq, Hash: e.Hash}); err != nil {
		return Event{}, err
	}
	if err := apply(ctx, tx.q, e); err != nil {
		return Event{}, fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Kind, err)
	}
	return e, nil
}

// Events returns up to limit events after sequence number after.
func (s *Store) Events(ctx context.Context, after, limit int64) ([]Event, error) {
	limit = clampLimit(limit)
	rows, err := s.drv.Read().ListEvents(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = eventFromRow(r)
	}
	return out, nil
}

// Audit returns events that carry an actor, filtered by f. A subject
// naming a ref without its tag means the ref's :latest (AuditSubject).
func (s *Store) Audit(ctx context.Context, f AuditFilter) ([]Event, error) {
	f.Limit = clampLimit(f.Limit)
	if f.Subject != "" {
		f.Subject = AuditSubject(f.Subject)
	}
	rows, err := s.drv.Read().ListAudit(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = eventFromRow(r)
	}
	return out, nil
}

// MaxPage is the most events one read returns.
const MaxPage = 10000

// clampLimit turns an unset limit into 1000 and caps it at MaxPage.
func clampLimit(n int64) int64 {
	switch {
	case n <= 0:
		return 1000
	case n > MaxPage:
		return MaxPage
	}
	return n
}

// Head returns the last event's sequence and hash (0 and "" when empty).
func (s *Store) Head(ctx context.Context) (Head, error) { return s.drv.Read().GetHead(ctx) }

// NamespaceBytes reports, per ref namespace, the bytes of the distinct
// blobs its refs reach (a blob shared by two namespaces counts in both).
func (s *Store) NamespaceBytes(ctx context.Context) (map[string]int64, error) {
	return s.drv.Read().NamespaceBytes(ctx)
}

func notFound(op, format string, args ...any) error {
	return core.E(core.KindNotFound, op, format, args...)
}
