package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/fs"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/s3"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/s3/miniotest"
	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	elpostgres "github.com/deltaci/deltaci/internal/artifact/eventlog/postgres"
	elsqlite "github.com/deltaci/deltaci/internal/artifact/eventlog/sqlite"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

var minio miniotest.Shared

func TestMain(m *testing.M) { goleak.VerifyTestMain(minio.StopAfter(m)) }

// engine is one combination of metadata database and blob store.
type engine struct {
	name string
	meta func(t testing.TB, dir string) eventlog.Driver
	blob func(t testing.TB, dir string) blobstore.Store
}

var engines = []engine{
	{
		name: "SQLite+fs",
		meta: func(t testing.TB, dir string) eventlog.Driver {
			drv, err := elsqlite.Open(context.Background(), filepath.Join(dir, "meta.db"))
			if err != nil {
				t.Fatal(err)
			}
			return drv
		},
		blob: func(t testing.TB, dir string) blobstore.Store {
			s, err := fs.Open(filepath.Join(dir, "store"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	},
	{
		name: "PostgreSQL+MinIO",
		meta: func(t testing.TB, dir string) eventlog.Driver {
			drv, err := elpostgres.Open(context.Background(), storetest.PostgresURL(t))
			if err != nil {
				t.Fatal(err)
			}
			return drv
		},
		blob: func(t testing.TB, dir string) blobstore.Store {
			srv := minio.Server(t)
			// A prefix of its own, so parallel tests never see each other's blobs.
			s, err := s3.Open(context.Background(), "s3://"+srv.Bucket+"/"+store.NewID(), s3.Options{
				Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			return s
		},
	},
}

// each runs test once per engine combination, as parallel subtests.
func each(t *testing.T, test func(t *testing.T, e engine)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			test(t, e)
		})
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

type bundle struct {
	reg   *registry.Registry
	clock *clock
	ctx   context.Context
	dir   string
}

func setup(t testing.TB, e engine) bundle {
	t.Helper()
	dir := t.TempDir()
	c := &clock{}
	meta := eventlog.New(e.meta(t, dir), eventlog.WithClock(c.now))
	t.Cleanup(func() { meta.Close() })
	blobs := e.blob(t, dir)
	data, err := dataplane.NewLocal(meta, blobs, filepath.Join(dir, "staging"))
	if err != nil {
		t.Fatal(err)
	}
	return bundle{reg: &registry.Registry{Meta: meta, Data: data, Blobs: blobs, Alg: digest.SHA256}, clock: c, ctx: context.Background(), dir: dir}
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e engine) {
		b := setup(t, e)
		src := filepath.Join(b.dir, "src")
		writeTree(t, src, map[string]string{"a.txt": "alpha", "bin/tool": "#!/bin/sh\n", "deep/x/y/z": "zz", "empty": "", "dup": "alpha"})
		if err := os.Chmod(filepath.Join(src, "bin/tool"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../a.txt", filepath.Join(src, "bin/link")); err != nil {
			t.Fatal(err)
		}
		res, err := b.reg.Push(b.ctx, "alice", src, "outputs/build:v1", registry.PushOptions{Annotations: map[string]string{"job": "build"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Files != 5 || res.Uploaded != 4 || res.Bytes != 5+10+2+0+5 {
			t.Errorf("push result = %+v", res)
		}
		again, err := b.reg.Push(b.ctx, "alice", src, "outputs/build:v2", registry.PushOptions{Annotations: map[string]string{"job": "build"}})
		if err != nil || again.Uploaded != 0 || again.Manifest != res.Manifest {
			t.Errorf("second push uploaded %d blobs (manifest %s vs %s): %v", again.Uploaded, again.Manifest, res.Manifest, err)
		}
		dest := filepath.Join(b.dir, "dest")
		pr, err := b.reg.Pull(b.ctx, "outputs/build:v1", dest, nil)
		if err != nil {
			t.Fatal(err)
		}
		if pr.Manifest != res.Manifest || pr.Files != 5 {
			t.Errorf("pull = %+v", pr)
		}
		for name, want := range map[string]string{"a.txt": "alpha", "bin/tool": "#!/bin/sh\n", "deep/x/y/z": "zz", "empty": "", "dup": "alpha"} {
			got, err := os.ReadFile(filepath.Join(dest, name))
			if err != nil || string(got) != want {
				t.Errorf("%s = %q, %v", name, got, err)
			}
		}
		if fi, _ := os.Stat(filepath.Join(dest, "bin/tool")); fi.Mode().Perm() != 0o755 {
			t.Errorf("tool mode = %v", fi.Mode())
		}
		if fi, _ := os.Stat(filepath.Join(dest, "a.txt")); fi.Mode().Perm() != 0o644 {
			t.Errorf("a.txt mode = %v", fi.Mode())
		}
		if target, err := os.Readlink(filepath.Join(dest, "bin/link")); err != nil || target != "../a.txt" {
			t.Errorf("link = %q, %v", target, err)
		}
		if _, err := b.reg.Pull(b.ctx, res.Manifest.String(), dest, nil); core.KindOf(err) != core.KindInvalid {
			t.Errorf("pull into a non-empty directory: %v", err)
		}
		// A single file pushes as a one-entry manifest.
		one, err := b.reg.Push(b.ctx, "alice", filepath.Join(src, "a.txt"), "", registry.PushOptions{})
		if err != nil || one.Files != 1 {
			t.Fatalf("single file push = %+v, %v", one, err)
		}
		_, m, _ := b.reg.Manifest(b.ctx, one.Manifest.String())
		if len(m.Entries) != 1 || m.Entries[0].Path != "a.txt" {
			t.Errorf("single file manifest = %+v", m)
		}
	})
}

func TestPushRefusesEscapingSymlink(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e engine) {
		b := setup(t, e)
		for _, target := range []string{"../../etc/passwd", "/etc/passwd", "../outside"} {
			src := filepath.Join(b.dir, "src-"+fmt.Sprint(len(target)))
			writeTree(t, src, map[string]string{"ok": "x"})
			if err := os.Symlink(target, filepath.Join(src, "evil")); err != nil {
				t.Fatal(err)
			}
			_, err := b.reg.Push(b.ctx, "mallory", src, "ns/x:1", registry.PushOptions{})
			if core.KindOf(err) != core.KindInvalid || !strings.Contains(err.Error(), "outside") {
				t.Errorf("symlink -> %s: %v", target, err)
			}
		}
	})
}

// A hostile manifest, committed through the API, must not make pull write
// outside the destination.
func TestPullRefusesHostileManifest(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e engine) {
		b := setup(t, e)
		content := []byte("payload")
		d, _ := digest.FromBytes(digest.SHA256, content)
		if _, err := b.reg.Data.Upload(b.ctx, "mallory", digest.SHA256, d, bytes.NewReader(content), int64(len(content))); err != nil {
			t.Fatal(err)
		}
		m := manifest.Manifest{Entries: []manifest.Entry{
			{Path: "a-link", Mode: manifest.ModeSymlink | 0o777, Target: "../../../tmp"},
			{Path: "b", Mode: manifest.ModeRegular | 0o644, Digest: d, Size: int64(len(content))},
		}}
		md, _, err := b.reg.CommitManifest(b.ctx, "mallory", m)
		if err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(b.dir, "dest")
		_, err = b.reg.Pull(b.ctx, md.String(), dest, nil)
		if core.KindOf(err) != core.KindInvalid || !strings.Contains(err.Error(), "outside the destination") {
			t.Fatalf("pull of hostile manifest: %v", err)
		}
		if entries, _ := os.ReadDir(dest); len(entries) != 0 {
			t.Errorf("pull wrote %d entries before refusing", len(entries))
		}
		// Traversal paths cannot even be committed: manifest validation refuses them.
		bad := manifest.Manifest{Entries: []manifest.Entry{{Path: "../x", Mode: manifest.ModeRegular | 0o644, Digest: d, Size: 7}}}
		if _, _, err := b.reg.CommitManifest(b.ctx, "mallory", bad); core.KindOf(err) != core.KindInvalid {
			t.Errorf("manifest with ../ path: %v", err)
		}
	})
}

func TestTagAndResolve(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e engine) {
		b := setup(t, e)
		src := filepath.Join(b.dir, "src")
		writeTree(t, src, map[string]string{"f": "1"})
		res, err := b.reg.Push(b.ctx, "a", src, "ns/app:v1", registry.PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.reg.Tag(b.ctx, "a", "ns/app:stable", "ns/app:v1"); err != nil {
			t.Fatal(err)
		}
		d, err := b.reg.Resolve(b.ctx, "ns/app:stable")
		if err != nil || d != res.Manifest {
			t.Errorf("resolve = %s, %v", d, err)
		}
		if _, err := b.reg.Resolve(b.ctx, "ns/app:nope"); core.KindOf(err) != core.KindNotFound {
			t.Errorf("unknown ref: %v", err)
		}
		if _, err := b.reg.Resolve(b.ctx, "sha256:zz"); core.KindOf(err) != core.KindInvalid {
			t.Errorf("bad digest: %v", err)
		}
	})
}

func TestGCCollectsOnlyUnreachableAfterGrace(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e engine) {
		b := setup(t, e)
		start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		b.clock.set(start)
		keep, drop := filepath.Join(b.dir, "keep"), filepath.Join(b.dir, "drop")
		writeTree(t, keep, map[string]string{"shared": "same bytes", "k": "kept"})
		writeTree(t, drop, map[string]string{"shared": "same bytes", "d": "dropped"})
		k, err := b.reg.Push(b.ctx, "a", keep, "ns/keep:1", registry.PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.reg.Push(b.ctx, "a", drop, "ns/drop:1", registry.PushOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := b.reg.Meta.DeleteRef(b.ctx, "a", eventlog.RefName{Namespace: "ns", Name: "drop", Tag: "1"}, "test"); err != nil {
			t.Fatal(err)
		}
		rep, err := b.reg.GC(b.ctx, "gc", time.Hour)
		if err != nil || rep.Manifests != 0 || rep.Blobs != 0 {
			t.Fatalf("GC inside the grace window: %+v, %v", rep, err)
		}
		b.clock.set(start.Add(2 * time.Hour))
		rep, err = b.reg.GC(b.ctx, "gc", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Manifests != 1 || rep.Blobs != 1 || rep.Bytes != int64(len("dropped")) {
			t.Errorf("GC report = %+v, want 1 manifest and the one unshared blob", rep)
		}
		dest := filepath.Join(b.dir, "out")
		if _, err := b.reg.Pull(b.ctx, k.Manifest.String(), dest, nil); err != nil {
			t.Errorf("kept manifest no longer pulls: %v", err)
		}
		rp, err := b.reg.Meta.Replay(b.ctx)
		if err != nil || !rp.Match() {
			t.Errorf("replay after GC: %+v, %v", rp, err)
		}
	})
}

func TestGCRemovesOrphanBytes(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e engine) {
		b := setup(t, e)
		content := []byte("orphan")
		d, _ := digest.FromBytes(digest.SHA256, content)
		// Bytes in the blob store with no metadata: an upload that died.
		if err := b.reg.Blobs.Put(b.ctx, d, bytes.NewReader(content), int64(len(content))); err != nil {
			t.Fatal(err)
		}
		b.clock.set(time.Now().Add(2 * time.Hour))
		rep, err := b.reg.GC(b.ctx, "gc", time.Hour)
		if err != nil || rep.Orphans != 1 {
			t.Fatalf("GC = %+v, %v", rep, err)
		}
		if _, err := b.reg.Blobs.Stat(b.ctx, d); core.KindOf(err) != core.KindNotFound {
			t.Errorf("orphan still stored: %v", err)
		}
	})
}

