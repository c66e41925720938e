package eventlog

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/deltaci/deltaci/internal/core"
)

// CheckpointConfig says how a store signs its checkpoints and which
// signers it trusts.
//
// Checkpoints are kept in two places. Every one is a row of
// store_checkpoints, append-only like the log, where replay --verify checks
// them all. The newest one is also written to File, outside the database:
// someone who can rewrite the database (or restores an old backup of it)
// can remove the rows of the events and of their checkpoints together,
// but not this file, which lives beside the signing key.
type CheckpointConfig struct {
	// Key signs new checkpoints. Nil for a store that only verifies.
	Key ed25519.PrivateKey
	// Trusted are public keys whose checkpoints are genuine besides Key's:
	// the keys of earlier rotations. When neither Key nor Trusted is set,
	// a signature is checked against the key the checkpoint carries, which
	// shows it was not altered but not who made it.
	Trusted []ed25519.PublicKey
	// File, when set, holds a copy of the newest checkpoint: written after
	// each new one, and checked by Checkpoint and every verification.
	File string
}

// WithCheckpoints sets how the store signs and checks checkpoints.
func WithCheckpoints(c CheckpointConfig) Option { return func(s *Store) { s.cp = c } }

// UseCheckpoints sets how the store signs and checks checkpoints, as
// WithCheckpoints does for a new store. Call it before the store is shared.
func (s *Store) UseCheckpoints(c CheckpointConfig) { s.cp = c }

// CanCheckpoint reports whether the store has a key to sign checkpoints.
func (s *Store) CanCheckpoint() bool { return s.cp.Key != nil }

// trusted is the store's trusted keys plus extra; empty when none is known.
func (s *Store) trusted(extra []ed25519.PublicKey) []ed25519.PublicKey {
	var out []ed25519.PublicKey
	if s.cp.Key != nil {
		out = append(out, s.cp.Key.Public().(ed25519.PublicKey))
	}
	out = append(out, s.cp.Trusted...)
	return append(out, extra...)
}

// LatestCheckpoint returns the newest stored checkpoint, or an error of
// kind core.KindNotFound when none was made yet.
func (s *Store) LatestCheckpoint(ctx context.Context) (Checkpoint, error) {
	r, err := s.drv.Read().LatestCheckpoint(ctx)
	if err != nil {
		if core.KindOf(err) == core.KindNotFound {
			return Checkpoint{}, notFound("latest checkpoint", "no checkpoint was made yet: a server makes one once the log has events")
		}
		return Checkpoint{}, err
	}
	return checkpointFromRow(r), nil
}

// Checkpoints returns up to limit stored checkpoints after event number
// after, oldest first.
func (s *Store) Checkpoints(ctx context.Context, after, limit int64) ([]Checkpoint, error) {
	rows, err := s.drv.Read().ListCheckpoints(ctx, after, clampLimit(limit))
	if err != nil {
		return nil, err
	}
	out := make([]Checkpoint, len(rows))
	for i, r := range rows {
		out[i] = checkpointFromRow(r)
	}
	return out, nil
}

// FileCheckpoint reads the checkpoint kept in the configured file. It
// returns ok false when no file is configured or none was written yet.
func (s *Store) FileCheckpoint() (c Checkpoint, ok bool, err error) {
	if s.cp.File == "" {
		return Checkpoint{}, false, nil
	}
	b, err := os.ReadFile(s.cp.File)
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, core.Wrap(core.KindUnavailable, "read checkpoint file", err)
	}
	c, err = ParseCheckpoint(b)
	if err != nil {
		return Checkpoint{}, false, core.E(core.KindConflict, "read checkpoint file", "%s: %v", s.cp.File, err)
	}
	return c, true, nil
}

