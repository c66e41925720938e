package planner_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/ecosystem"
	"github.com/deltaci/deltaci/internal/planner"
)

// history plans a pipeline over commits of one repository, recording the
// results of each plan, as successive runs of a CI would.
type history struct {
	t    *testing.T
	r    repo
	p    *core.Pipeline
	s    *store
	last string
}

func newHistory(t *testing.T, files map[string]string, yaml string) *history {
	t.Helper()
	r := newRepo(t)
	r.files(files)
	h := &history{t: t, r: r, p: parse(t, yaml), s: newStore(), last: r.commit("initial")}
	h.s.record(makePlan(t, planner.Options{Dir: r.dir, Pipeline: h.p, Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: h.last}}))
	return h
}

// step commits files (an empty content deletes the file), plans the push,
// checks the decisions and records the jobs that ran.
func (h *history) step(name string, files map[string]string, want decisions) *planner.Plan {
	h.t.Helper()
	for p, c := range files {
		if c == "" {
			h.r.remove(p)
			continue
		}
		h.r.write(p, c)
	}
	c := h.r.commit(name)
	pl := makePlan(h.t, planner.Options{Dir: h.r.dir, Pipeline: h.p, Lookup: h.s.lookup, Trigger: push(h.last, c, "main")})
	h.t.Run(name, func(t *testing.T) { assertDecisions(t, pl, want) })
	h.s.record(pl)
	h.last = c
	return pl
}

// files lists the paths InputFiles gives for job at the last commit.
func (h *history) files(job string) []string {
	h.t.Helper()
	got, err := planner.InputFiles(context.Background(), planner.Options{Dir: h.r.dir, Pipeline: h.p,
		Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: h.last}}, job)
	if err != nil {
		h.t.Fatalf("InputFiles(%s): %v", job, err)
	}
	var paths []string
	for _, e := range got[job] {
		paths = append(paths, e.Path)
	}
	return paths
}

func matchedGlob(t *testing.T, p *planner.Plan, job, path string) string {
	t.Helper()
	for _, f := range reason(t, p, job, planner.ReasonInputsChanged).Files {
		if f.Path == path {
			return f.Glob
		}
	}
	t.Fatalf("job %s: %s is not among its changed files:\n%s", job, path, explain(p))
	return ""
}

func TestExclusions(t *testing.T) {
	t.Parallel()
	h := newHistory(t, map[string]string{
		"src/main.go":           "package main\n",
		"src/main_test.go":      "package main\n",
		"src/docs/readme.md":    "# readme\n",
		"src/docs/important.md": "# important\n",
		"other/x":               "x\n",
	}, `version: 1
jobs:
  build:
    run: go build ./src
    inputs: ["src/**", "!src/**/*_test.go", "!src/docs/**", "src/docs/important.md"]
  other:
    run: cat other/x
    inputs: ["other/**"]
`)
	if got, want := h.files("build"), []string{"src/docs/important.md", "src/main.go"}; !cmp.Equal(got, want) {
		t.Errorf("InputFiles(build) = %v, want %v", got, want)
	}
	h.step("ExcludedTest", map[string]string{"src/main_test.go": "package main // edited\n"}, decisions{Reuse: []string{"build", "other"}})
	h.step("ExcludedDoc", map[string]string{"src/docs/readme.md": "# edited\n"}, decisions{Reuse: []string{"build", "other"}})
	p := h.step("IncludedAgain", map[string]string{"src/docs/important.md": "# edited\n"}, decisions{Run: []string{"build"}, Reuse: []string{"other"}})
	if g := matchedGlob(t, p, "build", "src/docs/important.md"); g != "src/docs/important.md" {
		t.Errorf("deciding entry = %q, want the last one", g)
	}
	p = h.step("Source", map[string]string{"src/util.go": "package main\n"}, decisions{Run: []string{"build"}, Reuse: []string{"other"}})
	if g := matchedGlob(t, p, "build", "src/util.go"); g != "src/**" {
		t.Errorf("deciding entry = %q, want src/**", g)
	}
}

