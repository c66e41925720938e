package planner_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deltaci/deltaci/internal/planner"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// goldenPlan builds the plan of the golden file: fixed commit dates make
// commit ids, and so the whole JSON, the same on every machine.
func goldenPlan(t *testing.T, configure func(repo)) *planner.Plan {
	t.Helper()
	f, c0 := newFixture(t)
	if configure != nil {
		configure(f.repo)
	}
	f.git("mv", "services/api/run.sh", "services/web/run.sh")
	f.write("docs/new\xff.md", "not UTF-8\n")
	edited := []byte(monorepoPipeline)
	edited = bytes.Replace(edited, []byte("run: make docs"), []byte("run: make docs --strict"), 1)
	f.write(".deltaci.yml", string(edited))
	c1 := f.commit("edit")
	f.write("services/web/empty.txt", "dirty\n")
	if c1 == c0 {
		t.Fatal("no commit")
	}
	return makePlan(t, planner.Options{Dir: f.dir, Pipeline: parse(t, string(edited)), BasePipeline: f.p,
		Trigger: planner.Trigger{Kind: planner.TriggerLocal, Branch: "main", Base: c0}, Lookup: f.store.lookup})
}

func TestJSONGolden(t *testing.T) {
	t.Parallel()
	got, err := json.MarshalIndent(goldenPlan(t, nil), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "plan.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("plan JSON (-golden +got), run with -update if the change is meant:\n%s", diff)
	}
}

// TestSameAcrossGitConfigurations plans the same change in a repository
// whose own configuration changes what git prints by default.
func TestSameAcrossGitConfigurations(t *testing.T) {
	t.Parallel()
	want := goldenPlan(t, nil)
	got := goldenPlan(t, func(r repo) {
		for _, kv := range [][2]string{
			{"diff.renames", "copies"}, {"status.renames", "true"}, {"diff.relative", "true"},
			{"status.relativePaths", "true"}, {"status.showUntrackedFiles", "no"}, {"color.ui", "always"},
			{"core.quotePath", "true"}, {"diff.noprefix", "true"}, {"core.abbrev", "7"},
			{"core.autocrlf", "input"}, {"status.short", "true"}, {"status.branch", "true"},
		} {
			r.git("config", kv[0], kv[1])
		}
	})
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(planner.Plan{})); diff != "" {
		t.Errorf("plan under another git configuration (-default +configured):\n%s", diff)
	}
	if _, ok := got.Job("docs"); !ok || want.ChangedFiles == 0 {
		t.Fatal("the plans are empty")
	}
}
