package eventlogtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// CheckpointHarness is what an engine gives the checkpoint suite.
type CheckpointHarness struct {
	// Store is a fresh, empty store with the configuration asked for.
	Store *eventlog.Store
	// Exec runs raw SQL on the engine, bypassing the store.
	Exec func(ctx context.Context, query string, args ...any) error
	// AllowTamper disables every guard on the log's tables (store_events,
	// store_head, store_checkpoints), as an attacker who owns the
	// database could.
	AllowTamper func(ctx context.Context) error
	// Reopen opens another store on the same database with cfg, as
	// another process with its own settings would.
	Reopen func(t *testing.T, cfg eventlog.CheckpointConfig) *eventlog.Store
}

// CheckpointOpener opens a fresh, empty store on a clock, with cfg.
type CheckpointOpener func(t *testing.T, now func() time.Time, cfg eventlog.CheckpointConfig) CheckpointHarness

type cpBundle struct {
	CheckpointHarness
	b    bundle
	key  ed25519.PrivateKey
	pub  ed25519.PublicKey
	file string // the checkpoint file, when asked for
}

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// cpSetup opens a store that signs with a fresh key and keeps its
// checkpoint file in a temporary directory when file is set.
func cpSetup(t *testing.T, open CheckpointOpener, file bool) cpBundle {
	t.Helper()
	pub, key := newKey(t)
	cfg := eventlog.CheckpointConfig{Key: key}
	if file {
		cfg.File = filepath.Join(t.TempDir(), "checkpoint.json")
	}
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	h := open(t, c.now, cfg)
	b := bundle{Harness: Harness{Store: h.Store, Exec: h.Exec, AllowTamper: h.AllowTamper}, s: h.Store, clock: c, ctx: context.Background()}
	return cpBundle{CheckpointHarness: h, b: b, key: key, pub: pub, file: cfg.File}
}

// checkpoint makes a checkpoint of the current head and checks it.
func (c cpBundle) checkpoint(t *testing.T) eventlog.Checkpoint {
	t.Helper()
	cp, made, err := c.b.s.Checkpoint(c.b.ctx)
	must(t, err)
	head, _ := c.b.s.Head(c.b.ctx)
	if !made || cp.Head() != head {
		t.Fatalf("checkpoint = %+v made %v, want one of head %v", cp.Head(), made, head)
	}
	return cp
}

// cutTail removes the events after keep and rolls store_head back to it,
// the way an attacker who owns the database would, and checks that what
// is left is a whole chain ending at its head: the chain alone cannot
// tell.
func (c cpBundle) cutTail(t *testing.T, keep int64) {
	t.Helper()
	ctx := c.b.ctx
	evs, err := c.b.s.Events(ctx, keep-1, 1)
	must(t, err)
	must(t, c.AllowTamper(ctx))
	must(t, c.Exec(ctx, fmt.Sprintf("DELETE FROM store_events WHERE seq > %d", keep)))
	must(t, c.Exec(ctx, fmt.Sprintf("UPDATE store_head SET seq = %d, hash = '%s'", keep, evs[0].Hash)))
	all, err := c.b.s.Events(ctx, 0, eventlog.MaxPage)
	must(t, err)
	prev := ""
	for _, e := range all {
		if e.PrevHash != prev {
			t.Fatalf("event %d does not follow its predecessor: the tampering was clumsy", e.Seq)
		}
		prev = e.Hash
	}
	if head, _ := c.b.s.Head(ctx); head.Seq != keep || head.Hash != prev || int64(len(all)) != keep {
		t.Fatalf("after cutting: head %v, %d events", head, len(all))
	}
}