func TestInputsFrom(t *testing.T) {
	t.Parallel()
	h := newHistory(t, map[string]string{"lib/a": "1", "app/b": "1", "docs/c": "1"}, `version: 1
jobs:
  lib:
    run: make lib
    inputs: ["lib/**"]
  app:
    run: make app
    inputs: ["app/**"]
    inputs_from: [lib]
  docs:
    run: make docs
    inputs: ["docs/**"]
`)
	p := h.step("LibChanges", map[string]string{"lib/a": "2"}, decisions{Run: []string{"lib", "app"}, Reuse: []string{"docs"}})
	if got := reason(t, p, "app", planner.ReasonInputsFromRuns).Jobs; !cmp.Equal(got, []string{"lib"}) {
		t.Errorf("app's inputs_from_runs = %v, want [lib]", got)
	}
	app, _ := p.Job("app")
	if len(app.Needs) != 0 || !cmp.Equal(app.InputsFrom, []string{"lib"}) {
		t.Errorf("app: needs %v, inputs_from %v; want none and [lib]", app.Needs, app.InputsFrom)
	}
	h.step("AppChanges", map[string]string{"app/b": "2"}, decisions{Run: []string{"app"}, Reuse: []string{"lib", "docs"}})
	h.step("DocsChange", map[string]string{"docs/c": "2"}, decisions{Run: []string{"docs"}, Reuse: []string{"lib", "app"}})
	// Back to the first lib, recorded; app's own files are new.
	h.step("LibBack", map[string]string{"lib/a": "1"}, decisions{Run: []string{"app"}, Reuse: []string{"lib", "docs"}})
}

func TestInputsFromDigestDiffersFromNeeds(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.files(map[string]string{"lib/a": "1", "app/b": "1"})
	c := r.commit("init")
	digest := func(key string) string {
		p := parse(t, `version: 1
jobs:
  lib: {run: make lib, inputs: ["lib/**"]}
  app: {run: make app, inputs: ["app/**"], `+key+`: [lib]}
`)
		pl := makePlan(t, planner.Options{Dir: r.dir, Pipeline: p, Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c}})
		j, _ := pl.Job("app")
		return j.Digest
	}
	// Needs restore outputs into the workspace: another result.
	if a, b := digest("needs"), digest("inputs_from"); a == b {
		t.Errorf("needs and inputs_from give the same digest %s", a)
	}
}

// goRepo is a Go repository of four modules: the root one requires lib
// through a local replace, svc too, and tools is nested in the root
// module without being required.
var goRepo = map[string]string{
	"go.mod":          "module example.com/root\n\ngo 1.22\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ./lib\n",
	"go.sum":          "",
	"main.go":         "package main\n",
	"cmd/x/main.go":   "package main\n",
	"lib/go.mod":      "module example.com/lib\n\ngo 1.22\n\nrequire example.com/deep v0.0.0\n",
	"lib/lib.go":      "package lib\n",
	"deep/go.mod":     "module example.com/deep\n\ngo 1.22\n",
	"deep/deep.go":    "package deep\n",
	"tools/go.mod":    "module example.com/tools\n\ngo 1.22\n",
	"tools/tool.go":   "package tools\n",
	"svc/go.mod":      "module example.com/svc\n\ngo 1.22\n\nrequire (\n\texample.com/lib v0.0.0\n\texample.com/deep v0.0.0\n)\n\nreplace (\n\texample.com/lib => ../lib\n\texample.com/deep => ../deep\n)\n",
	"svc/go.sum":      "golang.org/x/text v0.1.0 h1:x\n",
	"svc/api/api.go":  "package api\n",
	"svc/README.md":   "svc\n",
	"docs/index.md":   "# docs\n",
	".deltaci.yml":    "version: 1\n",
	"tools/README.md": "tools\n",
}

const goPipeline = `version: 1
jobs:
  root:
    run: go test ./...
    inputs: [{go: ./}]
  lib:
    run: go test ./...
    inputs: [{go: ./lib}]
  svc:
    run: go test ./...
    inputs: [{go: ./svc}, "!svc/README.md"]
  tools:
    run: go test ./...
    inputs: [{go: ./tools/}]
`

