package eventlog

import (
	"context"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// ScrubPayload is the payload of scrub.completed: what one scrub checked.
type ScrubPayload struct {
	Blobs   int64 `cbor:"blobs"`
	Bytes   int64 `cbor:"bytes"`
	Corrupt int64 `cbor:"corrupt"`
	// Partial is set when the scrub checked only some blobs (a limit, or
	// only those written since a time).
	Partial bool `cbor:"partial,omitempty"`
}

// ScrubSubject is the subject of scrub.completed events.
const ScrubSubject = "scrub"

// RecordScrub appends the audit event of one scrub that ran to its end.
func (s *Store) RecordScrub(ctx context.Context, actor string, p ScrubPayload) error {
	return s.Update(ctx, actor, func(tx *Tx) error {
		_, err := tx.emit(ctx, ScrubCompleted, ScrubSubject, p)
		return err
	})
}

// LastScrub returns when the last scrub of every blob that ended since
// the given time was recorded; ok is false when there was none.
func (s *Store) LastScrub(ctx context.Context, since time.Time) (at time.Time, ok bool, err error) {
	f := AuditFilter{Subject: ScrubSubject, Since: since.UnixMilli(), Limit: MaxPage}
	for {
		evs, err := s.Audit(ctx, f)
		if err != nil {
			return at, ok, err
		}
		for _, e := range evs {
			var p ScrubPayload
			if e.Kind != ScrubCompleted || e.Decode(&p) != nil || p.Partial {
				continue
			}
			at, ok = e.At, true
		}
		if len(evs) < MaxPage {
			return at, ok, nil
		}
		f.After = evs[len(evs)-1].Seq
	}
}

// QuarantinePayload is the payload of blob.quarantined: a blob whose
// stored bytes a scrub found corrupt and moved aside.
type QuarantinePayload struct {
	Digest string `cbor:"digest"`
	// Size is the blob's stored size.
	Size int64 `cbor:"size"`
	// Chunk is the first damaged chunk (of digest.ChunkSize bytes), -1
	// when the damage was found only by the blob's own digest.
	Chunk int64 `cbor:"chunk"`
	// Reason is what the check found, as it said it.
	Reason string `cbor:"reason"`
}

// QuarantineBlob records that the stored bytes of a blob were found corrupt
// and are about to be moved out of the blob store, and reports whether it
// took the blob out of the live ones. A live blob moves to deleting, as in
// GC: from then on no upload records it (they get core.KindConflict and
// upload it again), so the caller can move the bytes without taking bytes
// an upload has just repaired along with a record of them. Once the bytes
// are moved, QuarantineDone records the blob gone, and find-missing lists
// it until a push uploads it again. A blob in another state, or unknown
// to the metadata (bytes no upload recorded), keeps its state: the event
// is the record of the bytes moved.
//
// Every blob.quarantined event carries an actor, so it is in the audit
// trail: who ran the scrub.
func (s *Store) QuarantineBlob(ctx context.Context, actor string, p QuarantinePayload) (bool, error) {
	d, err := digest.Parse(p.Digest)
	if err != nil {
		return false, core.Wrap(core.KindInvalid, "quarantine blob", err)
	}
	if actor == "" {
		return false, core.E(core.KindInvalid, "quarantine blob", "no actor: the audit trail must say who quarantined %s", d)
	}
	took := false
	err = s.Update(ctx, actor, func(tx *Tx) error {
		b, err := tx.q.GetBlob(ctx, d.String())
		if err != nil && core.KindOf(err) != core.KindNotFound {
			return err
		}
		took = err == nil && b.State == string(StateLive)
		_, err = tx.emit(ctx, BlobQuarantined, d.String(), p)
		return err
	})
	return took, err
}

// QuarantineDone records that the bytes of a blob QuarantineBlob took out
// of the live ones have left the blob store: deleting → gone, as a
// blob.gone event. A blob no longer deleting (GC finished it meanwhile)
// is left as it is.
func (s *Store) QuarantineDone(ctx context.Context, actor string, d digest.Digest) error {
	return s.Update(ctx, actor, func(tx *Tx) error {
		b, err := tx.q.GetBlob(ctx, d.String())
		if core.KindOf(err) == core.KindNotFound {
			return nil
		}
		if err != nil || b.State != string(StateDeleting) {
			return err
		}
		_, err = tx.emit(ctx, BlobGone, d.String(), BlobPayload{Digest: d.String()})
		return err
	})
}

// applyQuarantine is blob.quarantined's projection: a live blob moves to
// deleting; any other is left as it is.
func applyQuarantine(ctx context.Context, q Queries, e Event) error {
	var p QuarantinePayload
	if err := e.Decode(&p); err != nil {
		return err
	}
	b, err := q.GetBlob(ctx, p.Digest)
	if core.KindOf(err) == core.KindNotFound {
		return nil
	}
	if err != nil || b.State != string(StateLive) {
		return err
	}
	return q.SetBlobState(ctx, p.Digest, string(StateDeleting), e.At.UnixMilli())
}
