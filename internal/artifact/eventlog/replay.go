package eventlog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/deltaci/deltaci/internal/core"
)

// ReplayReport is the result of rebuilding the projections from the log.
type ReplayReport struct {
	Events      int64  // events replayed
	Head        Head   // the last event
	StateDigest string // digest of the rebuilt projections
	LiveDigest  string // digest of the live projections
}

// Match reports whether the rebuilt state equals the live state.
func (r ReplayReport) Match() bool { return r.StateDigest == r.LiveDigest }

const replayBatch = 1000

// Verify walks the whole log and checks the hash chain and the head. It
// returns a core.KindConflict error naming the first altered event.
func (s *Store) Verify(ctx context.Context) (Head, error) {
	return s.walk(ctx, nil)
}

// walk checks the chain over every event in order, calling fn with each
// verified batch.
func (s *Store) walk(ctx context.Context, fn func([]Event) error) (Head, error) {
	prev := Head{}
	for {
		rows, err := s.drv.Read().ListEvents(ctx, prev.Seq, replayBatch)
		if err != nil {
			return prev, err
		}
		batch := make([]Event, 0, len(rows))
		for _, r := range rows {
			if err := verifyLink(prev, r); err != nil {
				return prev, err
			}
			batch = append(batch, eventFromRow(r))
			prev = Head{Seq: r.Seq, Hash: r.Hash}
		}
		if fn != nil && len(batch) > 0 {
			if err := fn(batch); err != nil {
				return prev, err
			}
		}
		if len(rows) < replayBatch {
			break
		}
	}
	head, err := s.drv.Read().GetHead(ctx)
	if err != nil {
		return prev, err
	}
	if head != prev {
		return prev, core.E(core.KindConflict, "verify log", "log head says event %d (%s) but the log ends at event %d (%s): events were removed",
			head.Seq, short(head.Hash), prev.Seq, short(prev.Hash))
	}
	return prev, nil
}

// Replay verifies the chain, rebuilds every projection from the log into a
// scratch database of the same engine, and compares its state digest with
// the live one. A mismatch means a projection row was changed outside the
// log.
func (s *Store) Replay(ctx context.Context) (ReplayReport, error) {
	scratch, drop, err := s.drv.Scratch(ctx)
	if err != nil {
		return ReplayReport{}, fmt.Errorf("replay: scratch database: %w", err)
	}
	defer drop()
	var rep ReplayReport
	// One scratch transaction per batch: replay is bounded by applying, not
	// by committing.
	head, err := s.walk(ctx, func(batch []Event) error {
		rep.Events += int64(len(batch))
		return scratch.Write(ctx, func(q Queries) error {
			for _, e := range batch {
				if err := q.InsertEvent(ctx, e.row()); err != nil {
					return err
				}
				if err := apply(ctx, q, e); err != nil {
					return fmt.Errorf("replay event %d (%s %s): %w", e.Seq, e.Kind, e.Subject, err)
				}
			}
			last := batch[len(batch)-1]
			return q.SetHead(ctx, Head{Seq: last.Seq, Hash: last.Hash})
		})
	})
	// On a broken chain, the last event that checked out.
	rep.Head = head
	if err != nil {
		return rep, err
	}
	if rep.StateDigest, err = StateDigest(ctx, scratch.Read()); err != nil {
		return rep, err
	}
	if rep.LiveDigest, err = StateDigest(ctx, s.drv.Read()); err != nil {
		return rep, err
	}
	return rep, nil
}

// StateDigest is the SHA-256 of the canonical CBOR of every projection
// table, rows in key order: two databases with equal state digests hold the
// same blobs, manifests, references, refs and policies.
func StateDigest(ctx context.Context, q Queries) (string, error) {
	blobs, err := q.ListBlobs(ctx)
	if err != nil {
		return "", err
	}
	manifests, err := q.ListManifests(ctx)
	if err != nil {
		return "", err
	}
	links, err := q.ListManifestBlobs(ctx)
	if err != nil {
		return "", err
	}
	refs, err := q.ListRefs(ctx, "")
	if err != nil {
		return "", err
	}
	policies, err := q.ListPolicies(ctx, "")
	if err != nil {
		return "", err
	}
	b, err := encode(map[string]any{
		"blobs": blobs, "manifests": manifests, "manifest_blobs": links, "refs": refs, "policies": policies,
	})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
