package planner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/planner"
)

// symlink makes rel a symlink to target, replacing what is there.
func (r repo) symlink(rel, target string) {
	r.t.Helper()
	p := r.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		r.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		r.t.Fatal(err)
	}
}

// linkFixture is a repository, its pipeline and a result store.
type linkFixture struct {
	repo
	store *store
	p     *core.Pipeline
}

func newLinkFixture(t *testing.T, pipeline string, files map[string]string, links map[string]string) (linkFixture, string) {
	t.Helper()
	f := linkFixture{repo: newRepo(t), store: newStore(), p: parse(t, pipeline)}
	f.write(".deltaci.yml", pipeline)
	f.files(files)
	for l, target := range links {
		f.symlink(l, target)
	}
	c0 := f.commit("initial")
	f.store.record(f.plan(planner.Trigger{Kind: planner.TriggerManual, Head: c0}))
	return f, c0
}

func (f linkFixture) plan(tr planner.Trigger) *planner.Plan {
	f.t.Helper()
	return makePlan(f.t, planner.Options{Dir: f.dir, Pipeline: f.p, Trigger: tr, Lookup: f.store.lookup})
}

func assertFiles(t *testing.T, p *planner.Plan, job string, want []planner.FileMatch) {
	t.Helper()
	if diff := cmp.Diff(want, reason(t, p, job, planner.ReasonInputsChanged).Files); diff != "" {
		t.Errorf("%s's changed files (-want +got):\n%s", job, diff)
	}
}

func assertLinks(t *testing.T, p *planner.Plan, job string, want []planner.Link) {
	t.Helper()
	j, ok := p.Job(job)
	if !ok {
		t.Fatalf("no job %s", job)
	}
	if diff := cmp.Diff(want, j.Links); diff != "" {
		t.Errorf("%s's links (-want +got):\n%s", job, diff)
	}
}

// packages is the TypeScript monorepo of the replay: n packages, each with
// its own sources and a link to the root ESLint configuration, one job per
// package over its directory, and a docs job.
func packages(n int) (pipeline string, files, links map[string]string, names []string) {
	var b strings.Builder
	b.WriteString("version: 1\njobs:\n  docs:\n    run: make docs\n    inputs: [\"docs/**\"]\n")
	files = map[string]string{"eslint.config.js": "export default [rules.v1]\n", "docs/guide.md": "# Guide\n", "README": "r\n"}
	links = map[string]string{}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("p%02d", i)
		names = append(names, name)
		fmt.Fprintf(&b, "  %s:\n    run: pnpm --filter %s lint\n    inputs: [\"pkg/%s/**\"]\n", name, name, name)
		files["pkg/"+name+"/src/index.ts"] = "export const name = '" + name + "'\n"
		links["pkg/"+name+"/root.eslint.config.js"] = "../../eslint.config.js"
	}
	return b.String(), files, links, names
}

// TestLinkToRootConfig is the stale reuse of the replay: every package
// links the root ESLint configuration, and a change to the rules reached
// none of the packages' jobs.
func TestLinkToRootConfig(t *testing.T) {
	t.Parallel()
	pipeline, files, links, names := packages(24)
	f, c0 := newLinkFixture(t, pipeline, files, links)

	f.write("eslint.config.js", "export default [rules.v2]\n")
	c1 := f.commit("stricter rules")
	p := f.plan(push(c0, c1, "main"))
	assertDecisions(t, p, decisions{Run: names, Reuse: []string{"docs"}})
	for _, name := range names {
		link := "pkg/" + name + "/root.eslint.config.js"
		assertFiles(t, p, name, []planner.FileMatch{{Path: "eslint.config.js", Status: "modified", Glob: "pkg/" + name + "/**", Via: []string{link}}})
		if r := reason(t, p, name, planner.ReasonInputsChanged); !strings.Contains(r.Text, link+" → eslint.config.js changed") {
			t.Errorf("%s: reason %q does not name the followed link", name, r.Text)
		}
		assertLinks(t, p, name, []planner.Link{{Path: link, Text: "../../eslint.config.js", Target: "eslint.config.js", Kind: planner.LinkFile}})
	}
	assertLinks(t, p, "docs", nil)
	f.store.record(p)

	// An unrelated change leaves every package reused.
	f.write("README", "r2\n")
	c2 := f.commit("readme")
	p = f.plan(push(c1, c2, "main"))
	assertDecisions(t, p, decisions{Reuse: append([]string{"docs"}, names...)})

	// The rules back as they were: the results of the first run are valid again.
	f.write("eslint.config.js", "export default [rules.v1]\n")
	c3 := f.commit("revert")
	p = f.plan(push(c2, c3, "main"))
	assertDecisions(t, p, decisions{Reuse: append([]string{"docs"}, names...)})
	if r := reason(t, p, "p01", planner.ReasonReused); !strings.Contains(r.Text, "run-1 ") {
		t.Errorf("p01: %q, want the first run's result", r.Text)
	}
}

