package sqlite

import (
	"context"
	"time"

	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/sqlite/sqlitedb"
)

func (x queries) UpsertCacheEntry(ctx context.Context, e store.CacheEntry) error {
	return mapErr("put cache entry", x.q.UpsertCacheEntry(ctx, sqlitedb.UpsertCacheEntryParams{
		Ref: e.Ref, Project: e.Project, Bytes: e.Bytes, SavedAt: store.Millis(e.SavedAt),
	}))
}

func (x queries) TouchCacheEntry(ctx context.Context, ref string, at time.Time) error {
	return mapErr("touch cache entry", x.q.TouchCacheEntry(ctx, sqlitedb.TouchCacheEntryParams{Ref: ref, UsedAt: store.Millis(at)}))
}

func (x queries) ListCacheEntries(ctx context.Context, project string) ([]store.CacheEntry, error) {
	rows, err := x.q.ListCacheEntries(ctx, project)
	if err != nil {
		return nil, mapErr("list cache entries", err)
	}
	out := make([]store.CacheEntry, len(rows))
	for i, r := range rows {
		out[i] = store.CacheEntry{Ref: r.Ref, Project: r.Project, Bytes: r.Bytes, SavedAt: store.FromMillis(r.SavedAt), UsedAt: store.FromMillis(r.UsedAt)}
	}
	return out, nil
}

func (x queries) DeleteCacheEntry(ctx context.Context, ref string) error {
	return mapErr("delete cache entry", x.q.DeleteCacheEntry(ctx, ref))
}

func (x queries) InsertAttemptCache(ctx context.Context, c store.AttemptCache) error {
	return mapErr("record attempt cache", x.q.InsertAttemptCache(ctx, sqlitedb.InsertAttemptCacheParams{
		AttemptID: c.AttemptID, RunID: c.RunID, CacheKey: c.Key, Outcome: c.Outcome, RestoredKey: c.RestoredKey,
		RestoredBytes: c.RestoredBytes, Saved: c.Saved, SavedBytes: c.SavedBytes, UploadedBytes: c.UploadedBytes, Scope: c.Scope,
	}))
}

func (x queries) ListRunAttemptCaches(ctx context.Context, runID string) ([]store.AttemptCache, error) {
	rows, err := x.q.ListRunAttemptCaches(ctx, runID)
	if err != nil {
		return nil, mapErr("list attempt caches", err)
	}
	out := make([]store.AttemptCache, len(rows))
	for i, r := range rows {
		out[i] = store.AttemptCache{
			AttemptID: r.AttemptID, RunID: r.RunID, Key: r.CacheKey, Outcome: r.Outcome, RestoredKey: r.RestoredKey,
			RestoredBytes: r.RestoredBytes, Saved: r.Saved, SavedBytes: r.SavedBytes, UploadedBytes: r.UploadedBytes, Scope: r.Scope,
		}
	}
	return out, nil
}