// RunCheckpoints runs the checkpoint suite against one engine.
func RunCheckpoints(t *testing.T, open CheckpointOpener) {
	t.Run("CheckpointOnlyWhenHeadMoves", func(t *testing.T) {
		t.Parallel()
		c := cpSetup(t, open, false)
		cp, made, err := c.b.s.Checkpoint(c.b.ctx)
		must(t, err)
		if made || cp.Seq != 0 {
			t.Errorf("checkpoint of an empty log = %+v, made %v", cp, made)
		}
		_, err = c.b.s.LatestCheckpoint(c.b.ctx)
		wantKind(t, err, core.KindNotFound, "no checkpoint")
		pushed(t, c.b, "ns/a:1", "a")
		first := c.checkpoint(t)
		if err := first.Verify([]ed25519.PublicKey{c.pub}); err != nil {
			t.Fatal(err)
		}
		again, made, err := c.b.s.Checkpoint(c.b.ctx)
		must(t, err)
		if made || again.Seq != first.Seq {
			t.Errorf("a head that did not move was checkpointed again: %+v", again)
		}
		pushed(t, c.b, "ns/b:1", "b")
		second := c.checkpoint(t)
		all, err := c.b.s.Checkpoints(c.b.ctx, 0, 10)
		must(t, err)
		if len(all) != 2 || all[0].Seq != 3 || all[1].Seq != 6 || all[1].Hash != second.Hash {
			t.Errorf("stored checkpoints = %+v", all)
		}
		rep := replayMatches(t, c.b)
		if rep.Checkpoints != 2 || rep.LatestCheckpoint.Seq != 6 || !rep.SignersChecked {
			t.Errorf("report: %d checkpoints, latest %d, signers checked %v", rep.Checkpoints, rep.LatestCheckpoint.Seq, rep.SignersChecked)
		}
		// A store without a key only verifies.
		_, _, err = c.Reopen(t, eventlog.CheckpointConfig{}).Checkpoint(c.b.ctx)
		wantKind(t, err, core.KindInvalid, "no checkpoint key")
	})

	t.Run("ErrTailRemovedCaughtByCheckpoint", func(t *testing.T) {
		t.Parallel()
		c := cpSetup(t, open, false)
		pushed(t, c.b, "ns/a:1", "a")
		pushed(t, c.b, "ns/b:1", "b")
		pushed(t, c.b, "ns/c:1", "c")
		c.checkpoint(t) // event 9
		c.cutTail(t, 7)
		const want = "the log ends at event 7"
		_, err := c.b.s.Verify(c.b.ctx)
		wantKind(t, err, core.KindConflict, want)
		if !strings.Contains(err.Error(), "checkpoint of event 9") {
			t.Errorf("%v does not name the checkpoint", err)
		}
		_, err = c.b.s.Replay(c.b.ctx)
		wantKind(t, err, core.KindConflict, want)
		// A verifier without any key catches it too: reaching a checkpoint
		// needs no key.
		_, err = c.Reopen(t, eventlog.CheckpointConfig{}).Verify(c.b.ctx)
		wantKind(t, err, core.KindConflict, want)
		// The signer refuses to vouch for the cut log.
		_, _, err = c.b.s.Checkpoint(c.b.ctx)
		wantKind(t, err, core.KindConflict, want)
		if cp, _ := c.b.s.LatestCheckpoint(c.b.ctx); cp.Seq != 9 {
			t.Errorf("latest checkpoint is %d after a refused round", cp.Seq)
		}
	})

	t.Run("ErrHeadRolledBackCaughtByCheckpoint", func(t *testing.T) {
		t.Parallel()
		c := cpSetup(t, open, false)
		pushed(t, c.b, "ns/a:1", "a")
		c.checkpoint(t)
		evs, _ := c.b.s.Events(c.b.ctx, 1, 1)
		must(t, c.Exec(c.b.ctx, fmt.Sprintf("UPDATE store_head SET seq = 2, hash = '%s'", evs[0].Hash)))
		_, _, err := c.b.s.Checkpoint(c.b.ctx)
		wantKind(t, err, core.KindConflict, "the head was rolled back")
	})

	t.Run("ErrTailAndCheckpointsRemovedCaughtByFile", func(t *testing.T) {
		t.Parallel()
		c := cpSetup(t, open, true)
		pushed(t, c.b, "ns/a:1", "a")
		c.checkpoint(t) // event 3
		pushed(t, c.b, "ns/b:1", "b")
		cp := c.checkpoint(t) // event 6
		b, err := os.ReadFile(c.file)
		must(t, err)
		inFile, err := eventlog.ParseCheckpoint(b)
		must(t, err)
		if inFile.Head() != cp.Head() || string(inFile.Signature) != string(cp.Signature) {
			t.Fatalf("checkpoint file holds %+v, want %+v", inFile.Head(), cp.Head())
		}
		c.cutTail(t, 3)
		must(t, c.Exec(c.b.ctx, "DELETE FROM store_checkpoints WHERE seq > 3"))
		// Without the file, the database alone looks whole again.
		if _, err := c.Reopen(t, eventlog.CheckpointConfig{Trusted: []ed25519.PublicKey{c.pub}}).Verify(c.b.ctx); err != nil {
			t.Fatalf("the database alone should look whole, got %v", err)
		}
		_, err = c.b.s.Verify(c.b.ctx)
		wantKind(t, err, core.KindConflict, "the log ends at event 3")
		// An exported copy kept elsewhere does the same for any verifier.
		_, err = c.Reopen(t, eventlog.CheckpointConfig{}).VerifyWith(c.b.ctx, eventlog.VerifyOptions{Checkpoints: []eventlog.Checkpoint{inFile}})
		wantKind(t, err, core.KindConflict, "checkpoint of event 6")
		_, _, err = c.b.s.Checkpoint(c.b.ctx)
		wantKind(t, err, core.KindConflict, "the log ends at event 3")
	})

	t.Run("ErrForgedCheckpointReported", func(t *testing.T) {
		t.Parallel()
		c := cpSetup(t, open, false)
		pushed(t, c.b, "ns/a:1", "a")
		c.checkpoint(t) // event 3
		pushed(t, c.b, "ns/b:1", "b")
		// Inserting needs no tampering: the guards refuse only changes. A
		// signature copied from event 3 onto event 6's true hash.
		must(t, c.Exec(c.b.ctx, "INSERT INTO store_checkpoints (seq, hash, at, public_key, signature) "+
			"SELECT 6, (SELECT hash FROM store_events WHERE seq = 6), at, public_key, signature FROM store_checkpoints WHERE seq = 3"))
		for _, s := range []*eventlog.Store{c.b.s, c.Reopen(t, eventlog.CheckpointConfig{})} {
			_, err := s.Verify(c.b.ctx)
			wantKind(t, err, core.KindConflict, "checkpoint of event 6")
			if !strings.Contains(err.Error(), "forged or altered") {
				t.Errorf("%v does not say the signature is bad", err)
			}
		}
		_, _, err := c.b.s.Checkpoint(c.b.ctx)
		wantKind(t, err, core.KindConflict, "forged or altered")
	})

	t.Run("ErrAlteredCheckpointReported", func(t *testing.T) {
		t.Parallel()
		c := cpSetup(t, open, false)
		pushed(t, c.b, "ns/a:1", "a")
		c.checkpoint(t)
		must(t, c.AllowTamper(c.b.ctx))
		must(t, c.Exec(c.b.ctx, "UPDATE store_checkpoints SET at = at + 1"))
		_, err := c.b.s.Replay(c.b.ctx)
		wantKind(t, err, core.KindConflict, "forged or altered")
	})

	t.Run("ErrCheckpointOfAnotherKeyReported", func(t *testing.T) {
		t.Parallel()
		c := cpSetup(t, open, false)
		pushed(t, c.b, "ns/a:1", "a")
		c.checkpoint(t)
		pushed(t, c.b, "ns/b:1", "b")
		// Someone runs the store with a key of their own.
		_, mallory := newKey(t)
		other := c.Reopen(t, eventlog.CheckpointConfig{Key: mallory, Trusted: []ed25519.PublicKey{c.pub}})
		if _, made, err := other.Checkpoint(c.b.ctx); err != nil || !made {
			t.Fatalf("checkpoint with another key: %v %v", made, err)
		}
		_, err := c.b.s.Verify(c.b.ctx)
		wantKind(t, err, core.KindConflict, "is not a checkpoint key of this store")
		// Trusting the other key (a rotation) accepts it.
		_, err = c.b.s.VerifyWith(c.b.ctx, eventlog.VerifyOptions{TrustedKeys: []ed25519.PublicKey{mallory.Public().(ed25519.PublicKey)}})
		must(t, err)
		// A verifier that knows no key checks each signature against the key
		// it carries, and says so.
		rep, err := c.Reopen(t, eventlog.CheckpointConfig{}).Replay(c.b.ctx)
		must(t, err)
		if rep.SignersChecked || rep.Checkpoints != 2 {
			t.Errorf("keyless replay: signers checked %v, %d checkpoints", rep.SignersChecked, rep.Checkpoints)
		}
	})

	t.Run("ExpectHead", func(t *testing.T) {
		t.Parallel()
		c := cpSetup(t, open, false)
		pushed(t, c.b, "ns/a:1", "a")
		head, _ := c.b.s.Head(c.b.ctx)
		ok := func(h eventlog.Head) error {
			_, err := c.b.s.VerifyWith(c.b.ctx, eventlog.VerifyOptions{ExpectHead: &h})
			return err
		}
		must(t, ok(head))
		wantKind(t, ok(eventlog.Head{Seq: 3, Hash: strings.Repeat("0", 64)}), core.KindConflict, "but the expected head says 000000000000: the log was rewritten")
		wantKind(t, ok(eventlog.Head{Seq: 5, Hash: head.Hash}), core.KindConflict, "the log ends at event 3")
		wantKind(t, ok(eventlog.Head{Seq: 5, Hash: head.Hash}), core.KindConflict, "before the expected head, event 5")
		evs, _ := c.b.s.Events(c.b.ctx, 1, 1)
		wantKind(t, ok(eventlog.Head{Seq: 2, Hash: evs[0].Hash}), core.KindConflict, "the log goes on past the expected head, event 2, to event 3")
		wantKind(t, ok(eventlog.Head{Seq: 2, Hash: head.Hash}), core.KindConflict, "the log was rewritten")
	})

	t.Run("CheckpointsAppendOnly", func(t *testing.T) {
		t.Parallel()
		c := cpSetup(t, open, false)
		pushed(t, c.b, "ns/a:1", "a")
		c.checkpoint(t)
		for _, q := range []string{
			"UPDATE store_checkpoints SET hash = 'x'",
			"DELETE FROM store_checkpoints",
			"DELETE FROM store_head",
		} {
			if err := c.Exec(c.b.ctx, q); err == nil || !strings.Contains(err.Error(), "append-only event log") {
				t.Errorf("%s: %v, want refused", q, err)
			}
		}
		replayMatches(t, c.b)
	})

	t.Run("CheckpointerSignsOnLeaderAndAtStop", func(t *testing.T) {
		t.Parallel()
		c := cpSetup(t, open, false)
		pushed(t, c.b, "ns/a:1", "a")
		made := make(chan eventlog.Checkpoint, 16)
		follower := &eventlog.Checkpointer{Store: c.b.s, Interval: time.Millisecond, Leader: leading(false),
			Made: func(cp eventlog.Checkpoint) { made <- cp }}
		follower.Start(c.b.ctx)
		follower.Stop()
		select {
		case cp := <-made:
			t.Fatalf("a follower made checkpoint %d", cp.Seq)
		default:
		}
		cpr := &eventlog.Checkpointer{Store: c.b.s, Interval: time.Hour, Made: func(cp eventlog.Checkpoint) { made <- cp }}
		cpr.Start(c.b.ctx)
		select {
		case cp := <-made:
			if cp.Seq != 3 {
				t.Errorf("first checkpoint at %d, want 3", cp.Seq)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no checkpoint at start")
		}
		pushed(t, c.b, "ns/b:1", "b")
		cpr.Stop()
		if cp, err := c.b.s.LatestCheckpoint(c.b.ctx); err != nil || cp.Seq != 6 {
			t.Errorf("after stop, latest checkpoint %d (%v), want 6", cp.Seq, err)
		}
	})
}

type leading bool

func (l leading) IsLeader(context.Context) (bool, error) { return bool(l), nil }