func TestGoModuleInference(t *testing.T) {
	t.Parallel()
	h := newHistory(t, goRepo, goPipeline)
	// root's go.mod does not replace deep: lib's requirement of it comes
	// from the module cache there (the go command reads the replace
	// directives of the main module only), so deep is not root's input,
	// though it lies in root's directory: it is a module of its own.
	if got, want := h.files("root"), []string{".deltaci.yml", "cmd/x/main.go", "docs/index.md", "go.mod", "go.sum", "lib/go.mod", "lib/lib.go", "main.go"}; !cmp.Equal(got, want) {
		t.Errorf("InputFiles(root) = %v,\nwant %v", got, want)
	}
	if got, want := h.files("svc"), []string{"deep/deep.go", "deep/go.mod", "lib/go.mod", "lib/lib.go", "svc/api/api.go", "svc/go.mod", "svc/go.sum"}; !cmp.Equal(got, want) {
		t.Errorf("InputFiles(svc) = %v,\nwant %v", got, want)
	}
	p := h.step("LibChanges", map[string]string{"lib/lib.go": "package lib // 2\n"}, decisions{Run: []string{"root", "lib", "svc"}, Reuse: []string{"tools"}})
	if g := matchedGlob(t, p, "svc", "lib/lib.go"); g != "{go: ./svc}" {
		t.Errorf("svc matched lib/lib.go by %q", g)
	}
	svc, _ := p.Job("svc")
	want := []planner.Inferred{{Input: "{go: ./svc}",
		Units:   []ecosystem.Unit{{Name: "example.com/svc", Dir: "svc"}, {Name: "example.com/deep", Dir: "deep"}, {Name: "example.com/lib", Dir: "lib"}},
		Include: []string{"deep", "lib", "svc"}}}
	if diff := cmp.Diff(want, svc.Inferred); diff != "" {
		t.Errorf("svc's expansion (-want +got):\n%s", diff)
	}
	h.step("NestedModuleChanges", map[string]string{"tools/tool.go": "package tools // 2\n"}, decisions{Run: []string{"tools"}, Reuse: []string{"root", "lib", "svc"}})
	// A package added later is covered without touching the pipeline.
	h.step("NewSubdirectory", map[string]string{"svc/storage/s3/s3.go": "package s3\n"}, decisions{Run: []string{"svc"}, Reuse: []string{"root", "lib", "tools"}})
	h.step("OwnGoSum", map[string]string{"svc/go.sum": "golang.org/x/text v0.2.0 h1:y\n"}, decisions{Run: []string{"svc"}, Reuse: []string{"root", "lib", "tools"}})
	h.step("Excluded", map[string]string{"svc/README.md": "svc 2\n"}, decisions{Reuse: []string{"root", "lib", "svc", "tools"}})
	h.step("DeepChanges", map[string]string{"deep/deep.go": "package deep // 2\n"}, decisions{Run: []string{"svc"}, Reuse: []string{"root", "lib", "tools"}})
	h.step("RootFile", map[string]string{"docs/index.md": "# docs 2\n"}, decisions{Run: []string{"root"}, Reuse: []string{"lib", "svc", "tools"}})
	// A new module inside root takes its files out of root's inputs.
	h.step("NewNestedModule", map[string]string{"cmd/x/go.mod": "module example.com/x\n"}, decisions{Run: []string{"root"}, Reuse: []string{"lib", "svc", "tools"}})
	if got, want := h.files("root"), []string{".deltaci.yml", "docs/index.md", "go.mod", "go.sum", "lib/go.mod", "lib/lib.go", "main.go"}; !cmp.Equal(got, want) {
		t.Errorf("InputFiles(root) = %v,\nwant %v", got, want)
	}
}

