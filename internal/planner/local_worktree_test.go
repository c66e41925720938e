package planner_test

import (
	"os"
	"testing"

	"github.com/deltaci/deltaci/internal/planner"
)

// assertSameDigests fails unless every job of got has the digest it has
// in want.
func assertSameDigests(t *testing.T, want, got *planner.Plan) {
	t.Helper()
	for i, j := range got.Jobs {
		if j.Digest != want.Jobs[i].Digest {
			t.Errorf("%s: digest %s, want %s, that of the commit", j.Name, j.Digest, want.Jobs[i].Digest)
		}
	}
}

// TestLocalRunFlaggedFiles: files git does not compare with the working
// tree (assume-unchanged, skip-worktree, left out by sparse checkout) count
// as the index holds them, whatever is on disk there: every digest is the
// commit's, and nothing counts as changed. The snapshot writes that same
// content (gitx tests it), so the digest describes what the job sees.
func TestLocalRunFlaggedFiles(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		flag func(f fixture)
	}{
		{"AssumeUnchanged", func(f fixture) {
			f.git("update-index", "--assume-unchanged", "services/api/main.go", "docs/guide.md")
			f.write("services/api/main.go", "package main // edited, flagged\n")
			f.remove("docs/guide.md")
		}},
		{"SkipWorktree", func(f fixture) {
			f.git("update-index", "--skip-worktree", "services/api/main.go", "docs/guide.md")
			f.write("services/api/main.go", "package main // edited, flagged\n")
			f.remove("docs/guide.md")
		}},
		{"SparseNonCone", func(f fixture) {
			f.git("sparse-checkout", "set", "--no-cone", "/*", "!/services/api/")
		}},
		{"SparseCone", func(f fixture) {
			f.git("sparse-checkout", "set", "--cone", "docs")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, c0 := newFixture(t)
			c.flag(f)
			if _, err := os.Stat(f.path("services/web/app.go")); c.name == "SparseCone" && !os.IsNotExist(err) {
				t.Fatalf("services/web is on disk under a cone of docs (stat: %v)", err)
			}
			p := f.plan(local())
			assertBase(t, p, c0, "")
			if p.Dirty || p.ChangedFiles != 0 {
				t.Errorf("dirty = %v with %d changed files, want a clean tree", p.Dirty, p.ChangedFiles)
			}
			assertDecisions(t, p, decisions{
				Reuse: []string{"api", "web", "docs", "lint", "e2e", "whole"},
				Skip:  []string{"deploy"},
			})
			assertSameDigests(t, f.plan(planner.Trigger{Kind: planner.TriggerManual, Head: c0}), p)
		})
	}

	// Without the flag, the same edit is a change like any other.
	t.Run("FlagCleared", func(t *testing.T) {
		t.Parallel()
		f, c0 := newFixture(t)
		f.git("update-index", "--assume-unchanged", "services/api/main.go")
		f.write("services/api/main.go", "package main // edited\n")
		f.git("update-index", "--no-assume-unchanged", "services/api/main.go")
		p := f.plan(local())
		assertBase(t, p, c0, "")
		assertDecisions(t, p, decisions{
			Run:   []string{"api", "lint", "e2e", "whole"},
			Reuse: []string{"web", "docs"},
			Skip:  []string{"deploy"},
		})
	})

	// git reset --soft under sparse checkout: a file left out of the
	// working tree holds, in the index, content HEAD does not have. It is
	// a change, and the digest is that of the content the index holds.
	t.Run("SparseStagedChange", func(t *testing.T) {
		t.Parallel()
		f, c0 := newFixture(t)
		f.write("services/api/main.go", "package main // v2\n")
		c1 := f.commit("v2")
		f.recordAt(c1)
		f.git("sparse-checkout", "set", "--no-cone", "/*", "!/services/api/")
		f.git("reset", "-q", "--soft", c0)
		p := f.plan(local())
		assertBase(t, p, c0, "")
		if !p.Dirty || p.ChangedFiles != 1 {
			t.Errorf("dirty = %v with %d changed files, want the staged main.go", p.Dirty, p.ChangedFiles)
		}
		assertDecisions(t, p, decisions{
			Reuse: []string{"api", "web", "docs", "lint", "e2e", "whole"},
			Skip:  []string{"deploy"},
		})
		assertSameDigests(t, f.plan(planner.Trigger{Kind: planner.TriggerManual, Head: c1}), p)
		reason(t, p, "api", planner.ReasonInputsChanged)
	})
}
