package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/jobcache"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// restoreCache writes the lease's cache entry into the job's home and
// workspace before the job. A failed restore is a cold start, never a
// failed job: it says so in the log.
func (a *attempt) restoreCache(ctx context.Context, tr *registry.Transfer, roots jobcache.Roots, logw io.Writer) *protocol.CacheReport {
	c := a.l.Cache
	rep := &protocol.CacheReport{Outcome: jobcache.Cold}
	if c.Restore == nil {
		fmt.Fprintf(logw, "deltaci: %s\n", jobcache.RestoredLine(jobcache.Cold, c.Key, 0))
		return rep
	}
	var got jobcache.Restored
	err := retryTransient(ctx, a.log, "restoring the cache", func() error {
		var err error
		got, err = jobcache.Restore(ctx, tr, c.Restore.Manifest, roots, c.Paths)
		return err
	})
	if err != nil {
		fmt.Fprintf(logw, "deltaci: cache not restored, starting cold: %v\n", err)
		return rep
	}
	rep.Outcome, rep.RestoredKey, rep.RestoredBytes = c.Restore.Match, c.Restore.Key, got.Bytes
	fmt.Fprintf(logw, "deltaci: %s\n", jobcache.RestoredLine(c.Restore.Match, c.Restore.Key, got.Bytes))
	return rep
}

// saveCache uploads the job's cache paths after a success, unless they
// hold what was restored; the server records the entry when the attempt
// completes.
func (a *attempt) saveCache(ctx context.Context, tr *registry.Transfer, roots jobcache.Roots, rep *protocol.CacheReport, logw io.Writer) {
	c := a.l.Cache
	restored := ""
	if c.Restore != nil && rep.Outcome == jobcache.Exact {
		restored = c.Restore.Manifest
	}
	var res registry.PushResult
	err := retryTransient(ctx, a.log, "saving the cache", func() error {
		var err error
		res, err = jobcache.Save(ctx, tr, "", roots, c.Paths, restored, cacheAnnotations(c.Key))
		return err
	})
	if err != nil {
		fmt.Fprintf(logw, "deltaci: cache not saved: %v\n", err)
		return
	}
	fmt.Fprintf(logw, "deltaci: %s\n", jobcache.SavedLine(c.Key, res))
	if res.Unchanged {
		rep.Unchanged = true
		return
	}
	rep.SavedManifest, rep.UploadedBytes = res.Manifest.String(), res.Sent
}

// cacheAnnotations are the same for every save of a key, so that a save of
// what was restored has the restored entry's digest.
func cacheAnnotations(key string) map[string]string {
	return map[string]string{"deltaci.cache_key": key}
}

// localCache restores and saves the job caches of deltaci run in the
// developer's own store, under jobcache.Local.
type localCache struct {
	l     *Local
	j     core.Job
	a     core.Attempt
	roots jobcache.Roots
	paths []string
	rep   store.AttemptCache
	// restored is the manifest restored by the exact key, if any.
	restored string
}

// restoreLocalCache restores j's cache before the job, or returns nil for
// a job without one. Without a home of the job's own (roots.Home empty:
// the shell executor's jobs use the developer's home, which keeps them
// warm), "~/" paths are left alone.
func (l *Local) restoreLocalCache(ctx context.Context, a core.Attempt, j core.Job, roots jobcache.Roots, out io.Writer) *localCache {
	c := j.Spec.Cache
	if c == nil || c.Key == "" || l.Results == nil {
		return nil
	}
	lc := &localCache{l: l, j: j, a: a, roots: roots,
		rep: store.AttemptCache{AttemptID: a.ID, RunID: a.RunID, Key: c.Key, Outcome: jobcache.Cold, Scope: jobcache.Local}}
	for _, p := range c.Paths {
		if strings.HasPrefix(p, "~/") && roots.Home == "" {
			continue
		}
		lc.paths = append(lc.paths, p)
	}
	if len(lc.paths) < len(c.Paths) {
		fmt.Fprintf(out, "deltaci: cache paths under ~/ are your own home's: not restored or saved\n")
	}
	hit, ok, err := jobcache.Find(ctx, l.Results.Reg.Meta, jobcache.Query{
		Project: jobcache.Local, Env: c.Env, Key: c.Key, RestoreKeys: c.RestoreKeys, Scopes: []string{jobcache.Local},
	})
	if err != nil {
		fmt.Fprintf(out, "deltaci: cache not restored, starting cold: %v\n", err)
		return lc
	}
	if !ok {
		fmt.Fprintf(out, "deltaci: %s\n", jobcache.RestoredLine(jobcache.Cold, c.Key, 0))
		return lc
	}
	got, err := jobcache.Restore(ctx, l.transfer(), hit.Manifest.String(), lc.roots, lc.paths)
	if err != nil {
		fmt.Fprintf(out, "deltaci: cache not restored, starting cold: %v\n", err)
		return lc
	}
	key := jobcache.KeyOf(hit.Ref)
	lc.rep.Outcome, lc.rep.RestoredKey, lc.rep.RestoredBytes = hit.Match, key, got.Bytes
	if hit.Match == jobcache.Exact {
		lc.restored = hit.Manifest.String()
	}
	fmt.Fprintf(out, "deltaci: %s\n", jobcache.RestoredLine(hit.Match, key, got.Bytes))
	return lc
}

// save keeps the cache paths after a success, unless unchanged, and
// records what the attempt did with its cache.
func (lc *localCache) save(ctx context.Context, succeeded bool, out io.Writer) {
	l, c := lc.l, lc.j.Spec.Cache
	if succeeded {
		res, err := jobcache.Save(ctx, l.transfer(), "deltaci run", lc.roots, lc.paths, lc.restored, cacheAnnotations(c.Key))
		switch {
		case err != nil:
			fmt.Fprintf(out, "deltaci: cache not saved: %v\n", err)
		case res.Unchanged:
			lc.rep.Saved = "unchanged"
			fmt.Fprintf(out, "deltaci: %s\n", jobcache.SavedLine(c.Key, res))
		default:
			ref, err := jobcache.Ref(jobcache.Local, c.Env, c.Key, jobcache.Local)
			if err == nil {
				err = l.Results.Reg.SetRef(ctx, "deltaci run", ref, res.Manifest)
			}
			if err != nil {
				fmt.Fprintf(out, "deltaci: cache not saved: %v\n", err)
				break
			}
			lc.rep.Saved, lc.rep.SavedBytes, lc.rep.UploadedBytes = "saved", res.Bytes, res.Sent
			fmt.Fprintf(out, "deltaci: %s\n", jobcache.SavedLine(c.Key, res))
		}
	}
	if err := l.Orch.Store().RecordAttemptCache(ctx, lc.rep); err != nil {
		l.Log.WarnContext(ctx, "recording the attempt's cache", slog.Any("err", err))
	}
}

func (l *Local) transfer() *registry.Transfer {
	reg := l.Results.Reg
	return &registry.Transfer{Data: reg.Data, Catalog: reg, Alg: reg.Alg}
}
