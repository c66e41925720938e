package planner_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/pipeline"
	"github.com/deltaci/deltaci/internal/planner"
)

// monorepoPipeline is the pipeline of most fixtures: jobs over disjoint
// directories, one over a file type, one without inputs, a needs chain
// and a filtered, non-reusable deploy.
const monorepoPipeline = `version: 1
jobs:
  api:
    run: make api
    inputs: ["services/api/**", "go.mod"]
  web:
    run: make web
    inputs: ["services/web/**"]
  docs:
    run: make docs
    inputs: ["docs/**/*.md"]
  lint:
    run: go vet ./...
    inputs: ["**/*.go"]
  e2e:
    needs: [api, web]
    run: make e2e
    inputs: ["e2e/**"]
  whole:
    run: make all
  deploy:
    needs: [e2e]
    run: ./deploy
    reuse: false
    branches: [main]
    events: [push]
`

var allJobs = []string{"api", "web", "docs", "lint", "e2e", "whole", "deploy"}

// monorepo builds the fixture repository with one commit on main.
func monorepo(t testing.TB) (repo, string) {
	t.Helper()
	r := newRepo(t)
	r.files(map[string]string{
		".deltaci.yml":             monorepoPipeline,
		"go.mod":                   "module example.com/m\n",
		"README":                   "the monorepo\n",
		"services/api/main.go":     "package main\n",
		"services/api/handler.go":  "package main // handler\n",
		"services/api/run.sh":      "#!/bin/sh\n",
		"services/web/app.go":      "package web\n",
		"services/web/empty.txt":   "",
		"services/web/index.html":  "<html>\n",
		"docs/guide.md":            "# Guide\n",
		"docs/api/ref.md":          "# Reference\n",
		"e2e/test.sh":              "#!/bin/sh\n",
		"tools/unrelated/notes.md": "notes, not docs\n",
	})
	return r, r.commit("initial")
}

// fixture is a monorepo with a result store.
type fixture struct {
	repo
	store *store
	p     *core.Pipeline
}

func newFixture(t *testing.T) (fixture, string) {
	t.Helper()
	r, c0 := monorepo(t)
	f := fixture{repo: r, store: newStore(), p: parse(t, monorepoPipeline)}
	f.recordAt(c0)
	return f, c0
}

// recordAt runs every job at commit (a manual run without a base runs
// them all) and records their success.
func (f fixture) recordAt(commit string) {
	f.t.Helper()
	p := f.plan(planner.Trigger{Kind: planner.TriggerManual, Head: commit})
	if !p.Base.None() {
		f.t.Fatalf("a manual run without base got base %+v", p.Base)
	}
	f.store.record(p)
}

func (f fixture) plan(tr planner.Trigger) *planner.Plan {
	f.t.Helper()
	return makePlan(f.t, planner.Options{Dir: f.dir, Pipeline: f.p, Trigger: tr, Lookup: f.store.lookup})
}

func push(before, head, branch string) planner.Trigger {
	return planner.Trigger{Kind: planner.TriggerPush, Before: before, Head: head, Branch: branch}
}

const zeros = "0000000000000000000000000000000000000000"

func assertBase(t *testing.T, p *planner.Plan, commit string, fallback string) {
	t.Helper()
	if p.Base.Commit != commit {
		t.Errorf("base = %.12s (%s), want %.12s", p.Base.Commit, p.Base.Reason, commit)
	}
	if fallback == "" && p.Base.Fallback != "" || !strings.Contains(p.Base.Fallback, fallback) {
		t.Errorf("base fallback = %q, want it to contain %q", p.Base.Fallback, fallback)
	}
}