// TestLinkDigestIsTheTarget pins the recipe: a link's target is in the
// digest as if the job's inputs matched it too.
func TestLinkDigestIsTheTarget(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.files(map[string]string{"pkg/a/main.js": "a\n", "shared/cfg.json": "{}\n", "shared/other.json": "[]\n"})
	r.symlink("pkg/a/cfg.json", "../../shared/cfg.json")
	r.symlink("pkg/a/shared", "../../shared")
	c0 := r.commit("initial")
	digest := func(inputs string) string {
		t.Helper()
		p := makePlan(t, planner.Options{Dir: r.dir, Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c0},
			Pipeline: parse(t, "version: 1\njobs:\n  a:\n    run: make\n    inputs: "+inputs+"\n")})
		return p.Jobs[0].Digest
	}
	followed := digest(`["pkg/a/**"]`)
	if want := digest(`["pkg/a/**", "shared/**"]`); followed != want {
		t.Errorf("digest with links followed = %s, want that of the inputs and their targets, %s", followed, want)
	}
	if unfollowed := digest(`["pkg/a/main.js"]`); followed == unfollowed {
		t.Error("the links change nothing in the digest")
	}
}

func TestLinkChain(t *testing.T) {
	t.Parallel()
	const pipeline = "version: 1\njobs:\n  a:\n    run: make a\n    inputs: [\"a/**\"]\n  other:\n    run: make other\n    inputs: [\"other/**\"]\n"
	f, c0 := newLinkFixture(t, pipeline,
		map[string]string{"a/main.c": "int main;\n", "shared/real.cfg": "v1\n", "shared/alt.cfg": "v1\n", "other/x": "x\n"},
		map[string]string{"a/cfg": "../b/cfg", "b/cfg": "../shared/real.cfg"})
	wantLinks := []planner.Link{{Path: "a/cfg", Text: "../b/cfg", Target: "shared/real.cfg", Through: []string{"b/cfg"}, Kind: planner.LinkFile},
		{Path: "b/cfg", Text: "../shared/real.cfg", Target: "shared/real.cfg", Kind: planner.LinkFile}}

	t.Run("TargetChanged", func(t *testing.T) {
		f.git("checkout", "-q", "-b", "target", c0)
		f.write("shared/real.cfg", "v2\n")
		c1 := f.commit("v2")
		p := f.plan(push(c0, c1, "target"))
		assertDecisions(t, p, decisions{Run: []string{"a"}, Reuse: []string{"other"}})
		assertFiles(t, p, "a", []planner.FileMatch{{Path: "shared/real.cfg", Status: "modified", Glob: "a/**", Via: []string{"a/cfg", "b/cfg"}}})
		if r := reason(t, p, "a", planner.ReasonInputsChanged); !strings.Contains(r.Text, "a/cfg → b/cfg → shared/real.cfg changed") {
			t.Errorf("reason %q", r.Text)
		}
		assertLinks(t, p, "a", wantLinks)
	})
	t.Run("LinkOnTheWayChanged", func(t *testing.T) {
		// Same content behind another link text: the job still runs, the
		// text of a link on the way is part of what it reads.
		f.git("checkout", "-q", "-b", "middle", c0)
		f.symlink("b/cfg", "../shared/alt.cfg")
		c1 := f.commit("retarget")
		p := f.plan(push(c0, c1, "middle"))
		assertDecisions(t, p, decisions{Run: []string{"a"}, Reuse: []string{"other"}})
		assertFiles(t, p, "a", []planner.FileMatch{{Path: "b/cfg", Status: "modified", Glob: "a/**", Via: []string{"a/cfg"}}})
	})
	t.Run("Unrelated", func(t *testing.T) {
		f.git("checkout", "-q", "-b", "unrelated", c0)
		f.write("shared/alt.cfg", "v3\n")
		c1 := f.commit("alt")
		p := f.plan(push(c0, c1, "unrelated"))
		assertDecisions(t, p, decisions{Reuse: []string{"a", "other"}})
	})
}

