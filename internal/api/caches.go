package api

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/jobcache"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// DefaultCacheLimit is a project's job cache size limit when the server
// sets none: 10 GiB.
const DefaultCacheLimit int64 = 10 << 30

// cacheScopes are the trust scopes of a run's job caches: the one it
// writes, and those it reads, its own first. They are the results
// namespaces (ADR-0003): a trusted run writes and reads its project's
// shared scope alone; another writes its own and reads it, then the
// shared one.
func (s *Server) cacheScopes(run core.Run) (write string, read []string) {
	rs := s.results(run)
	if run.Trusted {
		return rs.Write, []string{rs.Write}
	}
	read = []string{rs.Write}
	for _, ns := range rs.Read {
		if ns != rs.Write {
			read = append(read, ns)
		}
	}
	return rs.Write, read
}

// leaseCache finds the entry a leased job restores and counts it as used.
// A lookup that fails leaves the job cold; it never holds the job back.
func (s *Server) leaseCache(ctx context.Context, run core.Run, j core.Job) *protocol.LeaseCache {
	c := j.Spec.Cache
	if c == nil || c.Key == "" {
		return nil
	}
	_, read := s.cacheScopes(run)
	out := &protocol.LeaseCache{Key: c.Key, RestoreKeys: c.RestoreKeys, Paths: c.Paths, Scope: "shared"}
	if !run.Trusted {
		out.Scope = "own"
	}
	hit, ok, err := jobcache.Find(ctx, s.cfg.Registry.Meta, jobcache.Query{
		Project: run.Project, Env: c.Env, Key: c.Key, RestoreKeys: c.RestoreKeys, Scopes: read,
	})
	if err != nil {
		// A cache only makes a job faster: it starts cold rather than wait.
		s.log.WarnContext(ctx, "looking up a job cache", slog.String("job_id", j.ID), slog.Any("err", err))
		return out
	}
	if !ok {
		return out
	}
	out.Restore = &protocol.CacheRestore{Key: jobcache.KeyOf(hit.Ref), Manifest: hit.Manifest.String(), Match: hit.Match}
	if err := s.st.TouchCacheEntry(ctx, hit.Ref.String(), time.Now()); err != nil {
		s.log.WarnContext(ctx, "recording a cache entry's use", slog.String("ref", hit.Ref.String()), slog.Any("err", err))
	}
	return out
}

// recordCache keeps what a completing attempt did with its cache and, for a
// successful one that saved, points the entry's ref in the scope the run's
// trust gives it at the uploaded manifest, then evicts what passes the
// project's limit. Nothing the runner sends chooses the scope.
func (s *Server) recordCache(ctx context.Context, f store.Fence, rep *protocol.CacheReport, st core.AttemptState) {
	if rep == nil {
		return
	}
	attemptID := f.AttemptID
	warn := func(what string, err error) {
		s.log.WarnContext(ctx, what, slog.String("attempt_id", attemptID), slog.Any("err", err))
	}
	a, err := s.st.Attempt(ctx, attemptID)
	if err != nil {
		warn("reading an attempt for its cache", err)
		return
	}
	if a.RunnerID != f.RunnerID || a.LeaseToken != f.LeaseToken || a.State.Terminal() {
		return // not this runner's to report, or reported already
	}
	j, run, err := s.st.JobRun(ctx, a.JobID)
	if err != nil {
		warn("reading a job for its cache", err)
		return
	}
	c := j.Spec.Cache
	if c == nil || c.Key == "" {
		return
	}
	write, _ := s.cacheScopes(run)
	row := store.AttemptCache{AttemptID: a.ID, RunID: a.RunID, Key: c.Key, Outcome: jobcache.Cold, Scope: write}
	switch rep.Outcome {
	case jobcache.Exact:
		row.Outcome, row.RestoredKey, row.RestoredBytes = rep.Outcome, c.Key, max(rep.RestoredBytes, 0)
	case jobcache.Prefix:
		row.Outcome, row.RestoredKey, row.RestoredBytes = rep.Outcome, rep.RestoredKey, max(rep.RestoredBytes, 0)
	}
	if rep.Unchanged && st == core.AttemptSucceeded {
		row.Saved = "unchanged"
	}
	if rep.SavedManifest != "" && st == core.AttemptSucceeded {
		size, err := s.saveCache(ctx, run, c, write, rep.SavedManifest)
		if err != nil {
			warn("saving a job cache", err)
		} else {
			row.Saved, row.SavedBytes, row.UploadedBytes = "saved", size, max(rep.UploadedBytes, 0)
		}
	}
	if err := s.st.RecordAttemptCache(ctx, row); err != nil {
		warn("recording an attempt's cache", err)
	}
}

