package planner_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/planner"
)

// unmatchedRepo is a small tree whose globs below are typos of its paths.
func unmatchedRepo(t *testing.T) (repo, string) {
	t.Helper()
	r := newRepo(t)
	r.files(map[string]string{
		"src/main.c":           "int main(){}\n",
		"src/util.h":           "\n",
		"services/api/main.go": "package main\n",
		"services/web/app.go":  "package web\n",
		"go.mod":               "module x\n",
		"Makefile":             "all:\n",
	})
	return r, r.commit("init")
}

func TestUnmatchedInputs(t *testing.T) {
	t.Parallel()
	r, c0 := unmatchedRepo(t)
	tests := []struct {
		name, glob, nearest string
	}{
		{"SwappedLetters", "scr/**", "src/"},
		{"DeepDirectory", "services/apu/**", "services/api/"},
		{"LiteralFile", "src/mian.c", "src/main.c"},
		{"StartOfAName", "src/mian*", "src/main.c"},
		{"DirectoryWithoutStars", "src", "src/**"},
		{"FileCase", "makefile", "Makefile"},
		{"NothingClose", "vendor/**", ""},
		{"NoLiteralStart", "**/*.rs", ""},
		{"NoFileBelowAnExistingDirectory", "src/**/*.rs", ""},
		{"ExclusionOfNothing", "!scr/**", "src/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := parse(t, `version: 1
jobs:
  build:
    run: make
    inputs: ["go.mod", "`+tt.glob+`"]
  whole:
    run: make
`)
			pl := makePlan(t, planner.Options{Dir: r.dir, Pipeline: p,
				Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c0}})
			if len(pl.Warnings) != 1 {
				t.Fatalf("warnings = %+v, want one", pl.Warnings)
			}
			w := pl.Warnings[0]
			if w.Code != planner.WarningUnmatchedInput || w.Job != "build" || w.Glob != tt.glob || w.Nearest != tt.nearest {
				t.Errorf("warning = %+v, want job build, glob %q, nearest %q", w, tt.glob, tt.nearest)
			}
			if !strings.Contains(w.Text, `"`+tt.glob+`" matches no file`) {
				t.Errorf("text = %q, want it to name the glob", w.Text)
			}
			if tt.nearest != "" && !strings.Contains(w.Text, "did you mean "+tt.nearest+"?") {
				t.Errorf("text = %q, want it to suggest %s", w.Text, tt.nearest)
			}
			// The job's explanation opens with it, so a server's run shows it.
			j, _ := pl.Job("build")
			if len(j.Why) == 0 || j.Why[0].Code != planner.ReasonUnmatchedInput || j.Why[0].Text != w.Text {
				t.Errorf("build's reasons = %+v, want the warning first", j.Why)
			}
			if !strings.HasPrefix(j.Explain(), w.Text+"; ") {
				t.Errorf("explain = %q, want the warning first", j.Explain())
			}
			if whole, _ := pl.Job("whole"); whole.Why[0].Code == planner.ReasonUnmatchedInput {
				t.Errorf("a job without inputs got a warning: %+v", whole.Why)
			}
		})
	}

	t.Run("MatchingGlobsAreSilent", func(t *testing.T) {
		t.Parallel()
		p := parse(t, "version: 1\njobs:\n  build:\n    run: make\n    inputs: [\"src/**\", \"**/*.go\", \"Makefile\", \"services/{api,web}/**\"]\n")
		pl := makePlan(t, planner.Options{Dir: r.dir, Pipeline: p, Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c0}, Strict: true})
		if len(pl.Warnings) != 0 {
			t.Errorf("warnings = %+v, want none", pl.Warnings)
		}
	})

	t.Run("EveryJobIsNamed", func(t *testing.T) {
		t.Parallel()
		p := parse(t, `version: 1
jobs:
  a: {run: x, inputs: ["scr/**", "go.mod", "docs/**"]}
  b: {run: x, inputs: ["scr/**"], needs: [a]}
`)
		pl := makePlan(t, planner.Options{Dir: r.dir, Pipeline: p, Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c0}})
		var got []string
		for _, w := range pl.Warnings {
			got = append(got, w.String())
		}
		want := []string{
			`job a: input glob "scr/**" matches no file; did you mean src/?`,
			`job a: input glob "docs/**" matches no file`,
			`job b: input glob "scr/**" matches no file; did you mean src/?`,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("warnings (-want +got):\n%s", diff)
		}
	})

	t.Run("UncommittedFilesCount", func(t *testing.T) {
		t.Parallel()
		r, _ := unmatchedRepo(t)
		p := parse(t, "version: 1\njobs:\n  docs:\n    run: x\n    inputs: [\"docs/**\"]\n")
		if pl := makePlan(t, planner.Options{Dir: r.dir, Pipeline: p, Trigger: local()}); len(pl.Warnings) != 1 {
			t.Fatalf("warnings = %+v, want one before docs/ exists", pl.Warnings)
		}
		r.write("docs/guide.md", "# guide\n") // untracked: part of a local run's tree
		if pl := makePlan(t, planner.Options{Dir: r.dir, Pipeline: p, Trigger: local()}); len(pl.Warnings) != 0 {
			t.Errorf("warnings = %+v, want none once the working tree has docs/", pl.Warnings)
		}
	})

	t.Run("StrictIsAnError", func(t *testing.T) {
		t.Parallel()
		const yaml = "version: 1\n%sjobs:\n  build:\n    run: make\n    inputs: [\"scr/**\"]\n"
		for _, tc := range []struct {
			name, top string
			strict    bool
			want      string
		}{
			{"Option", "", true, "the plan is strict"},
			{"File", "strict: true\n", false, "strict: true is set in .deltaci.yml"},
		} {
			p := parse(t, strings.Replace(yaml, "%s", tc.top, 1))
			_, err := planner.Make(context.Background(), planner.Options{Dir: r.dir, Pipeline: p, Executor: planner.ExecutorShell,
				Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c0}, Strict: tc.strict})
			if core.KindOf(err) != core.KindInvalid {
				t.Fatalf("%s: err = %v, want KindInvalid", tc.name, err)
			}
			for _, part := range []string{tc.want, `job build: input glob "scr/**" matches no file; did you mean src/?`} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("%s: err = %q, want %q in it", tc.name, err, part)
				}
			}
		}
	})
}