func TestLinkCycle(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		links map[string]string
		want  string
	}{
		{"TwoLinks", map[string]string{"x/l1": "../y/l2", "y/l2": "../x/l1"}, "x/l1 → y/l2 → x/l1"},
		{"Self", map[string]string{"x/l1": "l1"}, "x/l1 → x/l1"},
		{"ThroughDirectory", map[string]string{"x/l1": "../y/d/l2", "y/d": "../z", "z/l2": "../x/l1"}, "x/l1 → y/d → z/l2 → x/l1"},
		{"Growing", map[string]string{"x/l1": "l1/more"}, "more than 40 links"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRepo(t)
			r.write("x/main.c", "int main;\n")
			r.write("elsewhere/file", "e\n")
			for l, target := range c.links {
				r.symlink(l, target)
			}
			c0 := r.commit("cycle")
			tr := planner.Trigger{Kind: planner.TriggerManual, Head: c0}
			o := planner.Options{Dir: r.dir, Trigger: tr, Executor: planner.ExecutorShell,
				Pipeline: parse(t, "version: 1\njobs:\n  a:\n    run: make\n    inputs: [\"x/**\"]\n")}
			_, err := planner.Make(context.Background(), o)
			if core.KindOf(err) != core.KindInvalid || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "job a") {
				t.Fatalf("err = %v, want an invalid plan naming job a and %q", err, c.want)
			}
			// A cycle no job's inputs reach is none of the plan's business.
			o.Pipeline = parse(t, "version: 1\njobs:\n  a:\n    run: make\n    inputs: [\"elsewhere/**\"]\n")
			if _, err := planner.Make(context.Background(), o); err != nil {
				t.Errorf("with the cycle out of reach: %v", err)
			}
		})
	}
}