func TestPush(t *testing.T) {
	t.Parallel()
	f, c0 := newFixture(t)
	f.write("services/api/handler.go", "package main // handler v2\n")
	c1 := f.commit("api")

	p := f.plan(push(c0, c1, "main"))
	assertBase(t, p, c0, "")
	assertDecisions(t, p, decisions{
		Run:   []string{"api", "lint", "e2e", "whole", "deploy"},
		Reuse: []string{"web", "docs"},
	})
	want := []planner.FileMatch{{Path: "services/api/handler.go", Status: "modified", Glob: "services/api/**"}}
	if diff := cmp.Diff(want, reason(t, p, "api", planner.ReasonInputsChanged).Files); diff != "" {
		t.Errorf("api's changed files (-want +got):\n%s", diff)
	}
	if got := reason(t, p, "e2e", planner.ReasonUpstreamRuns).Jobs; !cmp.Equal(got, []string{"api"}) {
		t.Errorf("e2e upstream = %v, want [api]", got)
	}
	reason(t, p, "deploy", planner.ReasonReuseDisabled)
	if r := reason(t, p, "web", planner.ReasonReused); !strings.Contains(r.Text, "run-1 attempt 1") {
		t.Errorf("web reuse text = %q", r.Text)
	}
}

func TestForcePush(t *testing.T) {
	t.Parallel()
	f, c0 := newFixture(t)
	f.git("checkout", "-q", "-b", "feature")
	f.write("services/web/index.html", "<html>v2\n")
	f1 := f.commit("web")
	// The branch is rewritten: f1 is replaced by a docs change.
	f.git("reset", "-q", "--hard", c0)
	f.write("docs/guide.md", "# Guide v2\n")
	f2 := f.commit("docs instead")

	p := f.plan(push(f1, f2, "feature"))
	assertBase(t, p, c0, "force-push")
	assertDecisions(t, p, decisions{
		Run:   []string{"docs", "whole"},
		Reuse: []string{"api", "web", "lint", "e2e"},
		Skip:  []string{"deploy"},
	})
	if r := reason(t, p, "deploy", planner.ReasonFilteredBranch); !strings.Contains(r.Text, "feature") {
		t.Errorf("deploy filter text = %q", r.Text)
	}

	// The server never saw before (a push it missed, then a gc): same fallback.
	p = f.plan(push(strings.Repeat("ab", 20), f2, "feature"))
	assertBase(t, p, c0, "is not in the repository")
	assertDecisions(t, p, decisions{
		Run:   []string{"docs", "whole"},
		Reuse: []string{"api", "web", "lint", "e2e"},
		Skip:  []string{"deploy"},
	})
}

func TestNewBranch(t *testing.T) {
	t.Parallel()
	f, c0 := newFixture(t)
	f.git("checkout", "-q", "-b", "feature")
	f.write("services/web/app.go", "package web // v2\n")
	f1 := f.commit("web")

	for _, before := range []string{zeros, strings.Repeat("0", 64), ""} {
		p := f.plan(push(before, f1, "feature"))
		assertBase(t, p, c0, "all zeros")
		assertDecisions(t, p, decisions{
			Run:   []string{"web", "lint", "e2e", "whole"},
			Reuse: []string{"api", "docs"},
			Skip:  []string{"deploy"},
		})
	}

	// A new branch where a branch already is: nothing changed.
	f.git("checkout", "-q", "-b", "copy", c0)
	p := f.plan(push(zeros, c0, "copy"))
	assertBase(t, p, c0, "all zeros")
	assertDecisions(t, p, decisions{Reuse: []string{"api", "web", "docs", "lint", "e2e", "whole"}, Skip: []string{"deploy"}})
}

