package store

import (
	"context"
	"sync"
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