func TestLinkToDirectory(t *testing.T) {
	t.Parallel()
	const pipeline = "version: 1\njobs:\n  a:\n    run: make a\n    inputs: [\"pkg/a/**\"]\n  b:\n    run: make b\n    inputs: [\"pkg/b/**\"]\n"
	f, c0 := newLinkFixture(t, pipeline,
		map[string]string{"pkg/a/main.js": "a\n", "pkg/b/main.js": "b\n", "shared/x.js": "x\n", "shared/sub/y.js": "y\n", "conf/c.json": "{}\n", "conf/d.json": "{}\n"},
		map[string]string{"pkg/a/shared": "../../shared", "shared/inner": "../conf/c.json"})
	p := f.plan(push(c0, c0, "main"))
	assertLinks(t, p, "a", []planner.Link{
		{Path: "pkg/a/shared", Text: "../../shared", Target: "shared", Kind: planner.LinkDirectory},
		{Path: "shared/inner", Text: "../conf/c.json", Target: "conf/c.json", Kind: planner.LinkFile},
	})

	for _, c := range []struct {
		name string
		edit func()
		want decisions
		file planner.FileMatch
	}{
		{"FileUnder", func() { f.write("shared/sub/y.js", "y2\n") }, decisions{Run: []string{"a"}, Reuse: []string{"b"}},
			planner.FileMatch{Path: "shared/sub/y.js", Status: "modified", Glob: "pkg/a/**", Via: []string{"pkg/a/shared"}}},
		{"FileAdded", func() { f.write("shared/new.js", "n\n") }, decisions{Run: []string{"a"}, Reuse: []string{"b"}},
			planner.FileMatch{Path: "shared/new.js", Status: "added", Glob: "pkg/a/**", Via: []string{"pkg/a/shared"}}},
		{"FileDeleted", func() { f.remove("shared/x.js") }, decisions{Run: []string{"a"}, Reuse: []string{"b"}},
			planner.FileMatch{Path: "shared/x.js", Status: "deleted", Glob: "pkg/a/**", Via: []string{"pkg/a/shared"}}},
		{"LinkInside", func() { f.write("conf/c.json", `{"v": 2}`+"\n") }, decisions{Run: []string{"a"}, Reuse: []string{"b"}},
			planner.FileMatch{Path: "conf/c.json", Status: "modified", Glob: "pkg/a/**", Via: []string{"pkg/a/shared", "shared/inner"}}},
		{"Unrelated", func() { f.write("conf/d.json", "[]\n") }, decisions{Reuse: []string{"a", "b"}}, planner.FileMatch{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.git("checkout", "-q", "-b", strings.ToLower(c.name), c0)
			c.edit()
			c1 := f.commit(c.name)
			p := f.plan(push(c0, c1, strings.ToLower(c.name)))
			assertDecisions(t, p, c.want)
			if c.file.Path != "" {
				assertFiles(t, p, "a", []planner.FileMatch{c.file})
			}
		})
	}
}

func TestLinkToTopAndItself(t *testing.T) {
	t.Parallel()
	// A link to the top of the repository from inside it: the job depends
	// on every file, and the link met again under the top is no cycle.
	const pipeline = "version: 1\njobs:\n  a:\n    run: make a\n    inputs: [\"pkg/a/**\"]\n"
	f, c0 := newLinkFixture(t, pipeline, map[string]string{"pkg/a/main.js": "a\n", "README": "r\n"},
		map[string]string{"pkg/a/top": "../..", "pkg/a/here": "."})
	f.write("README", "r2\n")
	c1 := f.commit("readme")
	p := f.plan(push(c0, c1, "main"))
	assertDecisions(t, p, decisions{Run: []string{"a"}})
	assertFiles(t, p, "a", []planner.FileMatch{{Path: "README", Status: "modified", Glob: "pkg/a/**", Via: []string{"pkg/a/top"}}})
	assertLinks(t, p, "a", []planner.Link{
		{Path: "pkg/a/here", Text: ".", Target: "pkg/a", Kind: planner.LinkDirectory},
		{Path: "pkg/a/top", Text: "../..", Target: ".", Kind: planner.LinkDirectory},
	})
}