func TestAllZeroBefore(t *testing.T) {
	t.Parallel()

	t.Run("OnTheDefaultBranch", func(t *testing.T) {
		t.Parallel()
		f, c0 := newFixture(t)
		p := f.plan(push(zeros, c0, "main"))
		if !p.Base.None() || !strings.Contains(p.Base.Reason, "default branch itself") {
			t.Errorf("base = %+v, want none on the default branch itself", p.Base)
		}
		assertDecisions(t, p, decisions{Run: allJobs}) // recorded results or not
		for _, j := range p.Jobs {
			if r := reason(t, p, j.Name, planner.ReasonNoBase); !strings.Contains(r.Text, "everything runs") {
				t.Errorf("%s: no-base text %q", j.Name, r.Text)
			}
		}
	})

	t.Run("NoDefaultBranch", func(t *testing.T) {
		t.Parallel()
		f, _ := newFixture(t)
		f.git("branch", "-m", "main", "trunk")
		f.write("README", "v2\n")
		c1 := f.commit("readme")
		p := f.plan(push(zeros, c1, "trunk"))
		if !p.Base.None() || !strings.Contains(p.Base.Reason, "no default branch") {
			t.Errorf("base = %+v, want none for lack of a default branch", p.Base)
		}
		assertDecisions(t, p, decisions{Run: []string{"api", "web", "docs", "lint", "e2e", "whole"}, Skip: []string{"deploy"}})
	})
}

// shallowFixture is a source repository with four commits and a depth-1
// clone of it.
func shallowFixture(t *testing.T) (src fixture, clone repo, commits []string) {
	t.Helper()
	src, c0 := newFixture(t)
	src.write("docs/guide.md", "# Guide v2\n")
	c1 := src.commit("docs")
	src.write("services/web/app.go", "package web // v2\n")
	c2 := src.commit("web")
	src.write("README", "v2\n")
	c3 := src.commit("readme")
	clone = repo{t: t, dir: t.TempDir()}
	clone.git("clone", "-q", "--depth", "1", "file://"+src.dir, clone.dir)
	return src, clone, []string{c0, c1, c2, c3}
}

func TestShallowClone(t *testing.T) {
	t.Parallel()

	t.Run("DeepenedOnce", func(t *testing.T) {
		t.Parallel()
		src, clone, c := shallowFixture(t)
		src.recordAt(c[2]) // results recorded from another checkout: digests match
		p := makePlan(t, planner.Options{Dir: clone.dir, Pipeline: src.p, Lookup: src.store.lookup,
			Trigger: push(c[2], c[3], "main")})
		assertBase(t, p, c[2], "shallow clone deepened by 100 commits")
		assertDecisions(t, p, decisions{
			Run:   []string{"whole", "deploy"},
			Reuse: []string{"api", "web", "docs", "lint", "e2e"},
		})
	})

	t.Run("StillMissing", func(t *testing.T) {
		t.Parallel()
		src, clone, c := shallowFixture(t)
		src.recordAt(c[2])
		p := makePlan(t, planner.Options{Dir: clone.dir, Pipeline: src.p, Lookup: src.store.lookup,
			Trigger: push(c[0], c[3], "main"), DeepenBy: 1})
		if !p.Base.None() || !strings.Contains(p.Base.Reason, "shallow clone") || !strings.Contains(p.Base.Reason, "after deepening it by 1 commit") {
			t.Errorf("base = %+v, want none for a shallow clone", p.Base)
		}
		assertDecisions(t, p, decisions{Run: allJobs})
		if ok, _ := gitx.CommitExists(context.Background(), clone.dir, c[2]); !ok {
			t.Error("the clone was not deepened")
		}
	})
}

