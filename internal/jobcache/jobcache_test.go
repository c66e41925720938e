package jobcache_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/jobcache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	dir := t.TempDir()
	arts, err := open.Open(context.Background(), open.Config{Database: filepath.Join(dir, "state.db"), Store: filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { arts.Close() })
	return arts.Registry
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func roots(t *testing.T) jobcache.Roots {
	d := t.TempDir()
	return jobcache.Roots{Home: filepath.Join(d, "home"), Workspace: filepath.Join(d, "ws")}
}

func TestSaveRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := newRegistry(t)
	tr := &registry.Transfer{Data: reg.Data, Catalog: reg, Alg: reg.Alg}
	paths := []string{"~/.cache/go-build", "node_modules", "absent"}
	src := roots(t)
	write(t, filepath.Join(src.Home, ".cache/go-build/ab/one"), "one")
	write(t, filepath.Join(src.Home, ".cache/go-build/cd/two"), "two two")
	write(t, filepath.Join(src.Home, "not-cached"), "secret")
	write(t, filepath.Join(src.Workspace, "node_modules/x/index.js"), "js")

	first, err := jobcache.Save(ctx, tr, "test", src, paths, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.Files != 3 || first.Uploaded != 3 || first.Unchanged {
		t.Fatalf("first save %+v: want 3 files uploaded", first)
	}

	dst := roots(t)
	write(t, filepath.Join(dst.Workspace, "main.go"), "package main")
	got, err := jobcache.Restore(ctx, tr, first.Manifest.String(), dst, paths)
	if err != nil {
		t.Fatal(err)
	}
	if got.Files != 3 || got.Bytes != int64(len("one")+len("two two")+len("js")) {
		t.Errorf("restored %+v", got)
	}
	if read(t, filepath.Join(dst.Home, ".cache/go-build/cd/two")) != "two two" || read(t, filepath.Join(dst.Workspace, "node_modules/x/index.js")) != "js" {
		t.Error("restored files differ")
	}
	if _, err := os.Stat(filepath.Join(dst.Home, "not-cached")); err == nil {
		t.Error("a file outside the cache paths was restored")
	}
	if read(t, filepath.Join(dst.Workspace, "main.go")) != "package main" {
		t.Error("the restore touched the workspace outside its paths")
	}

	t.Run("UnchangedIsNotSaved", func(t *testing.T) {
		again, err := jobcache.Save(ctx, tr, "test", dst, paths, first.Manifest.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Unchanged || again.Uploaded != 0 || again.Manifest != first.Manifest {
			t.Errorf("save of the restored tree: %+v", again)
		}
	})
	t.Run("OnlyChangedFilesUpload", func(t *testing.T) {
		write(t, filepath.Join(dst.Home, ".cache/go-build/ef/three"), "three")
		next, err := jobcache.Save(ctx, tr, "test", dst, paths, first.Manifest.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if next.Unchanged || next.Files != 4 || next.Uploaded != 1 || next.Sent != int64(len("three")) {
			t.Errorf("save after one new file: %+v, want 4 files and 1 upload of 5 bytes", next)
		}
	})
}

func TestTreesStayInside(t *testing.T) {
	t.Parallel()
	r := jobcache.Roots{Home: "/h", Workspace: "/w"}
	trees, err := r.Trees([]string{"~/.npm", "web/node_modules/"})
	if err != nil {
		t.Fatal(err)
	}
	if trees[0].Dir != "/h/.npm" || trees[0].Prefix != "home/.npm" || trees[1].Dir != "/w/web/node_modules" || trees[1].Prefix != "workspace/web/node_modules" {
		t.Errorf("trees %+v", trees)
	}
	for _, bad := range []string{"../x", "~/../x", "/etc"} {
		if _, err := r.Trees([]string{bad}); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
}

func TestFind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := newRegistry(t)
	tr := &registry.Transfer{Data: reg.Data, Catalog: reg, Alg: reg.Alg}
	save := func(content, key, scope string) string {
		t.Helper()
		r := roots(t)
		write(t, filepath.Join(r.Workspace, "c/f"), content)
		res, err := jobcache.Save(ctx, tr, "test", r, []string{"c"}, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := jobcache.Ref("p", "env1", key, scope)
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.SetRef(ctx, "test", ref, res.Manifest); err != nil {
			t.Fatal(err)
		}
		return res.Manifest.String()
	}
	older := save("old", "build-aaa", "shared")
	newer := save("new", "build-bbb", "shared")
	own := save("mine", "build-ccc", "branch-1")
	save("another scope's", "build-ddd", "x")

	find := func(q jobcache.Query) (jobcache.Hit, bool) {
		t.Helper()
		q.Project, q.Env = "p", "env1"
		h, ok, err := jobcache.Find(ctx, reg.Meta, q)
		if err != nil {
			t.Fatal(err)
		}
		return h, ok
	}
	if h, ok := find(jobcache.Query{Key: "build-aaa", Scopes: []string{"shared"}}); !ok || h.Match != jobcache.Exact || h.Manifest.String() != older {
		t.Errorf("exact: %+v %v", h, ok)
	}
	if h, ok := find(jobcache.Query{Key: "build-zzz", RestoreKeys: []string{"build-"}, Scopes: []string{"shared"}}); !ok || h.Match != jobcache.Prefix || h.Manifest.String() != newer {
		t.Errorf("prefix: %+v %v, want the newest (%s)", h, ok, newer)
	}
	if h, ok := find(jobcache.Query{Key: "build-zzz", RestoreKeys: []string{"build-"}, Scopes: []string{"branch-1", "shared"}}); !ok || h.Manifest.String() != own {
		t.Errorf("own scope first: %+v %v", h, ok)
	}
	if h, ok := find(jobcache.Query{Key: "build-ccc", Scopes: []string{"shared"}}); ok {
		t.Errorf("a trusted scope found another scope's entry: %+v", h)
	}
	if _, ok := find(jobcache.Query{Key: "build-zzz", RestoreKeys: []string{"test-"}, Scopes: []string{"shared"}}); ok {
		t.Error("a restore key matched nothing it starts")
	}
	if _, ok := find(jobcache.Query{Key: "build-zzz", Scopes: []string{"shared"}}); ok {
		t.Error("found without restore keys")
	}
}