func TestLinkIntoSubmodule(t *testing.T) {
	t.Parallel()
	const pipeline = "version: 1\njobs:\n  a:\n    run: make a\n    inputs: [\"pkg/a/**\"]\n"
	f := linkFixture{repo: newRepo(t), store: newStore(), p: parse(t, pipeline)}
	f.write("pkg/a/main.js", "a\n")
	f.symlink("pkg/a/vendored", "../../third_party/lib/src")
	// A submodule that is not checked out: an empty directory and a gitlink.
	if err := os.MkdirAll(f.path("third_party/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	gitlink := func(commit string) {
		f.git("update-index", "--add", "--cacheinfo", "160000,"+commit+",third_party/lib")
	}
	gitlink(strings.Repeat("1", 40))
	c0 := f.commit("initial")
	f.store.record(f.plan(planner.Trigger{Kind: planner.TriggerManual, Head: c0}))
	p := f.plan(push(c0, c0, "main"))
	assertLinks(t, p, "a", []planner.Link{{Path: "pkg/a/vendored", Text: "../../third_party/lib/src", Target: "third_party/lib", Kind: planner.LinkSubmodule}})

	gitlink(strings.Repeat("2", 40))
	c1 := f.commit("bump")
	p = f.plan(push(c0, c1, "main"))
	assertDecisions(t, p, decisions{Run: []string{"a"}})
	assertFiles(t, p, "a", []planner.FileMatch{{Path: "third_party/lib", Status: "modified", Glob: "pkg/a/**", Via: []string{"pkg/a/vendored"}}})
}

func TestLinkOutside(t *testing.T) {
	t.Parallel()
	const pipeline = "version: 1\njobs:\n  a:\n    run: make a\n    inputs: [\"pkg/a/**\"]\n"
	outside := filepath.Join(t.TempDir(), "outside.txt")
	if err := os.WriteFile(outside, []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := linkFixture{repo: newRepo(t), store: newStore(), p: parse(t, pipeline)}
	f.files(map[string]string{"pkg/a/main.js": "a\n", "eslint.config.js": "v1\n"})
	f.symlink("pkg/a/abs", outside)
	f.symlink("pkg/a/up", "../../../outside.txt")
	// Absolute into the checkout: still outside, the job reads it at a
	// path that is not in its workspace.
	f.symlink("pkg/a/into", f.path("eslint.config.js"))
	c0 := f.commit("initial")
	f.store.record(f.plan(planner.Trigger{Kind: planner.TriggerManual, Head: c0}))

	p := f.plan(push(c0, c0, "main"))
	assertLinks(t, p, "a", []planner.Link{
		{Path: "pkg/a/abs", Text: outside, Kind: planner.LinkOutside},
		{Path: "pkg/a/into", Text: f.path("eslint.config.js"), Kind: planner.LinkOutside},
		{Path: "pkg/a/up", Text: "../../../outside.txt", Kind: planner.LinkOutside},
	})

	// What lies behind them is not read: changing it changes nothing.
	if err := os.WriteFile(outside, []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.write("eslint.config.js", "v2\n")
	c1 := f.commit("behind the links")
	p = f.plan(push(c0, c1, "main"))
	assertDecisions(t, p, decisions{Reuse: []string{"a"}})

	// The link itself is an input like any file.
	f.symlink("pkg/a/up", "../../../elsewhere.txt")
	c2 := f.commit("retarget")
	p = f.plan(push(c1, c2, "main"))
	assertDecisions(t, p, decisions{Run: []string{"a"}})
	assertFiles(t, p, "a", []planner.FileMatch{{Path: "pkg/a/up", Status: "modified", Glob: "pkg/a/**"}})
}

func TestLinkDangling(t *testing.T) {
	t.Parallel()
	const pipeline = "version: 1\njobs:\n  a:\n    run: make a\n    inputs: [\"pkg/a/**\"]\n"
	f, c0 := newLinkFixture(t, pipeline, map[string]string{"pkg/a/main.js": "a\n", "lib/file": "f\n"},
		map[string]string{"pkg/a/gen": "../../gen/out.js", "pkg/a/notdir": "../../lib/file/x"})
	p := f.plan(push(c0, c0, "main"))
	assertDecisions(t, p, decisions{Reuse: []string{"a"}})
	assertLinks(t, p, "a", []planner.Link{
		{Path: "pkg/a/gen", Text: "../../gen/out.js", Target: "gen", Kind: planner.LinkDangling},
		{Path: "pkg/a/notdir", Text: "../../lib/file/x", Target: "lib/file", Kind: planner.LinkDangling},
	})

	// The target appears: the job runs, and says through which link.
	f.write("gen/out.js", "generated\n")
	c1 := f.commit("generate")
	p = f.plan(push(c0, c1, "main"))
	assertDecisions(t, p, decisions{Run: []string{"a"}})
	assertFiles(t, p, "a", []planner.FileMatch{{Path: "gen/out.js", Status: "added", Glob: "pkg/a/**", Via: []string{"pkg/a/gen"}}})
	assertLinks(t, p, "a", []planner.Link{
		{Path: "pkg/a/gen", Text: "../../gen/out.js", Target: "gen/out.js", Kind: planner.LinkFile},
		{Path: "pkg/a/notdir", Text: "../../lib/file/x", Target: "lib/file", Kind: planner.LinkDangling},
	})
	f.store.record(p)

	// And gone again: back to the first digest.
	f.remove("gen/out.js")
	c2 := f.commit("clean")
	p = f.plan(push(c1, c2, "main"))
	assertDecisions(t, p, decisions{Reuse: []string{"a"}})
	assertFiles(t, p, "a", []planner.FileMatch{{Path: "gen/out.js", Status: "deleted", Glob: "pkg/a/**", Via: []string{"pkg/a/gen"}}})
	if r := reason(t, p, "a", planner.ReasonReused); !strings.Contains(r.Text, "run-1 ") {
		t.Errorf("a: %q, want the first run's result", r.Text)
	}
}

func TestLinkLocalRun(t *testing.T) {
	t.Parallel()
	pipeline, files, links, names := packages(3)
	f, _ := newLinkFixture(t, pipeline, files, links)

	// The file behind the links edited, not committed.
	f.write("eslint.config.js", "export default [rules.dirty]\n")
	p := f.plan(local())
	assertDecisions(t, p, decisions{Run: names, Reuse: []string{"docs"}})
	assertFiles(t, p, "p02", []planner.FileMatch{{Path: "eslint.config.js", Status: "modified", Glob: "pkg/p02/**",
		Via: []string{"pkg/p02/root.eslint.config.js"}}})
	f.store.record(p)
	f.git("checkout", "--", "eslint.config.js")

	// A link of the working tree, new and untracked, to another file.
	f.write("strict.config.js", "export default [rules.strict]\n")
	f.symlink("pkg/p02/root.eslint.config.js", "../../strict.config.js")
	p = f.plan(local())
	assertDecisions(t, p, decisions{Run: []string{"p02"}, Reuse: []string{"docs", "p01", "p03"}})
	assertLinks(t, p, "p02", []planner.Link{{Path: "pkg/p02/root.eslint.config.js", Text: "../../strict.config.js",
		Target: "strict.config.js", Kind: planner.LinkFile}})
	f.store.record(p)

	// The untracked file behind it edited: only that job runs again.
	f.write("strict.config.js", "export default [rules.stricter]\n")
	p = f.plan(local())
	assertDecisions(t, p, decisions{Run: []string{"p02"}, Reuse: []string{"docs", "p01", "p03"}})
	assertFiles(t, p, "p02", []planner.FileMatch{
		{Path: "pkg/p02/root.eslint.config.js", Status: "modified", Glob: "pkg/p02/**"},
		{Path: "strict.config.js", Status: "added", Glob: "pkg/p02/**", Via: []string{"pkg/p02/root.eslint.config.js"}},
	})
}

func TestLinkJSON(t *testing.T) {
	t.Parallel()
	pipeline, files, links, _ := packages(1)
	f, c0 := newLinkFixture(t, pipeline, files, links)
	f.write("eslint.config.js", "v2\n")
	c1 := f.commit("rules")
	p := f.plan(push(c0, c1, "main"))
	j, _ := p.Job("p01")
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"files":[{"path":"eslint.config.js","status":"modified","glob":"pkg/p01/**","via":["pkg/p01/root.eslint.config.js"]}]`,
		`"links":[{"path":"pkg/p01/root.eslint.config.js","text":"../../eslint.config.js","target":"eslint.config.js","kind":"file"}]`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON of p01 lacks %s:\n%s", want, b)
		}
	}
	j, _ = p.Job("docs")
	if b, _ := json.Marshal(j); strings.Contains(string(b), "links") || strings.Contains(string(b), "via") {
		t.Errorf("JSON of a job without links: %s", b)
	}
}