func TestNonAncestorBase(t *testing.T) {
	t.Parallel()

	t.Run("ExplicitBase", func(t *testing.T) {
		t.Parallel()
		f, _ := newFixture(t)
		f.git("checkout", "-q", "-b", "other")
		f.write("services/web/app.go", "package web // other\n")
		o1 := f.commit("other")
		f.recordAt(o1)
		f.git("checkout", "-q", "main")
		f.write("services/api/main.go", "package main // v2\n")
		c1 := f.commit("api")

		p := f.plan(planner.Trigger{Kind: planner.TriggerManual, Head: c1, Base: o1})
		assertBase(t, p, o1, "")
		// web differs from the base, but its inputs are those recorded at c0.
		assertDecisions(t, p, decisions{
			Run:   []string{"api", "lint", "e2e", "whole"},
			Reuse: []string{"web", "docs"},
			Skip:  []string{"deploy"},
		})
		reason(t, p, "web", planner.ReasonInputsChanged)
		if p.ChangedFiles != 2 {
			t.Errorf("changed files = %d, want 2", p.ChangedFiles)
		}
	})

	t.Run("PullRequestTargetMovedOn", func(t *testing.T) {
		t.Parallel()
		f, c0 := newFixture(t)
		f.git("checkout", "-q", "-b", "feature")
		f.write("services/web/app.go", "package web // feature\n")
		f1 := f.commit("feature")
		f.git("checkout", "-q", "main")
		f.write("services/api/main.go", "package main // v2\n")
		c1 := f.commit("api on main")
		f.recordAt(c1)

		p := f.plan(planner.Trigger{Kind: planner.TriggerPullRequest, Head: f1, Target: "main", Branch: "feature"})
		assertBase(t, p, c0, "")
		assertDecisions(t, p, decisions{
			Run:   []string{"web", "lint", "e2e", "whole"},
			Reuse: []string{"api", "docs"},
			Skip:  []string{"deploy"},
		})
		if p.ChangedFiles != 1 {
			t.Errorf("changed files = %d, want 1: main's own change is not the PR's", p.ChangedFiles)
		}
	})
}

func TestRenameAcrossJobs(t *testing.T) {
	t.Parallel()
	f, c0 := newFixture(t)
	f.git("mv", "services/api/run.sh", "services/web/run.sh")
	c1 := f.commit("move")

	p := f.plan(push(c0, c1, "main"))
	assertDecisions(t, p, decisions{
		Run:   []string{"api", "web", "e2e", "whole", "deploy"},
		Reuse: []string{"docs", "lint"},
	})
	for job, want := range map[string]planner.FileMatch{
		"api": {Path: "services/api/run.sh", Status: "deleted", Glob: "services/api/**"},
		"web": {Path: "services/web/run.sh", Status: "added", Glob: "services/web/**"},
	} {
		if diff := cmp.Diff([]planner.FileMatch{want}, reason(t, p, job, planner.ReasonInputsChanged).Files); diff != "" {
			t.Errorf("%s changed files (-want +got):\n%s", job, diff)
		}
	}
}

func TestDeleteInput(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, path string
		want       decisions
	}{
		{"EmptyFile", "services/web/empty.txt", decisions{
			Run: []string{"web", "e2e", "whole", "deploy"}, Reuse: []string{"api", "docs", "lint"}}},
		{"File", "docs/api/ref.md", decisions{
			Run: []string{"docs", "whole", "deploy"}, Reuse: []string{"api", "web", "lint", "e2e"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, c0 := newFixture(t)
			f.remove(c.path)
			c1 := f.commit("delete")
			p := f.plan(push(c0, c1, "main"))
			assertDecisions(t, p, c.want)
			job := c.want.Run[0]
			if got := reason(t, p, job, planner.ReasonInputsChanged).Files[0]; got.Path != c.path || got.Status != "deleted" {
				t.Errorf("%s changed file = %+v, want %s deleted", job, got, c.path)
			}
		})
	}
}

func TestModeChange(t *testing.T) {
	t.Parallel()
	f, c0 := newFixture(t)
	f.writeMode("services/api/run.sh", "#!/bin/sh\n", 0o755)
	c1 := f.commit("chmod")
	p := f.plan(push(c0, c1, "main"))
	assertDecisions(t, p, decisions{
		Run:   []string{"api", "e2e", "whole", "deploy"},
		Reuse: []string{"web", "docs", "lint"},
	})
	if got := reason(t, p, "api", planner.ReasonInputsChanged).Files[0]; got.Path != "services/api/run.sh" || got.Status != "modified" {
		t.Errorf("api changed file = %+v", got)
	}
}

