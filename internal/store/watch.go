package store

import (
	"context"
	"sync"
	"time"
)

// Watcher is an engine that announces committed changes, so that a
// follower of a run wakes on that run's own changes instead of polling.
type Watcher interface {
	// Watch calls fn until ctx ends with the run id of every event a
	// committed transaction wrote, and with the attempt id or the run id
	// of every log that grew. An empty id means any run may have changed
	// (announcements were lost, such as while a connection was down).
	// fn must not block.
	Watch(ctx context.Context, fn func(id string))
}

// WatchRegistry is a Watcher that announces only the changes of the runs
// some replica says it streams (PostgreSQL, where announcing costs every
// commit a cluster-wide lock). A watch lasts until its time and is renewed
// while the stream lasts.
type WatchRegistry interface {
	WatchRuns(ctx context.Context, replica string, runIDs []string, until time.Time) error
	UnwatchRun(ctx context.Context, replica, runID string) error
	ExpireRunWatches(ctx context.Context, now time.Time) error
}

// WatchRuns marks runs as streamed by replica until the given time; a
// no-op on an engine that announces every change.
func (s *Store) WatchRuns(ctx context.Context, replica string, runIDs []string, until time.Time) error {
	if r, ok := s.drv.(WatchRegistry); ok && len(runIDs) > 0 {
		return r.WatchRuns(ctx, replica, runIDs, until)
	}
	return nil
}

// UnwatchRun says replica streams the run no more.
func (s *Store) UnwatchRun(ctx context.Context, replica, runID string) error {
	if r, ok := s.drv.(WatchRegistry); ok {
		return r.UnwatchRun(ctx, replica, runID)
	}
	return nil
}

// ExpireRunWatches forgets the watches not renewed by now.
func (s *Store) ExpireRunWatches(ctx context.Context, now time.Time) error {
	if r, ok := s.drv.(WatchRegistry); ok {
		return r.ExpireRunWatches(ctx, now)
	}
	return nil
}

// CanWatch reports whether the engine announces its changes (Watch).
func (s *Store) CanWatch() bool {
	_, ok := s.drv.(Watcher)
	return ok
}

// Watch calls fn with the ids of what changed, as Watcher says, until ctx
// ends. It returns at once when the engine cannot watch (CanWatch).
func (s *Store) Watch(ctx context.Context, fn func(id string)) {
	if w, ok := s.drv.(Watcher); ok {
		w.Watch(ctx, fn)
	}
}

// Feed fans a process's committed changes out to its watchers: an engine
// that only this process writes (SQLite) announces through one.
type Feed struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(string)
}

// Announce calls every watcher with id.
func (f *Feed) Announce(id string) {
	f.mu.Lock()
	fns := make([]func(string), 0, len(f.fns))
	for _, fn := range f.fns {
		fns = append(fns, fn)
	}
	f.mu.Unlock()
	for _, fn := range fns {
		fn(id)
	}
}

// Watch calls fn with every announced id until ctx ends.
func (f *Feed) Watch(ctx context.Context, fn func(id string)) {
	f.mu.Lock()
	if f.fns == nil {
		f.fns = map[int]func(string){}
	}
	k := f.next
	f.next++
	f.fns[k] = fn
	f.mu.Unlock()
	<-ctx.Done()
	f.mu.Lock()
	delete(f.fns, k)
	f.mu.Unlock()
}
