package planner_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/planner"
)

const hermeticPipeline = `version: 1
jobs:
  a:
    run: cat pkg/a/*
    inputs: ["pkg/a/**"]
    hermetic: true
  b:
    run: cat pkg/b/*
    inputs: ["pkg/b/**"]
`

var hermeticFiles = map[string]string{
	"pkg/a/main.txt":   "a\n",
	"pkg/b/main.txt":   "b\n",
	"shared/cfg.json":  "{}\n",
	"shared/lib/x.txt": "x\n",
	"unrelated.txt":    "no job reads this\n",
}

var hermeticLinks = map[string]string{
	"pkg/a/cfg.json": "../../shared/cfg.json",
	"pkg/a/lib":      "../../shared/lib",
	"pkg/a/gen.txt":  "../../gen/out.txt", // dangling: nothing generated yet
}

func paths(entries []gitx.TreeEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Path
	}
	return out
}

// TestHermeticInputFiles: a hermetic job's files are those of its digest,
// symlinks and what they lead to in the repository included, from a plan of
// the working tree (with its uncommitted and untracked files) and from a
// commit alike.
func TestHermeticInputFiles(t *testing.T) {
	t.Parallel()
	f, c0 := newLinkFixture(t, hermeticPipeline, hermeticFiles, hermeticLinks)
	wantAt0 := []string{"pkg/a/cfg.json", "pkg/a/gen.txt", "pkg/a/lib", "pkg/a/main.txt", "shared/cfg.json", "shared/lib/x.txt"}

	p := f.plan(planner.Trigger{Kind: planner.TriggerManual, Head: c0})
	got, err := p.InputFiles("a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantAt0, paths(got)); diff != "" {
		t.Errorf("files of a at %s (-want +got):\n%s", c0, diff)
	}
	if j, _ := p.Job("a"); !j.Hermetic {
		t.Error("the plan of a does not say it is hermetic")
	}
	if j, _ := p.Job("b"); j.Hermetic {
		t.Error("the plan of b says it is hermetic")
	}
	if !p.HasFile("unrelated.txt") || p.HasFile("pkg/a/nothing") {
		t.Error("HasFile does not tell the tree's files from others")
	}

	cf, err := planner.FilesAtCommit(context.Background(), f.dir, c0, core.JobSpec{Name: "a", Inputs: []string{"pkg/a/**"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, cf.Files); diff != "" {
		t.Errorf("files of a from the commit differ from the plan's (-plan +commit):\n%s", diff)
	}

	// Uncommitted: an edit, a new file, a deleted one, and the dangling
	// link's target appearing.
	f.write("pkg/a/main.txt", "a, edited\n")
	f.write("pkg/a/new.txt", "new\n")
	f.remove("shared/lib/x.txt")
	f.write("shared/lib/y.txt", "y\n")
	f.write("gen/out.txt", "generated\n")
	local := f.plan(planner.Trigger{Kind: planner.TriggerLocal})
	got, err = local.InputFiles("a")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"gen/out.txt", "pkg/a/cfg.json", "pkg/a/gen.txt", "pkg/a/lib", "pkg/a/main.txt", "pkg/a/new.txt", "shared/cfg.json", "shared/lib/y.txt"}
	if diff := cmp.Diff(want, paths(got)); diff != "" {
		t.Errorf("files of a in the working tree (-want +got):\n%s", diff)
	}
	i := slices.IndexFunc(got, func(e gitx.TreeEntry) bool { return e.Path == "pkg/a/main.txt" })
	if at0, _ := p.InputFiles("a"); got[i].ObjectID == at0[3].ObjectID {
		t.Error("the edited file kept its committed blob id")
	}

	if _, err := local.InputFiles("nope"); core.KindOf(err) != core.KindInvalid {
		t.Errorf("InputFiles of an unknown job: %v, want KindInvalid", err)
	}
	plain := makePlan(t, planner.Options{Dir: f.dir, Pipeline: parse(t, strings.ReplaceAll(hermeticPipeline, "hermetic: true", "")),
		Trigger: planner.Trigger{Kind: planner.TriggerLocal}})
	if _, err := plain.InputFiles("a"); core.KindOf(err) != core.KindInvalid {
		t.Errorf("InputFiles of a plan without hermetic jobs: %v, want KindInvalid", err)
	}
}

// TestCommitInputFilesAttributes: the commit's .gitattributes files come
// with the files, so that a checkout of the files alone applies them.
func TestCommitInputFilesAttributes(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.files(map[string]string{
		".gitattributes":       "*.txt text\n",
		"pkg/a/.gitattributes": "*.sh eol=lf\n",
		"pkg/a/run.sh":         "echo a\n",
		"pkg/b/x.txt":          "b\n",
	})
	c := r.commit("attributes")
	cf, err := planner.FilesAtCommit(context.Background(), r.dir, c, core.JobSpec{Name: "a", Inputs: []string{"pkg/a/*.sh"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"pkg/a/run.sh"}, paths(cf.Files)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{".gitattributes", "pkg/a/.gitattributes"}, paths(cf.Attributes)); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	if _, err := planner.FilesAtCommit(context.Background(), r.dir, strings.Repeat("0", 40), core.JobSpec{Name: "a"}); err == nil {
		t.Error("InputFiles of a commit that does not exist: no error")
	}
}

// TestHermeticLinkOutside: a hermetic job whose inputs hold a symlink that
// leads outside the repository has no plan, and the error names the job and
// the link; the same job, not hermetic, plans as before, the link counting
// by its text.
func TestHermeticLinkOutside(t *testing.T) {
	t.Parallel()
	for name, text := range map[string]string{
		"Absolute":     "/etc/hosts",
		"AboveTheTop":  "../../../outside.txt",
		"ThroughALink": "../../shared/up", // shared/up -> ../.. climbs out
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			links := map[string]string{"pkg/a/hosts": text, "shared/up": "../../x"}
			f, _ := newLinkFixture(t, strings.ReplaceAll(hermeticPipeline, "hermetic: true", ""), hermeticFiles, links)
			_, err := planner.Make(context.Background(), planner.Options{Dir: f.dir, Pipeline: parse(t, hermeticPipeline),
				Trigger: planner.Trigger{Kind: planner.TriggerLocal}, Executor: planner.ExecutorShell})
			if core.KindOf(err) != core.KindInvalid {
				t.Fatalf("plan of a hermetic job with a link outside: %v, want KindInvalid", err)
			}
			for _, want := range []string{"job a is hermetic", `symlink "pkg/a/hosts"`, "outside the repository"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			head := f.git("rev-parse", "HEAD")
			if _, err := planner.FilesAtCommit(context.Background(), f.dir, head, core.JobSpec{Name: "a", Inputs: []string{"pkg/a/**"}}); core.KindOf(err) != core.KindInvalid {
				t.Errorf("FilesAtCommit with a link outside: %v, want KindInvalid", err)
			}
			// Not hermetic: a plan, the link counting by its text.
			p := f.plan(planner.Trigger{Kind: planner.TriggerLocal})
			j, _ := p.Job("a")
			if !slices.ContainsFunc(j.Links, func(l planner.Link) bool { return l.Path == "pkg/a/hosts" && l.Kind == planner.LinkOutside }) {
				t.Errorf("links of a, not hermetic: %+v", j.Links)
			}
		})
	}
}

// TestHermeticInDigest: making a job hermetic changes its digest, and only
// its digest (and its dependents'), and the explanation names the field.
func TestHermeticInDigest(t *testing.T) {
	t.Parallel()
	plain := strings.ReplaceAll(hermeticPipeline, "    hermetic: true\n", "")
	f, _ := newLinkFixture(t, plain, hermeticFiles, hermeticLinks)
	f.p = parse(t, hermeticPipeline)
	f.write(".deltaci.yml", hermeticPipeline)
	p := makePlan(t, planner.Options{Dir: f.dir, Pipeline: f.p, Trigger: planner.Trigger{Kind: planner.TriggerLocal},
		Lookup: f.store.lookup, BasePipelineAt: planner.PipelineAt(f.dir)})
	assertDecisions(t, p, decisions{Run: []string{"a"}, Reuse: []string{"b"}})
	if diff := cmp.Diff([]string{"hermetic"}, reason(t, p, "a", planner.ReasonDefinitionChanged).Fields); diff != "" {
		t.Errorf("changed fields (-want +got):\n%s", diff)
	}
}

// TestHermeticFilesFollowExclusions: a hermetic job's files are those the
// planner's InputFiles lists, exclusions applied, from a plan and from a
// commit alike.
func TestHermeticFilesFollowExclusions(t *testing.T) {
	t.Parallel()
	const pl = `version: 1
jobs:
  a:
    run: ls -R src
    inputs: ["src/**", "!src/private/**", "src/private/shared.txt"]
    hermetic: true
`
	r := newRepo(t)
	r.write(".deltaci.yml", pl)
	r.files(map[string]string{"src/a.txt": "a\n", "src/private/key.txt": "k\n", "src/private/shared.txt": "s\n"})
	c := r.commit("files")
	want := []string{"src/a.txt", "src/private/shared.txt"}
	p := makePlan(t, planner.Options{Dir: r.dir, Pipeline: parse(t, pl), Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c}})
	got, err := p.InputFiles("a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, paths(got)); diff != "" {
		t.Errorf("files from the plan (-want +got):\n%s", diff)
	}
	byFunc, err := planner.InputFiles(context.Background(), planner.Options{Dir: r.dir, Pipeline: parse(t, pl),
		Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c}}, "a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, byFunc["a"]); diff != "" {
		t.Errorf("Plan.InputFiles and InputFiles differ (-plan +func):\n%s", diff)
	}
	cf, err := planner.FilesAtCommit(context.Background(), r.dir, c, parse(t, pl).Jobs[0])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, cf.Files); diff != "" {
		t.Errorf("files at the commit differ from the plan's (-plan +commit):\n%s", diff)
	}
	if _, err := planner.FilesAtCommit(context.Background(), r.dir, c, core.JobSpec{Name: "a", Inputs: []string{"src/[x"}}); core.KindOf(err) != core.KindInvalid {
		t.Errorf("a bad glob from a lease: %v, want KindInvalid", err)
	}
}

// TestHermeticGoModule: a hermetic job whose inputs are a Go module sees
// that module and the modules it reaches through local replace
// directives, nothing else, at the commit as in the plan.
func TestHermeticGoModule(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.files(goRepo)
	c := r.commit("modules")
	pl := strings.Replace(goPipeline, "    inputs: [{go: ./svc}, \"!svc/README.md\"]\n", "    inputs: [{go: ./svc}, \"!svc/README.md\"]\n    hermetic: true\n", 1)
	p := makePlan(t, planner.Options{Dir: r.dir, Pipeline: parse(t, pl), Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c}})
	got, err := p.InputFiles("svc")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"deep/deep.go", "deep/go.mod", "lib/go.mod", "lib/lib.go", "svc/api/api.go", "svc/go.mod", "svc/go.sum"}
	if diff := cmp.Diff(want, paths(got)); diff != "" {
		t.Errorf("files of svc (-want +got):\n%s", diff)
	}
	svc, _ := parse(t, pl).Job("svc")
	cf, err := planner.FilesAtCommit(context.Background(), r.dir, c, svc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, cf.Files); diff != "" {
		t.Errorf("files at the commit differ from the plan's (-plan +commit):\n%s", diff)
	}
}