func TestRetentionApply(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e engine) {
		b := setup(t, e)
		start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < 4; i++ {
			b.clock.set(start.Add(time.Duration(i) * time.Hour))
			src := filepath.Join(b.dir, fmt.Sprint("s", i))
			writeTree(t, src, map[string]string{"f": fmt.Sprint(i)})
			if _, err := b.reg.Push(b.ctx, "ci", src, fmt.Sprintf("logs/job:%d", i), registry.PushOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.reg.Meta.SetPolicy(b.ctx, "ops", eventlog.Policy{Namespace: "logs", Selector: "**", KeepLast: 2}); err != nil {
			t.Fatal(err)
		}
		plan, err := b.reg.PlanRetention(b.ctx, "logs")
		if err != nil {
			t.Fatal(err)
		}
		var drop []string
		for _, d := range plan {
			if !d.Keep {
				drop = append(drop, d.Ref.Tag)
			}
		}
		if strings.Join(drop, ",") != "0,1" {
			t.Fatalf("plan drops %v", drop)
		}
		refs, _ := b.reg.Meta.Refs(b.ctx, "logs")
		if len(refs) != 4 {
			t.Fatal("planning deleted refs")
		}
		if _, err := b.reg.ApplyRetention(b.ctx, "ops", "logs"); err != nil {
			t.Fatal(err)
		}
		refs, _ = b.reg.Meta.Refs(b.ctx, "logs")
		if len(refs) != 2 || refs[0].Tag != "2" {
			t.Errorf("refs after retention = %+v", refs)
		}
		evs, _ := b.reg.Meta.Audit(b.ctx, eventlog.AuditFilter{Actor: "ops"})
		deleted := 0
		for _, e := range evs {
			if e.Kind == eventlog.RefDeleted {
				var p eventlog.RefPayload
				if err := e.Decode(&p); err != nil || !strings.Contains(p.Reason, "keep_last 2") {
					t.Errorf("ref.deleted reason = %q, %v", p.Reason, err)
				}
				deleted++
			}
		}
		if deleted != 2 {
			t.Errorf("%d ref.deleted events", deleted)
		}
	})
}