func TestManyChangedFiles(t *testing.T) {
	t.Parallel()
	f, c0 := newFixture(t)
	const n = 1200
	for i := range n {
		f.write(fmt.Sprintf("docs/generated/p%04d.md", i), "page\n")
	}
	c1 := f.commit("generated docs")
	p := f.plan(push(c0, c1, "main"))
	assertDecisions(t, p, decisions{
		Run:   []string{"docs", "whole", "deploy"},
		Reuse: []string{"api", "web", "lint", "e2e"},
	})
	if p.ChangedFiles != n {
		t.Errorf("changed files = %d, want %d", p.ChangedFiles, n)
	}
	r := reason(t, p, "docs", planner.ReasonInputsChanged)
	if len(r.Files) != planner.MaxListedFiles || r.MoreFiles != n-planner.MaxListedFiles {
		t.Errorf("docs lists %d files and %d more, want %d and %d", len(r.Files), r.MoreFiles, planner.MaxListedFiles, n-planner.MaxListedFiles)
	}
	if r.Files[0].Path != "docs/generated/p0000.md" || r.Files[0].Glob != "docs/**/*.md" {
		t.Errorf("first listed file = %+v", r.Files[0])
	}
}

func TestMergeCommit(t *testing.T) {
	t.Parallel()
	f, c0 := newFixture(t)
	f.git("checkout", "-q", "-b", "feature")
	f.write("services/web/app.go", "package web // feature\n")
	f.commit("feature")
	f.git("checkout", "-q", "main")
	f.write("docs/guide.md", "# Guide v2\n")
	c1 := f.commit("docs on main")
	f.store.record(f.plan(push(c0, c1, "main")))
	f.git("-c", "commit.gpgsign=false", "merge", "-q", "--no-ff", "-m", "merge feature", "feature")
	m := f.git("rev-parse", "HEAD")

	p := f.plan(push(c1, m, "main"))
	assertBase(t, p, c1, "")
	assertDecisions(t, p, decisions{
		Run:   []string{"web", "lint", "e2e", "whole", "deploy"},
		Reuse: []string{"api", "docs"},
	})
}

func TestPipelineEdit(t *testing.T) {
	t.Parallel()
	f, c0 := newFixture(t)
	edited := strings.Replace(monorepoPipeline, "run: make web", "run: make web-v2", 1)
	f.write(".deltaci.yml", edited)
	c1 := f.commit("change web's command")

	var asked string
	atBase := func(ctx context.Context, commit string) (*core.Pipeline, error) {
		asked = commit
		b, err := gitx.FileAt(ctx, f.dir, commit, ".deltaci.yml", pipeline.MaxFileSize)
		if err != nil {
			return nil, err
		}
		return parse(t, string(b)), nil
	}
	p := makePlan(t, planner.Options{Dir: f.dir, Pipeline: parse(t, edited), BasePipelineAt: atBase,
		Trigger: push(c0, c1, "main"), Lookup: f.store.lookup})
	if asked != c0 {
		t.Errorf("base pipeline read at %q, want the base %s", asked, c0)
	}
	assertDecisions(t, p, decisions{
		// whole has no inputs: the pipeline file is part of its tree.
		Run:   []string{"web", "e2e", "whole", "deploy"},
		Reuse: []string{"api", "docs", "lint"},
	})
	if got := reason(t, p, "web", planner.ReasonDefinitionChanged).Fields; !cmp.Equal(got, []string{"run"}) {
		t.Errorf("web's changed fields = %v, want [run]", got)
	}
	if got := reason(t, p, "e2e", planner.ReasonUpstreamRuns).Jobs; !cmp.Equal(got, []string{"web"}) {
		t.Errorf("e2e upstream = %v, want [web]", got)
	}
	if got := reason(t, p, "whole", planner.ReasonInputsChanged).Files; len(got) != 1 || got[0].Path != ".deltaci.yml" || got[0].Glob != "" {
		t.Errorf("whole's changed files = %+v", got)
	}
}

