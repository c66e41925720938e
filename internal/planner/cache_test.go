package planner_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/planner"
)

const cachePipeline = `version: 1
jobs:
  build:
    run: go build ./...
    inputs: ["**/*.go"]
    cache:
      key: [go.sum, "tools/*.mod"]
      restore-keys: [build-]
      paths: ["~/.cache/go-build"]
  other:
    run: go vet ./...
`

func cacheOf(t *testing.T, r repo, head, executor, yaml string) (*planner.Cache, string) {
	t.Helper()
	p := makePlan(t, planner.Options{Dir: r.dir, Pipeline: parse(t, yaml), Executor: executor,
		Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: head}})
	j, _ := p.Job("build")
	if o, _ := p.Job("other"); o.Cache != nil {
		t.Errorf("a job without cache: has cache %+v", o.Cache)
	}
	return j.Cache, j.Digest
}

func TestCacheKey(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.write("go.sum", "a v1\n")
	r.write("tools/x.mod", "module x\n")
	r.write("main.go", "package main\n")
	first := r.commit("one")
	c, digest := cacheOf(t, r, first, planner.ExecutorSandbox, cachePipeline)
	if c == nil || !regexp.MustCompile(`^build-[0-9a-f]{24}$`).MatchString(c.Key) || c.Files != 2 {
		t.Fatalf("cache %+v: want key build-<24 hex> over 2 files", c)
	}
	if c.RestoreKeys[0] != "build-" || c.Paths[0] != "~/.cache/go-build" {
		t.Errorf("cache %+v: restore keys or paths lost", c)
	}

	t.Run("SameTreeSameKey", func(t *testing.T) {
		again, _ := cacheOf(t, r, first, planner.ExecutorSandbox, cachePipeline)
		if again.Key != c.Key || again.Env != c.Env {
			t.Errorf("key %s then %s for the same tree", c.Key, again.Key)
		}
	})
	t.Run("OtherFilesKeepKey", func(t *testing.T) {
		r.write("main.go", "package main\n\nfunc main() {}\n")
		head := r.commit("code")
		got, d := cacheOf(t, r, head, planner.ExecutorSandbox, cachePipeline)
		if got.Key != c.Key {
			t.Errorf("a file outside the key changed the key: %s then %s", c.Key, got.Key)
		}
		if d == digest {
			t.Error("the digest did not follow main.go")
		}
	})
	t.Run("KeyFileChangesKey", func(t *testing.T) {
		r.write("tools/x.mod", "module x\n\nrequire y v1\n")
		head := r.commit("tools")
		got, _ := cacheOf(t, r, head, planner.ExecutorSandbox, cachePipeline)
		if got.Key == c.Key || got.Env != c.Env {
			t.Errorf("key %s (env %s) after tools/x.mod changed, was %s (env %s)", got.Key, got.Env, c.Key, c.Env)
		}
	})
	t.Run("ExecutorChangesEnv", func(t *testing.T) {
		got, _ := cacheOf(t, r, first, planner.ExecutorShell, cachePipeline)
		if got.Key == c.Key || got.Env == c.Env {
			t.Errorf("the shell executor shares key %s or env %s with the sandbox", got.Key, got.Env)
		}
	})
	t.Run("LabelsChangeEnv", func(t *testing.T) {
		got, _ := cacheOf(t, r, first, planner.ExecutorSandbox, strings.Replace(cachePipeline, "    run: go build ./...\n", "    run: go build ./...\n    runs-on: [gpu]\n", 1))
		if got.Env == c.Env {
			t.Error("runner labels do not change the cache's env")
		}
	})
	t.Run("CacheIsNotInTheDigest", func(t *testing.T) {
		const without = `version: 1
jobs:
  build:
    run: go build ./...
    inputs: ["**/*.go"]
  other:
    run: go vet ./...
`
		p := makePlan(t, planner.Options{Dir: r.dir, Pipeline: parse(t, without), Executor: planner.ExecutorSandbox,
			Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: first}})
		j, _ := p.Job("build")
		if j.Digest != digest {
			t.Errorf("adding a cache changed the digest: %s without, %s with", j.Digest, digest)
		}
	})
}
