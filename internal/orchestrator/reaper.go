package orchestrator

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultReapInterval is how often the reaper looks for expired leases.
const DefaultReapInterval = 2 * time.Second

// Leader tells whether this process may run a leader-only loop. On
// PostgreSQL it is an advisory lock (store/postgres.Leader); a single
// process (SQLite) is always the leader.
type Leader interface {
	IsLeader(ctx context.Context) (bool, error)
}

// AlwaysLeader is the Leader of a process that runs alone.
type AlwaysLeader struct{}

// IsLeader implements Leader.
func (AlwaysLeader) IsLeader(context.Context) (bool, error) { return true, nil }

// Reaper turns expired leases into lost attempts, retried per policy, every
// Interval while this process is the leader. It has the Start/Stop shape of
// every background loop.
type Reaper struct {
	Orch     *Orchestrator
	Leader   Leader
	Interval time.Duration
	Log      *slog.Logger
	// OnReap, when set, is told how many leases each pass reaped (metrics).
	OnReap func(n int)

	cancel context.CancelFunc
	done   sync.WaitGroup
}

// Start runs the loop until Stop or ctx ends.
func (r *Reaper) Start(ctx context.Context) error {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultReapInterval
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r.pass(ctx)
		}
	}()
	return nil
}

func (r *Reaper) pass(ctx context.Context) {
	lead, err := r.Leader.IsLeader(ctx)
	if err != nil {
		r.Log.WarnContext(ctx, "reaper: leader check failed", slog.Any("err", err))
		return
	}
	if !lead {
		return
	}
	n, err := r.Orch.ReapExpired(ctx, 1000)
	if err != nil && ctx.Err() == nil {
		r.Log.WarnContext(ctx, "reaper pass failed", slog.Any("err", err))
	}
	if n > 0 && r.OnReap != nil {
		r.OnReap(n)
	}
}

// Stop ends the loop and waits for a pass in progress.
func (r *Reaper) Stop() {
	if r.cancel != nil {
		r.cancel()
	}
	r.done.Wait()
}
