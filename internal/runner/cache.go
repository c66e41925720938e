package runner

import (
	"context"
	"fmt"
	"io"

	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/jobcache"
	"github.com/deltaci/deltaci/internal/protocol"
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
