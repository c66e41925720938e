package planner_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/planner"
)

func local() planner.Trigger { return planner.Trigger{Kind: planner.TriggerLocal, Branch: "main"} }

func TestLocalRun(t *testing.T) {
	t.Parallel()

	t.Run("DirtyTreeThenCommitted", func(t *testing.T) {
		t.Parallel()
		f, c0 := newFixture(t)
		f.write("services/web/new.html", "untracked\n")            // untracked
		f.write("services/api/main.go", "package main // dirty\n") // modified, unstaged
		f.remove("docs/guide.md")                                  // deleted, unstaged
		f.write(".deltaci/state.db", "not an input\n")             // our own state

		p := f.plan(local())
		assertBase(t, p, c0, "")
		if !p.Dirty || p.ChangedFiles != 3 {
			t.Errorf("dirty = %v with %d changed files, want true and 3", p.Dirty, p.ChangedFiles)
		}
		assertDecisions(t, p, decisions{
			Run:  []string{"api", "web", "docs", "lint", "e2e", "whole"},
			Skip: []string{"deploy"}, // a local run counts as manual
		})
		f.store.record(p)

		// Committing exactly the working tree changes no digest.
		f.remove(".deltaci/state.db")
		c1 := f.commit("commit the working tree")
		p = f.plan(push(c0, c1, "main"))
		assertDecisions(t, p, decisions{
			Run:   []string{"deploy"},
			Reuse: []string{"api", "web", "docs", "lint", "e2e", "whole"},
		})
	})

	t.Run("BaseIsMergeBaseWithMain", func(t *testing.T) {
		t.Parallel()
		f, c0 := newFixture(t)
		f.git("checkout", "-q", "-b", "feature")
		f.write("docs/guide.md", "# v2\n")
		f.commit("docs")
		f.write("services/web/app.go", "package web // dirty\n")
		p := f.plan(planner.Trigger{Kind: planner.TriggerLocal, Branch: "feature"})
		assertBase(t, p, c0, "")
		if p.ChangedFiles != 2 {
			t.Errorf("changed files = %d, want the commit's and the working tree's", p.ChangedFiles)
		}
		assertDecisions(t, p, decisions{
			Run:   []string{"docs", "web", "lint", "e2e", "whole"},
			Reuse: []string{"api"},
			Skip:  []string{"deploy"},
		})
	})

	t.Run("UpstreamWithoutDefaultBranch", func(t *testing.T) {
		t.Parallel()
		src, _ := newFixture(t)
		src.git("branch", "-m", "main", "trunk")
		clone := repo{t: t, dir: t.TempDir()}
		clone.git("clone", "-q", "file://"+src.dir, clone.dir)
		clone.git("remote", "set-head", "origin", "--delete")
		c0 := clone.git("rev-parse", "HEAD")
		clone.write("README", "v2\n")
		clone.commit("readme")
		p := makePlan(t, planner.Options{Dir: clone.dir, Pipeline: src.p, Trigger: planner.Trigger{Kind: planner.TriggerLocal, Branch: "trunk"}})
		assertBase(t, p, c0, "no default branch")
		if !strings.Contains(p.Base.Reason, "origin/trunk") {
			t.Errorf("base reason = %q, want the upstream", p.Base.Reason)
		}
	})

	t.Run("HEADWhenNothingElse", func(t *testing.T) {
		t.Parallel()
		f, _ := newFixture(t)
		f.git("branch", "-m", "main", "trunk")
		f.write("README", "v2\n")
		c1 := f.commit("readme")
		f.write("docs/new.md", "dirty\n")
		p := f.plan(planner.Trigger{Kind: planner.TriggerLocal, Branch: "trunk"})
		assertBase(t, p, c1, "no default branch; no upstream")
		if p.ChangedFiles != 1 {
			t.Errorf("changed files = %d, want only the uncommitted one", p.ChangedFiles)
		}
		// README changed too, so whole runs whatever the base says.
		assertDecisions(t, p, decisions{
			Run:   []string{"docs", "whole"},
			Reuse: []string{"api", "web", "lint", "e2e"},
			Skip:  []string{"deploy"},
		})
	})

	t.Run("ExplicitBase", func(t *testing.T) {
		t.Parallel()
		f, c0 := newFixture(t)
		f.write("README", "v2\n")
		c1 := f.commit("readme")
		f.write("README", "v3\n")
		p := f.plan(planner.Trigger{Kind: planner.TriggerLocal, Branch: "main", Base: c0[:10]})
		assertBase(t, p, c0, "")
		if c1 == c0 || p.ChangedFiles != 1 {
			t.Errorf("changed files = %d, want README once", p.ChangedFiles)
		}
	})

	t.Run("NoCommitsYet", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		r.files(map[string]string{"services/api/main.go": "package main\n", "README": "x\n"})
		r.git("add", "README")
		p := makePlan(t, planner.Options{Dir: r.dir, Pipeline: parse(t, monorepoPipeline), Trigger: local()})
		if !p.Base.None() || p.Head != "" {
			t.Errorf("base %+v, head %q; want none and none", p.Base, p.Head)
		}
		assertDecisions(t, p, decisions{
			Run:  []string{"api", "web", "docs", "lint", "e2e", "whole"},
			Skip: []string{"deploy"},
		})
		// The files are there all the same: commit them and compare.
		c0 := r.commit("first")
		again := makePlan(t, planner.Options{Dir: r.dir, Pipeline: parse(t, monorepoPipeline), Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c0}})
		for i, j := range again.Jobs {
			if j.Digest != p.Jobs[i].Digest {
				t.Errorf("%s: digest %s before the first commit, %s after", j.Name, p.Jobs[i].Digest, j.Digest)
			}
		}
	})

	t.Run("HostileNames", func(t *testing.T) {
		t.Parallel()
		f, c0 := newFixture(t)
		names := []string{"services/web/new\nline", "services/web/cr\r", "services/web/\"q\"", "services/web/bad\xff", "services/web/sp ace"}
		for _, n := range names {
			f.write(n, n)
		}
		if err := os.Symlink("app.go", f.path("services/web/link")); err != nil {
			t.Fatal(err)
		}
		p := f.plan(local())
		assertBase(t, p, c0, "")
		r := reason(t, p, "web", planner.ReasonInputsChanged)
		if len(r.Files) != len(names)+1 {
			t.Errorf("web lists %d changed files, want %d: %+v", len(r.Files), len(names)+1, r.Files)
		}
		c1 := f.commit("hostile")
		committed := f.plan(push(c0, c1, "main"))
		for i, j := range committed.Jobs {
			if j.Digest != p.Jobs[i].Digest {
				t.Errorf("%s: digest %s from the working tree, %s from its commit", j.Name, p.Jobs[i].Digest, j.Digest)
			}
		}
	})
}