func TestNoInputs(t *testing.T) {
	t.Parallel()
	f, c0 := newFixture(t)
	f.write("README", "v2\n")
	c1 := f.commit("readme")
	p := f.plan(push(c0, c1, "main"))
	assertDecisions(t, p, decisions{
		Run:   []string{"whole", "deploy"},
		Reuse: []string{"api", "web", "docs", "lint", "e2e"},
	})
	f.store.record(p)

	// Nothing changed since: everything that may be reused is.
	p = f.plan(push(c1, c1, "main"))
	assertDecisions(t, p, decisions{
		Run:   []string{"deploy"},
		Reuse: []string{"api", "web", "docs", "lint", "e2e", "whole"},
	})
	if p.ChangedFiles != 0 {
		t.Errorf("changed files = %d, want 0", p.ChangedFiles)
	}
}

func TestNeedsChain(t *testing.T) {
	t.Parallel()
	const chain = `version: 1
jobs:
  gen:
    run: gen
    inputs: ["gen/**"]
  build:
    needs: [gen]
    run: build
    inputs: ["src/**"]
  test:
    needs: [build]
    run: test
    inputs: ["test/**"]
  pack:
    needs: [test, gen]
    run: pack
    inputs: ["pack/**"]
  other:
    run: other
    inputs: ["other/**"]
`
	r := newRepo(t)
	r.files(map[string]string{"gen/schema": "v1", "src/a": "a", "test/t": "t", "pack/p": "p", "other/o": "o"})
	c0 := r.commit("initial")
	s := newStore()
	p := parse(t, chain)
	s.record(makePlan(t, planner.Options{Dir: r.dir, Pipeline: p, Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c0}}))
	r.write("gen/schema", "v2")
	c1 := r.commit("schema")

	plan := makePlan(t, planner.Options{Dir: r.dir, Pipeline: p, Lookup: s.lookup, Trigger: push(c0, c1, "main")})
	assertDecisions(t, plan, decisions{Run: []string{"gen", "build", "test", "pack"}, Reuse: []string{"other"}})
	if got := reason(t, plan, "test", planner.ReasonUpstreamRuns).Jobs; !cmp.Equal(got, []string{"build"}) {
		t.Errorf("test upstream = %v, want [build]", got)
	}
	if got := reason(t, plan, "pack", planner.ReasonUpstreamRuns).Jobs; !cmp.Equal(got, []string{"gen", "test"}) {
		t.Errorf("pack upstream = %v, want [gen test]", got)
	}
	j, _ := plan.Job("test")
	for _, r := range j.Why {
		if r.Code == planner.ReasonInputsChanged {
			t.Errorf("test's own inputs did not change, yet: %+v", r)
		}
	}
}

func TestNeedsCycle(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.write("f", "x")
	c0 := r.commit("initial")
	for name, p := range map[string]*core.Pipeline{
		"Cycle": {Version: 1, Jobs: []core.JobSpec{
			{Name: "a", Run: "a", Needs: []string{"b"}, Reuse: true},
			{Name: "b", Run: "b", Needs: []string{"a"}, Reuse: true},
			{Name: "c", Run: "c", Reuse: true},
		}},
		"UnknownNeed": {Version: 1, Jobs: []core.JobSpec{{Name: "a", Run: "a", Needs: []string{"ghost"}}}},
	} {
		_, err := planner.Make(context.Background(), planner.Options{Dir: r.dir, Pipeline: p, Executor: planner.ExecutorShell,
			Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c0}})
		if !errors.Is(err, core.ErrInvalid) {
			t.Errorf("%s: err = %v, want KindInvalid", name, err)
		}
	}
}
