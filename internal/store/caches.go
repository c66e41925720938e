package store

import (
	"context"
	"time"
)

// CacheQueries keep the server's job cache bookkeeping: the entries saved,
// for the size limit and eviction by last use, and what each attempt did
// with its cache. ListCacheEntries returns the least recently used first.
type CacheQueries interface {
	UpsertCacheEntry(ctx context.Context, e CacheEntry) error
	// TouchCacheEntry moves an entry's last use forward, never back.
	TouchCacheEntry(ctx context.Context, ref string, at time.Time) error
	ListCacheEntries(ctx context.Context, project string) ([]CacheEntry, error)
	DeleteCacheEntry(ctx context.Context, ref string) error
	// InsertAttemptCache keeps the first report of an attempt.
	InsertAttemptCache(ctx context.Context, c AttemptCache) error
	ListRunAttemptCaches(ctx context.Context, runID string) ([]AttemptCache, error)
}

// CacheEntry is a saved cache entry: its artifact store ref, the size of
// its files, when it was saved and when last saved or restored.
type CacheEntry struct {
	Ref, Project    string
	Bytes           int64
	SavedAt, UsedAt time.Time
}

// AttemptCache is what an attempt did with its job's cache.
type AttemptCache struct {
	AttemptID, RunID string
	Key              string
	// Outcome is exact, prefix or cold; RestoredKey the key of the entry
	// restored.
	Outcome       string
	RestoredKey   string
	RestoredBytes int64
	// Saved is "saved", "unchanged" or "" (nothing saved: the job failed,
	// or the save did).
	Saved         string
	SavedBytes    int64
	UploadedBytes int64
	// Scope is the trust scope the attempt's run writes.
	Scope string
}

// PutCacheEntry records a saved entry (used now).
func (s *Store) PutCacheEntry(ctx context.Context, e CacheEntry) error {
	return s.drv.Write(ctx, func(q Queries) error { return q.UpsertCacheEntry(ctx, e) })
}

// TouchCacheEntry records that an entry was offered to a job at at.
func (s *Store) TouchCacheEntry(ctx context.Context, ref string, at time.Time) error {
	return s.drv.Write(ctx, func(q Queries) error { return q.TouchCacheEntry(ctx, ref, at) })
}

// CacheEntries lists a project's entries, the least recently used first.
func (s *Store) CacheEntries(ctx context.Context, project string) ([]CacheEntry, error) {
	return s.drv.Read().ListCacheEntries(ctx, project)
}

// DeleteCacheEntry forgets an entry (its ref is deleted by the caller).
func (s *Store) DeleteCacheEntry(ctx context.Context, ref string) error {
	return s.drv.Write(ctx, func(q Queries) error { return q.DeleteCacheEntry(ctx, ref) })
}

// RecordAttemptCache keeps what an attempt did with its cache; a second
// report for the same attempt changes nothing.
func (s *Store) RecordAttemptCache(ctx context.Context, c AttemptCache) error {
	return s.drv.Write(ctx, func(q Queries) error { return q.InsertAttemptCache(ctx, c) })
}

// RunAttemptCaches returns what a run's attempts did with their caches.
func (s *Store) RunAttemptCaches(ctx context.Context, runID string) ([]AttemptCache, error) {
	return s.drv.Read().ListRunAttemptCaches(ctx, runID)
}