func TestFilters(t *testing.T) {
	t.Parallel()
	const filtered = `version: 1
jobs:
  build:
    run: build
  release:
    needs: [build]
    run: release
    branches: ["release/*", main]
  publish:
    needs: [release]
    run: publish
  pr-only:
    run: check
    events: [pull_request]
  nightly:
    run: nightly
    reuse: false
    events: [manual]
`
	r := newRepo(t)
	r.write("f", "x")
	c0 := r.commit("first")
	r.git("branch", "release/1.0")
	p := parse(t, filtered)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		tr   planner.Trigger
		want decisions
	}{
		{"ReleaseBranchPush", planner.Trigger{Kind: planner.TriggerPush, Head: c0, Before: zeros, Branch: "release/1.0"},
			decisions{Run: []string{"build", "release", "publish"}, Skip: []string{"pr-only", "nightly"}}},
		{"FeaturePush", planner.Trigger{Kind: planner.TriggerPush, Head: c0, Before: c0, Branch: "feature/x"},
			decisions{Run: []string{"build"}, Skip: []string{"release", "publish", "pr-only", "nightly"}}},
		{"PullRequest", planner.Trigger{Kind: planner.TriggerPullRequest, Head: c0, Target: "main", Branch: "main"},
			decisions{Run: []string{"build", "release", "publish", "pr-only"}, Skip: []string{"nightly"}}},
		{"Detached", planner.Trigger{Kind: planner.TriggerManual, Head: c0},
			decisions{Run: []string{"build", "nightly"}, Skip: []string{"release", "publish", "pr-only"}}},
	} {
		plan, err := planner.Make(ctx, planner.Options{Dir: r.dir, Pipeline: p, Executor: planner.ExecutorShell, Trigger: c.tr})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Run(c.name, func(t *testing.T) { assertDecisions(t, plan, c.want) })
		if c.name == "FeaturePush" {
			if r := reason(t, plan, "publish", planner.ReasonUpstreamSkipped); !strings.Contains(r.Text, "release") {
				t.Errorf("publish: %q", r.Text)
			}
			reason(t, plan, "pr-only", planner.ReasonFilteredEvent)
		}
		if c.name == "Detached" {
			if r := reason(t, plan, "release", planner.ReasonFilteredBranch); !strings.Contains(r.Text, "detached") {
				t.Errorf("release: %q", r.Text)
			}
		}
	}
}

