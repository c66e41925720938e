package api

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/deltaci/deltaci/internal/store"
)

// watchTTL is how long the database keeps a replica's watch of a run
// without renewal; renewWatchesEvery renews them well before.
const (
	watchTTL          = time.Minute
	renewWatchesEvery = watchTTL / 3
)

// runWatches counts this replica's streams of each run, so that the
// database announces the changes of those runs and of no others
// (store.WatchRegistry).
type runWatches struct {
	// mu also orders the database calls, so that a watch that ends and
	// one that begins for the same run cannot pass each other.
	mu      sync.Mutex
	replica string
	n       map[string]int
}

// watchRun has the database announce runID's changes to this replica for
// as long as a stream of it lasts, and returns the function that ends the
// stream's watch. A failure to say so is logged, not fatal: the stream's
// periodic re-read still sees the run, only later.
func (s *Server) watchRun(ctx context.Context, runID string) (unwatch func()) {
	w := &s.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == nil {
		w.n, w.replica = map[string]int{}, store.NewID()
	}
	w.n[runID]++
	if w.n[runID] == 1 {
		if err := s.st.WatchRuns(ctx, w.replica, []string{runID}, s.st.Now().Add(watchTTL)); err != nil {
			s.log.WarnContext(ctx, "watch run", slog.String("run_id", runID), slog.Any("error", err))
		}
	}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.n[runID]--; w.n[runID] > 0 {
			return
		}
		delete(w.n, runID)
		// The request that watched has ended: its context has too.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.st.UnwatchRun(ctx, w.replica, runID); err != nil {
			s.log.WarnContext(ctx, "unwatch run", slog.String("run_id", runID), slog.Any("error", err))
		}
	}
}

// renewWatches keeps this replica's watches alive and forgets those of
// replicas that stopped, until ctx ends.
func (s *Server) renewWatches(ctx context.Context) {
	t := time.NewTicker(renewWatchesEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w := &s.watches
		w.mu.Lock()
		ids := make([]string, 0, len(w.n))
		for id := range w.n {
			ids = append(ids, id)
		}
		now := s.st.Now()
		err := s.st.WatchRuns(ctx, w.replica, ids, now.Add(watchTTL))
		w.mu.Unlock()
		if err == nil {
			err = s.st.ExpireRunWatches(ctx, now)
		}
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "renew run watches", slog.Any("error", err))
		}
	}
}