func TestPushOnlyAndPullInto(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e engine) {
		b := setup(t, e)
		src := filepath.Join(b.dir, "ws")
		writeTree(t, src, map[string]string{"out/app": "app", "out/skip": "skip", "src/main.go": "x"})
		res, err := b.reg.Push(b.ctx, "ci", src, "outputs/build:1", registry.PushOptions{Only: []string{"out/app"}})
		if err != nil || res.Files != 1 {
			t.Fatalf("push only = %+v, %v", res, err)
		}
		dest := filepath.Join(b.dir, "next")
		writeTree(t, dest, map[string]string{"out/app": "stale", "mine": "kept"})
		tr := &registry.Transfer{Data: b.reg.Data, Catalog: b.reg}
		if _, err := tr.PullInto(b.ctx, "outputs/build:1", dest); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{"out/app": "app", "mine": "kept"} {
			if got, _ := os.ReadFile(filepath.Join(dest, name)); string(got) != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		// A symlinked directory in the destination is never written through.
		evil := filepath.Join(b.dir, "evil")
		outside := filepath.Join(b.dir, "outside")
		os.MkdirAll(outside, 0o755)
		os.MkdirAll(evil, 0o755)
		if err := os.Symlink(outside, filepath.Join(evil, "out")); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.PullInto(b.ctx, "outputs/build:1", evil); core.KindOf(err) != core.KindInvalid {
			t.Errorf("pull through a symlinked directory: %v", err)
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 0 {
			t.Errorf("wrote outside the destination: %v", entries)
		}
	})
}
