package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// RunCaches is the conformance suite of the job cache bookkeeping.
func RunCaches(t *testing.T, open Opener) {
	t.Run("SpecKeepsCache", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		s := spec("build")
		s.Cache = &core.Cache{Files: []string{"go.sum"}, RestoreKeys: []string{"build-"}, Paths: []string{"~/.cache/go-build"}, Key: "build-0123", Env: "abcd"}
		r, _, err := b.s.CreateRun(b.ctx, "test", store.NewRun{Event: "push", Jobs: []store.NewJob{{Spec: s}}})
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := b.s.Jobs(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(s.Cache, jobs[0].Spec.Cache); diff != "" {
			t.Errorf("cache round trip (-want +got):\n%s", diff)
		}
	})
	t.Run("EntriesLeastRecentlyUsedFirst", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		for i, ref := range []string{"cache/p/e/a:shared", "cache/p/e/b:shared", "cache/p/e/c:shared"} {
			if err := b.s.PutCacheEntry(b.ctx, store.CacheEntry{Ref: ref, Project: "p", Bytes: int64(100 * (i + 1)), SavedAt: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.s.PutCacheEntry(b.ctx, store.CacheEntry{Ref: "cache/q/e/a:shared", Project: "q", Bytes: 1, SavedAt: t0}); err != nil {
			t.Fatal(err)
		}
		// a is restored: it becomes the most recently used. A touch that
		// comes late never moves it back.
		if err := b.s.TouchCacheEntry(b.ctx, "cache/p/e/a:shared", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := b.s.TouchCacheEntry(b.ctx, "cache/p/e/a:shared", t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		got, err := b.s.CacheEntries(b.ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, e := range got {
			order = append(order, e.Ref)
		}
		if diff := cmp.Diff([]string{"cache/p/e/b:shared", "cache/p/e/c:shared", "cache/p/e/a:shared"}, order); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
		if got[2].Bytes != 100 || !got[2].UsedAt.Equal(t0.Add(time.Hour)) || !got[2].SavedAt.Equal(t0) {
			t.Errorf("entry a = %+v", got[2])
		}
		// Saved again: new size and time.
		if err := b.s.PutCacheEntry(b.ctx, store.CacheEntry{Ref: "cache/p/e/b:shared", Project: "p", Bytes: 7, SavedAt: t0.Add(2 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := b.s.DeleteCacheEntry(b.ctx, "cache/p/e/c:shared"); err != nil {
			t.Fatal(err)
		}
		got, err = b.s.CacheEntries(b.ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Ref != "cache/p/e/a:shared" || got[1].Bytes != 7 {
			t.Errorf("after a save and a delete: %+v", got)
		}
	})
	t.Run("AttemptCaches", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		r, _, a := startedAttempt(t, b)
		c := store.AttemptCache{AttemptID: a.ID, RunID: r.ID, Key: "a-01", Outcome: "prefix", RestoredKey: "a-00", RestoredBytes: 12,
			Saved: "saved", SavedBytes: 30, UploadedBytes: 18, Scope: "shared.p"}
		if err := b.s.RecordAttemptCache(b.ctx, c); err != nil {
			t.Fatal(err)
		}
		second := c
		second.Outcome = "exact"
		if err := b.s.RecordAttemptCache(b.ctx, second); err != nil {
			t.Fatal(err)
		}
		got, err := b.s.RunAttemptCaches(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]store.AttemptCache{c}, got); diff != "" {
			t.Errorf("attempt caches (-want +got):\n%s", diff)
		}
	})
}