// saveCache points the entry's ref at manifest (which must be stored) and
// returns the size of its files.
func (s *Server) saveCache(ctx context.Context, run core.Run, c *core.Cache, scope, manifest string) (int64, error) {
	d, err := digest.Parse(manifest)
	if err != nil {
		return 0, core.Wrap(core.KindInvalid, "cache manifest", err)
	}
	_, m, err := s.cfg.Registry.Manifest(ctx, d.String())
	if err != nil {
		return 0, err
	}
	var size int64
	for _, e := range m.Entries {
		size += e.Size
	}
	ref, err := jobcache.Ref(run.Project, c.Env, c.Key, scope)
	if err != nil {
		return 0, err
	}
	if err := s.cfg.Registry.SetRef(ctx, "server", ref, d); err != nil {
		return 0, err
	}
	if err := s.st.PutCacheEntry(ctx, store.CacheEntry{Ref: ref.String(), Project: projectOrNone(run.Project), Bytes: size, SavedAt: time.Now()}); err != nil {
		return 0, err
	}
	return size, s.evictCaches(ctx, projectOrNone(run.Project))
}

func projectOrNone(p string) string {
	if p == "" {
		return "none"
	}
	return p
}

// evictCaches deletes a project's least recently used cache entries
// until the rest fit its limit. Their blobs go with the next GC.
func (s *Server) evictCaches(ctx context.Context, project string) error {
	entries, err := s.st.CacheEntries(ctx, project)
	if err != nil {
		return err
	}
	var total int64
	for _, e := range entries {
		total += e.Bytes
	}
	for _, e := range entries {
		if total <= s.cfg.CacheLimit {
			break
		}
		ref, err := eventlog.ParseRef(e.Ref)
		if err != nil {
			return err
		}
		if err := s.cfg.Registry.Meta.DeleteRef(ctx, "server", ref, "job cache over its project's limit: least recently used"); err != nil && core.KindOf(err) != core.KindNotFound {
			return err
		}
		if err := s.st.DeleteCacheEntry(ctx, e.Ref); err != nil {
			return err
		}
		total -= e.Bytes
		s.log.InfoContext(ctx, "job cache entry evicted", slog.String("ref", e.Ref), slog.Int64("bytes", e.Bytes))
	}
	return nil
}

// jobCache is a job's planned cache in the API.
func jobCache(c *core.Cache) *protocol.JobCache {
	if c == nil || c.Key == "" {
		return nil
	}
	return &protocol.JobCache{Key: c.Key, RestoreKeys: c.RestoreKeys, Paths: c.Paths}
}

// attemptCaches reads what a run's attempts did with their caches, by
// attempt; none are read for a run without cached jobs.
func (s *Server) attemptCaches(ctx context.Context, run core.Run, jobs []core.Job) (map[string]*protocol.AttemptCache, error) {
	if !slices.ContainsFunc(jobs, func(j core.Job) bool { return j.Spec.Cache != nil }) {
		return nil, nil
	}
	rows, err := s.st.RunAttemptCaches(ctx, run.ID)
	if err != nil {
		return nil, err
	}
	scope := "own"
	if run.Trusted {
		scope = "shared"
	}
	out := make(map[string]*protocol.AttemptCache, len(rows))
	for _, r := range rows {
		out[r.AttemptID] = &protocol.AttemptCache{
			Outcome: r.Outcome, RestoredKey: r.RestoredKey, RestoredBytes: r.RestoredBytes,
			Saved: r.Saved, SavedBytes: r.SavedBytes, UploadedBytes: r.UploadedBytes, Scope: scope,
		}
	}
	return out, nil
}