// Checkpoint signs the log's head with the configured key and stores the
// checkpoint, when the head is past the newest stored one. Before signing
// it checks that the log still reaches the newest stored checkpoint and
// the one in the file, and the chain of every event since, so it never
// vouches for a log that was cut back or rewritten. It returns the newest
// checkpoint and whether it made it.
//
// Errors: core.KindInvalid without a key; core.KindConflict when a
// checkpoint does not verify, the log does not reach it, or the chain is
// broken since.
func (s *Store) Checkpoint(ctx context.Context) (Checkpoint, bool, error) {
	const op = "checkpoint"
	if s.cp.Key == nil {
		return Checkpoint{}, false, core.E(core.KindInvalid, op, "no checkpoint key: this store only verifies")
	}
	trusted := s.trusted(nil)
	latest, err := s.LatestCheckpoint(ctx)
	if err != nil && core.KindOf(err) != core.KindNotFound {
		return Checkpoint{}, false, err
	}
	base := Head{}
	var known []Checkpoint
	if latest.Seq > 0 {
		known = append(known, latest)
	}
	file, ok, err := s.FileCheckpoint()
	if err != nil {
		return Checkpoint{}, false, err
	}
	if ok {
		known = append(known, file)
	}
	for _, c := range known {
		if err := c.Verify(trusted); err != nil {
			return Checkpoint{}, false, err
		}
		if err := s.reaches(ctx, c); err != nil {
			return Checkpoint{}, false, err
		}
		if c.Seq > base.Seq {
			base = c.Head()
		}
	}
	head, err := s.drv.Read().GetHead(ctx)
	if err != nil {
		return Checkpoint{}, false, err
	}
	if head.Seq < base.Seq {
		return Checkpoint{}, false, core.E(core.KindConflict, "verify log", "the log's head says event %d (%s), but a checkpoint reached event %d (%s): the head was rolled back",
			head.Seq, short(head.Hash), base.Seq, short(base.Hash))
	}
	if head.Seq <= latest.Seq {
		return latest, false, nil
	}
	if err := s.walkRange(ctx, base, head); err != nil {
		return Checkpoint{}, false, err
	}
	cp := SignCheckpoint(s.cp.Key, head, s.Now())
	made := true
	err = s.drv.Write(ctx, func(q Queries) error {
		// Another signer (a leader that lost its lock a moment ago) may
		// have checkpointed this head already.
		cur, err := q.LatestCheckpoint(ctx)
		if err == nil && cur.Seq >= cp.Seq {
			cp, made = checkpointFromRow(cur), false
			return nil
		}
		if err != nil && core.KindOf(err) != core.KindNotFound {
			return err
		}
		return q.InsertCheckpoint(ctx, cp.row())
	})
	if err != nil {
		return Checkpoint{}, false, err
	}
	if cp.Seq > file.Seq {
		if err := s.writeCheckpointFile(cp); err != nil {
			return cp, made, err
		}
	}
	return cp, made, nil
}

// reaches checks that event c.Seq is in the log with hash c.Hash.
func (s *Store) reaches(ctx context.Context, c Checkpoint) error {
	rows, err := s.drv.Read().ListEvents(ctx, c.Seq-1, 1)
	if err != nil {
		return err
	}
	if len(rows) == 0 || rows[0].Seq != c.Seq {
		head, err := s.drv.Read().GetHead(ctx)
		if err != nil {
			return err
		}
		return core.E(core.KindConflict, "verify log", "the log ends at event %d (%s), but %s reached event %d (%s): events were removed from its end and the head rolled back",
			head.Seq, short(head.Hash), c, c.Seq, short(c.Hash))
	}
	if rows[0].Hash != c.Hash {
		return core.E(core.KindConflict, "verify log", "event %d's hash is %s, but %s says %s: the log was rewritten",
			c.Seq, short(rows[0].Hash), c, short(c.Hash))
	}
	return nil
}

// walkRange checks the chain from event from (already verified) up to
// event to.
func (s *Store) walkRange(ctx context.Context, from, to Head) error {
	prev := from
	for prev.Seq < to.Seq {
		rows, err := s.drv.Read().ListEvents(ctx, prev.Seq, min(replayBatch, to.Seq-prev.Seq))
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return core.E(core.KindConflict, "verify log", "the log ends at event %d, before its head %d: events were removed", prev.Seq, to.Seq)
		}
		for _, r := range rows {
			if err := verifyLink(prev, r); err != nil {
				return err
			}
			prev = Head{Seq: r.Seq, Hash: r.Hash}
		}
	}
	if prev != to {
		return core.E(core.KindConflict, "verify log", "event %d's hash is %s, but the head says %s: the log was rewritten", to.Seq, short(prev.Hash), short(to.Hash))
	}
	return nil
}

// writeCheckpointFile keeps c in the configured file, if any.
func (s *Store) writeCheckpointFile(c Checkpoint) error {
	if s.cp.File == "" {
		return nil
	}
	return WriteCheckpointFile(s.cp.File, c)
}

// WriteCheckpointFile replaces the file at path with c in its exported
// form, atomically: a reader sees the old checkpoint or the new one, never
// a mix, even after a crash.
func WriteCheckpointFile(path string, c Checkpoint) error {
	const op = "write checkpoint file"
	b, err := c.MarshalJSON()
	if err != nil {
		return core.Wrap(core.KindInternal, op, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".checkpoint-*")
	if err != nil {
		return core.Wrap(core.KindUnavailable, op, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return core.Wrap(core.KindUnavailable, op+" "+path, err)
	}
	return nil
}
