package orchestrator

import (
	"context"
	"fmt"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// RecoverAbandoned ends runs whose driving process died: runs that have not
// ended, are older than ttl, hold no live lease and have had nothing queued
// within ttl. Each is canceled and its expired leases are reaped, so nothing
// stays running. It returns the ids of the runs it ended.
//
// Only the embedded mode calls it: there one process drives a run from start
// to end. A server recovers through the reaper and its runners instead.
func (o *Orchestrator) RecoverAbandoned(ctx context.Context, actor string, ttl time.Duration) ([]string, error) {
	runs, err := o.store.ActiveRuns(ctx)
	if err != nil {
		return nil, err
	}
	now := o.store.Now()
	var ended []string
	for _, run := range runs {
		if now.Sub(run.CreatedAt) < ttl {
			continue
		}
		alive, err := o.hasLife(ctx, run.ID, now, ttl)
		if err != nil {
			return ended, err
		}
		if alive {
			continue
		}
		if err := o.Cancel(ctx, actor, run.ID); err != nil && core.KindOf(err) != core.KindConflict {
			return ended, fmt.Errorf("recover run %s: %w", run.ID, err)
		}
		if _, err := o.ReapExpired(ctx, 1000); err != nil {
			return ended, fmt.Errorf("recover run %s: %w", run.ID, err)
		}
		ended = append(ended, run.ID)
	}
	return ended, nil
}

// hasLife reports whether some process still works on the run: a lease that
// has not expired, or an attempt queued within ttl.
func (o *Orchestrator) hasLife(ctx context.Context, runID string, now time.Time, ttl time.Duration) (bool, error) {
	attempts, err := o.store.Attempts(ctx, runID)
	if err != nil {
		return false, err
	}
	for _, a := range attempts {
		switch a.State {
		case core.AttemptLeased, core.AttemptRunning:
			if a.LeaseExpiresAt.After(now) {
				return true, nil
			}
		case core.AttemptQueued:
			if now.Sub(a.QueuedAt) < ttl {
				return true, nil
			}
		}
	}
	return false, nil
}

// FailStalePlanning ends, as errored with infra_error, runs still queued
// or planning more than ttl after they were created: their server died
// between recording the run and starting it, and nothing else would move
// them. It returns the ids of the runs it ended.
func (o *Orchestrator) FailStalePlanning(ctx context.Context, ttl time.Duration) ([]string, error) {
	runs, err := o.store.ActiveRuns(ctx)
	if err != nil {
		return nil, err
	}
	now := o.store.Now()
	var ended []string
	for _, run := range runs {
		if (run.State != core.RunQueued && run.State != core.RunPlanning) || now.Sub(run.CreatedAt) < ttl {
			continue
		}
		err := o.FailPlanning(ctx, run.ID, core.ReasonInfraError)
		if core.KindOf(err) == core.KindConflict {
			continue // it moved meanwhile
		}
		if err != nil {
			return ended, fmt.Errorf("fail stale run %s: %w", run.ID, err)
		}
		ended = append(ended, run.ID)
	}
	return ended, nil
}
