package eventlog

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// DefaultCheckpointInterval is how often a server checkpoints the log's
// head. Events written since the last checkpoint are what an attacker could
// remove unseen, so it bounds that window.
const DefaultCheckpointInterval = time.Minute

// Leader tells whether this process may run a leader-only loop; a nil
// Leader always leads.
type Leader interface {
	IsLeader(ctx context.Context) (bool, error)
}

// Checkpointer signs the log's head every Interval, on the leader only, and
// once more when it stops. A head that has not moved makes no new
// checkpoint. When the log no longer reaches the last checkpoint, or that
// checkpoint does not verify, it logs an ERROR each round and signs nothing
// until this is resolved.
//
// Start and Stop are called once each, in that order; Stop of a nil
// Checkpointer does nothing.
type Checkpointer struct {
	Store    *Store
	Interval time.Duration // DefaultCheckpointInterval when zero
	Leader   Leader
	Log      *slog.Logger
	// Made, when set, is called with each checkpoint made (for tests).
	Made func(Checkpoint)

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start runs the loop until Stop.
func (c *Checkpointer) Start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	interval := c.Interval
	if interval <= 0 {
		interval = DefaultCheckpointInterval
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			c.round(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the loop and checkpoints the head a last time, so that what was
// written since the last round is covered too.
func (c *Checkpointer) Stop() {
	if c == nil || c.cancel == nil {
		return
	}
	c.cancel()
	c.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.round(ctx)
}

// round checkpoints the head once, if this process leads.
func (c *Checkpointer) round(ctx context.Context) {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c.Leader != nil {
		lead, err := c.Leader.IsLeader(ctx)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "leader election for checkpoints", slog.Any("err", err))
		}
		if !lead {
			return
		}
	}
	cp, made, err := c.Store.Checkpoint(ctx)
	switch {
	case err != nil && core.KindOf(err) == core.KindConflict:
		log.ErrorContext(ctx, "the event log does not match its last checkpoint: signing no checkpoint until this is resolved (replay --verify names the problem)",
			slog.Any("err", err))
	case err != nil:
		if ctx.Err() == nil {
			log.WarnContext(ctx, "checkpointing the event log", slog.Any("err", err))
		}
	case made:
		log.InfoContext(ctx, "checkpointed the event log", slog.Int64("seq", cp.Seq), slog.String("hash", cp.Hash),
			slog.String("key_id", cp.KeyID()))
		if c.Made != nil {
			c.Made(cp)
		}
	}
}
