package eventlog

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/deltaci/deltaci/internal/core"
)

// ReplayReport is the result of rebuilding the projections from the log.
type ReplayReport struct {
	Events      int64  // events replayed
	Head        Head   // the last event
	StateDigest string // digest of the rebuilt projections
	LiveDigest  string // digest of the live projections
	// Checkpoints counts the distinct checkpoints the log was checked
	// against: the stored ones, the store's checkpoint file and those
	// given.
	Checkpoints int64
	// LatestCheckpoint is the one of them with the highest seq (Seq 0
	// when there was none).
	LatestCheckpoint Checkpoint
	// SignersChecked says whether the checkpoints' keys were checked
	// against trusted keys; otherwise only that each signature matches the
	// key it carries.
	SignersChecked bool
}

// Match reports whether the rebuilt state equals the live state.
func (r ReplayReport) Match() bool { return r.StateDigest == r.LiveDigest }

// VerifyOptions are what a verification checks beyond the chain and the
// stored checkpoints.
type VerifyOptions struct {
	// ExpectHead, when set, is where the log must end: a shorter log, a
	// longer one or another hash fails.
	ExpectHead *Head
	// Checkpoints were kept outside the database (the checkpoint
	// command's output): the log must reach each with the same hash.
	Checkpoints []Checkpoint
	// TrustedKeys are public keys whose checkpoints are genuine, besides
	// the store's own.
	TrustedKeys []ed25519.PublicKey
}

const replayBatch = 1000

// Verify walks the whole log and checks the hash chain, the head and every
// checkpoint the store keeps. It returns a core.KindConflict error naming
// the first altered event, or the checkpoint the log does not reach.
func (s *Store) Verify(ctx context.Context) (Head, error) { return s.VerifyWith(ctx, VerifyOptions{}) }

// VerifyWith is Verify, checking what opts adds too: an expected head,
// checkpoints kept elsewhere.
func (s *Store) VerifyWith(ctx context.Context, opts VerifyOptions) (Head, error) {
	var rep ReplayReport
	return s.walk(ctx, opts, &rep, nil)
}

// target is a (seq, hash) the log must reach, and who says so.
type target struct {
	Head
	what     string
	expected bool // the expected head, not a checkpoint
}

// targets verifies every checkpoint the walk must check, and returns them
// by seq.
func (s *Store) targets(ctx context.Context, opts VerifyOptions, rep *ReplayReport) ([]target, error) {
	trusted := s.trusted(opts.TrustedKeys)
	rep.SignersChecked = len(trusted) > 0
	var cps []Checkpoint
	for after := int64(0); ; {
		rows, err := s.drv.Read().ListCheckpoints(ctx, after, replayBatch)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			cps = append(cps, checkpointFromRow(r))
			after = r.Seq
		}
		if len(rows) < replayBatch {
			break
		}
	}
	file, ok, err := s.FileCheckpoint()
	if err != nil {
		return nil, err
	}
	if ok {
		cps = append(cps, file)
	}
	cps = append(cps, opts.Checkpoints...)
	var out []target
	seen := map[string]bool{} // the file holds a copy of a stored one
	for _, c := range cps {
		if err := c.Verify(trusted); err != nil {
			return nil, err
		}
		if seen[string(c.Signature)] {
			continue
		}
		seen[string(c.Signature)] = true
		out = append(out, target{Head: c.Head(), what: c.String()})
		if c.Seq > rep.LatestCheckpoint.Seq {
			rep.LatestCheckpoint = c
		}
	}
	rep.Checkpoints = int64(len(seen))
	if h := opts.ExpectHead; h != nil {
		out = append(out, target{Head: *h, what: "the expected head", expected: true})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// walk checks the chain over every event in order, calling fn with each
// verified batch, then the head, the checkpoints and the expected head.
func (s *Store) walk(ctx context.Context, opts VerifyOptions, rep *ReplayReport, fn func([]Event) error) (Head, error) {
	targets, err := s.targets(ctx, opts, rep)
	if err != nil {
		return Head{}, err
	}
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
			for len(targets) > 0 && targets[0].Seq == r.Seq {
				if t := targets[0]; t.Hash != r.Hash {
					return prev, core.E(core.KindConflict, "verify log", "event %d's hash is %s, but %s says %s: the log was rewritten",
						r.Seq, short(r.Hash), t.what, short(t.Hash))
				}
				targets = targets[1:]
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
	if len(targets) > 0 {
		t := targets[0]
		if t.expected {
			return prev, core.E(core.KindConflict, "verify log", "the log ends at event %d (%s), before the expected head, event %d (%s): events were removed from its end",
				prev.Seq, short(prev.Hash), t.Seq, short(t.Hash))
		}
		return prev, core.E(core.KindConflict, "verify log", "the log ends at event %d (%s), but %s reached event %d (%s): events were removed from its end and the head rolled back",
			prev.Seq, short(prev.Hash), t.what, t.Seq, short(t.Hash))
	}
	if h := opts.ExpectHead; h != nil && prev.Seq > h.Seq {
		// Its hash at h.Seq matched above: the log grew since.
		return prev, core.E(core.KindConflict, "verify log", "the log goes on past the expected head, event %d, to event %d (%s); event %d matches, so the log only grew since",
			h.Seq, prev.Seq, short(prev.Hash), h.Seq)
	}
	return prev, nil
}

// Replay verifies the chain and the checkpoints as Verify does, rebuilds
// every projection from the log into a scratch database of the same
// engine, and compares its state digest with the live one. A mismatch
// means a projection row was changed outside the log.
func (s *Store) Replay(ctx context.Context) (ReplayReport, error) {
	return s.ReplayWith(ctx, VerifyOptions{})
}

// ReplayWith is Replay, checking what opts adds too, as VerifyWith does.
func (s *Store) ReplayWith(ctx context.Context, opts VerifyOptions) (ReplayReport, error) {
	scratch, drop, err := s.drv.Scratch(ctx)
	if err != nil {
		return ReplayReport{}, fmt.Errorf("replay: scratch database: %w", err)
	}
	defer drop()
	var rep ReplayReport
	// One scratch transaction per batch: replay is bounded by applying, not
	// by committing.
	head, err := s.walk(ctx, opts, &rep, func(batch []Event) error {
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