func TestNoReuse(t *testing.T) {
	t.Parallel()
	f, c0 := newFixture(t)
	p := makePlan(t, planner.Options{Dir: f.dir, Pipeline: f.p, Lookup: f.store.lookup, NoReuse: true, Trigger: push(c0, c0, "main")})
	assertDecisions(t, p, decisions{Run: allJobs})
	reason(t, p, "api", planner.ReasonNoReuse)
	reason(t, p, "deploy", planner.ReasonReuseDisabled)

	// Another executor is another result.
	p = makePlan(t, planner.Options{Dir: f.dir, Pipeline: f.p, Lookup: f.store.lookup, Executor: planner.ExecutorShell, Trigger: push(c0, c0, "main")})
	assertDecisions(t, p, decisions{Run: allJobs})

	// Another salt is another result.
	p = makePlan(t, planner.Options{Dir: f.dir, Pipeline: f.p, Lookup: f.store.lookup, Salt: "v2", Trigger: push(c0, c0, "main")})
	assertDecisions(t, p, decisions{Run: allJobs})
}

func TestOptionErrors(t *testing.T) {
	t.Parallel()
	r, c0 := monorepo(t)
	p := parse(t, monorepoPipeline)
	ctx := context.Background()
	for name, c := range map[string]struct {
		o    planner.Options
		kind core.Kind
	}{
		"NoPipeline":    {planner.Options{Dir: r.dir, Executor: "shell", Trigger: local()}, core.KindInvalid},
		"BadExecutor":   {planner.Options{Dir: r.dir, Pipeline: p, Executor: "docker", Trigger: local()}, core.KindInvalid},
		"BadTrigger":    {planner.Options{Dir: r.dir, Pipeline: p, Executor: "shell", Trigger: planner.Trigger{Kind: "cron"}}, core.KindInvalid},
		"NoHead":        {planner.Options{Dir: r.dir, Pipeline: p, Executor: "shell", Trigger: planner.Trigger{Kind: planner.TriggerPush}}, core.KindInvalid},
		"UnknownHead":   {planner.Options{Dir: r.dir, Pipeline: p, Executor: "shell", Trigger: push(c0, "nope", "main")}, core.KindNotFound},
		"NoPRTarget":    {planner.Options{Dir: r.dir, Pipeline: p, Executor: "shell", Trigger: planner.Trigger{Kind: planner.TriggerPullRequest, Head: c0}}, core.KindInvalid},
		"NotARepo":      {planner.Options{Dir: t.TempDir(), Pipeline: p, Executor: "shell", Trigger: local()}, core.KindInvalid},
		"BadInputGlob":  {planner.Options{Dir: r.dir, Pipeline: &core.Pipeline{Jobs: []core.JobSpec{{Name: "a", Inputs: []string{"[a"}}}}, Executor: "shell", Trigger: local()}, core.KindInvalid},
		"LocalWithHead": {planner.Options{Dir: r.dir, Pipeline: p, Executor: "shell", Trigger: planner.Trigger{Kind: planner.TriggerLocal, Head: c0}}, core.KindInvalid},
		"NegativeDepth": {planner.Options{Dir: r.dir, Pipeline: p, Executor: "shell", Trigger: local(), DeepenBy: -1}, core.KindInvalid},
	} {
		_, err := planner.Make(ctx, c.o)
		if core.KindOf(err) != c.kind || err == nil {
			t.Errorf("%s: err = %v, want kind %s", name, err, c.kind)
		}
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := planner.Make(canceled, planner.Options{Dir: r.dir, Pipeline: p, Executor: "shell", Trigger: local()})
	if !errors.Is(err, context.Canceled) && core.KindOf(err) != core.KindCanceled {
		t.Errorf("canceled: err = %v, want KindCanceled", err)
	}
}

func TestPullRequestWithoutCommonHistory(t *testing.T) {
	t.Parallel()
	f, _ := newFixture(t)
	f.git("checkout", "-q", "--orphan", "alone")
	f.write("README", "alone\n")
	head := f.commit("unrelated")
	p := f.plan(planner.Trigger{Kind: planner.TriggerPullRequest, Head: head, Target: "main", Branch: "alone"})
	if !p.Base.None() || !strings.Contains(p.Base.Reason, "no common ancestor") {
		t.Errorf("base = %+v, want none for lack of a common ancestor", p.Base)
	}
	p = f.plan(planner.Trigger{Kind: planner.TriggerPullRequest, Head: head, Target: "gone", Branch: "alone"})
	if !p.Base.None() || !strings.Contains(p.Base.Reason, "target gone is not in the repository") {
		t.Errorf("base = %+v, want none for a missing target", p.Base)
	}
}