func TestGoModuleInferenceErrors(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.files(map[string]string{
		"ok/go.mod":      "module example.com/ok\n",
		"bad/go.mod":     "module example.com/bad\n\nrequire (\n\tnot a requirement\n",
		"out/go.mod":     "module example.com/out\n\nrequire example.com/x v0.0.0\n\nreplace example.com/x => ../../x\n",
		"nomod/go.mod":   "module example.com/nomod\n\nrequire example.com/y v0.0.0\n\nreplace example.com/y => ../y\n",
		"y/README.md":    "no module here\n",
		"plain/README":   "x\n",
		"unused/go.mod":  "module example.com/unused\n\nreplace example.com/z => ../../z\n",
		"unused/main.go": "package main\n",
	})
	c := r.commit("init")
	for _, tt := range []struct{ name, dir, want string }{
		{"NoGoMod", "./plain", "inputs {go: ./plain}: no go.mod in plain/"},
		{"Missing", "./nowhere", "no go.mod in nowhere/"},
		{"Syntax", "./bad", "bad/go.mod:5: syntax error"},
		{"ReplaceOutside", "./out", "out/go.mod: replace example.com/x => ../../x leads outside the repository"},
		{"ReplaceWithoutModule", "./nomod", "nomod/go.mod: replace example.com/y => ../y: no go.mod in y/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := parse(t, "version: 1\njobs:\n  a:\n    run: x\n    inputs: [{go: "+tt.dir+"}]\n")
			_, err := planner.Make(context.Background(), planner.Options{Dir: r.dir, Pipeline: p, Executor: planner.ExecutorShell,
				Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c}})
			if core.KindOf(err) != core.KindInvalid || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "job a") {
				t.Errorf("Make: %v; want an invalid error naming job a and %q", err, tt.want)
			}
		})
	}
	// A replace the build does not require is not followed.
	p := parse(t, "version: 1\njobs:\n  a:\n    run: x\n    inputs: [{go: ./unused}]\n")
	pl := makePlan(t, planner.Options{Dir: r.dir, Pipeline: p, Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c}})
	if j, _ := pl.Job("a"); len(j.Inferred) != 1 || !cmp.Equal(j.Inferred[0].Include, []string{"unused"}) {
		t.Errorf("unused: %+v", j.Inferred)
	}
}

func TestAffected(t *testing.T) {
	t.Parallel()
	p := parse(t, `version: 1
jobs:
  lib:
    run: x
    inputs: ["lib/**", "!lib/**/*.md", "lib/API.md"]
  app:
    run: x
    inputs: ["app/**"]
    inputs_from: [lib]
  svc:
    run: x
    inputs: [{go: ./svc}, "!**/*.txt"]
  docs:
    run: x
    inputs: ["docs/**"]
`)
	all := []string{"lib", "app", "svc", "docs"}
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"lib/a.go", []string{"lib", "app", "svc"}},
		{"lib/README.md", []string{"svc"}},
		{"lib/API.md", []string{"lib", "app", "svc"}},
		{"docs/x.md", []string{"svc", "docs"}},
		{"notes.txt", nil},
	} {
		// Without the tree, {go: ./svc} may hold any path.
		if got := planner.Affected(p, all, []string{tt.path}); !cmp.Equal(got, tt.want) {
			t.Errorf("Affected(%s) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// TestGoWorkspaceInference: with a go.work, the modules it uses are local
// to each other without replace directives.
func TestGoWorkspaceInference(t *testing.T) {
	t.Parallel()
	h := newHistory(t, map[string]string{
		"go.work":    "go 1.22\n\nuse (\n\t./a\n\t./b\n)\n",
		"a/go.mod":   "module example.com/a\n\ngo 1.22\n\nrequire example.com/b v0.0.0\n",
		"a/a.go":     "package a\n",
		"b/go.mod":   "module example.com/b\n\ngo 1.22\n",
		"b/b.go":     "package b\n",
		"c/go.mod":   "module example.com/c\n\ngo 1.22\n",
		"c/c.go":     "package c\n",
		"README.md":  "x\n",
		"a/x/go.mod": "module example.com/a/x\n",
	}, `version: 1
jobs:
  a:
    run: cd a && go test ./...
    inputs: [{go: ./a}]
  b:
    run: cd b && go test ./...
    inputs: [{go: ./b}]
  c:
    run: cd c && go test ./...
    inputs: [{go: ./c}]
`)
	if got, want := h.files("a"), []string{"a/a.go", "a/go.mod", "b/b.go", "b/go.mod", "go.work"}; !cmp.Equal(got, want) {
		t.Errorf("InputFiles(a) = %v, want %v", got, want)
	}
	h.step("UsedModule", map[string]string{"b/b.go": "package b // 2\n"}, decisions{Run: []string{"a", "b"}, Reuse: []string{"c"}})
	h.step("WorkSum", map[string]string{"go.work.sum": "golang.org/x/text v0.1.0 h1:x\n"}, decisions{Run: []string{"a", "b", "c"}})
	h.step("Other", map[string]string{"c/c.go": "package c // 2\n"}, decisions{Run: []string{"c"}, Reuse: []string{"a", "b"}})
}
