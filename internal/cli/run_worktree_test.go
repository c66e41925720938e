package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/gittest"
)

// flaggedStep is one step of a reproduction: what to do to the working
// tree, then what deltaci run must decide and report.
type flaggedStep struct {
	name string
	prep func(t *testing.T, dir string)
	// header is the run's counts, as "(1 to run, 0 reused, 0 skipped)".
	header string
	// status is the job's final state and reason in the summary.
	status string
	// saw is a line the job printed, or "" when it did not run.
	saw string
}

// TestFlaggedFilesRunAsTheDigestSays follows the reproductions of files
// git does not compare with the working tree to the end. A job runs on
// what its digest describes: a file marked assume-unchanged or
// skip-worktree, or left out by sparse checkout, counts as committed,
// whatever the disk holds. So a success is never recorded for content
// other than the digest's, and a later clean checkout never reuses one.
func TestFlaggedFilesRunAsTheDigestSays(t *testing.T) {
	t.Parallel()
	// The job succeeds on src/a.txt = good, fails on bad.
	const oneFile = "version: 1\njobs:\n  check:\n    inputs: [\"src/**\"]\n    run: \"echo saw $(cat src/a.txt); grep -q good src/a.txt\"\n"
	// The job lists src/ and succeeds when nothing under src/bad/ says
	// bad, as when sparse checkout leaves src/bad/ out of a snapshot taken
	// from disk.
	const tree = "version: 1\njobs:\n  check:\n    inputs: [\"src/**\"]\n    run: \"find src -type f | sort | sed 's/^/saw /'; ! grep -rqs bad src/bad\"\n"

	// edit sets or clears a flag on src/a.txt and writes good in it.
	// Cleared with the edit in place, git status, the digest and the job
	// all see the edit.
	edit := func(flag string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			gittest.Git(t, dir, "update-index", flag, "src/a.txt")
			writeTestFile(t, filepath.Join(dir, "src/a.txt"), "good\n")
		}
	}
	undo := func(flag string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			gittest.Git(t, dir, "update-index", flag, "src/a.txt")
			gittest.Git(t, dir, "checkout", "--", "src/a.txt")
		}
	}
	checkout := func(t *testing.T, dir string) { gittest.Git(t, dir, "checkout", "--", "src/a.txt") }
	sparse := func(args ...string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			gittest.Git(t, dir, append([]string{"sparse-checkout", "set"}, args...)...)
			if _, err := os.Stat(filepath.Join(dir, "src/bad")); !os.IsNotExist(err) {
				t.Fatalf("src/bad is on disk under sparse checkout (stat: %v)", err)
			}
		}
	}
	disable := func(t *testing.T, dir string) { gittest.Git(t, dir, "sparse-checkout", "disable") }
	const (
		runs    = "(1 to run, 0 reused, 0 skipped)"
		reused  = "(0 to run, 1 reused, 0 skipped)"
		failed  = "failed|exit code 1"
		success = "succeeded|-"
	)

	for _, c := range []struct {
		name     string
		pipeline string
		steps    []flaggedStep
	}{
		{"AssumeUnchanged", oneFile, []flaggedStep{
			{"committed bad", nil, runs, failed, "saw bad"},
			{"flagged, edited to good", edit("--assume-unchanged"), runs, failed, "saw bad"},
			{"flag cleared, checked out", undo("--no-assume-unchanged"), runs, failed, "saw bad"},
			{"flagged and edited again", edit("--assume-unchanged"), runs, failed, "saw bad"},
			{"flag cleared, edit kept", edit("--no-assume-unchanged"), runs, success, "saw good"},
			{"edit kept", func(*testing.T, string) {}, reused, "reused|-", ""},
			{"checked out", checkout, runs, failed, "saw bad"},
		}},
		{"SkipWorktree", oneFile, []flaggedStep{
			{"committed bad", nil, runs, failed, "saw bad"},
			{"flagged, edited to good", edit("--skip-worktree"), runs, failed, "saw bad"},
			{"flag cleared, checked out", undo("--no-skip-worktree"), runs, failed, "saw bad"},
			{"flagged and edited again", edit("--skip-worktree"), runs, failed, "saw bad"},
			{"flag cleared, edit kept", edit("--no-skip-worktree"), runs, success, "saw good"},
			{"checked out", checkout, runs, failed, "saw bad"},
		}},
		{"SparseNonCone", tree, []flaggedStep{
			{"full checkout", nil, runs, failed, "saw src/bad/x.txt"},
			{"src/bad left out", sparse("--no-cone", "/*", "!/src/bad/"), runs, failed, "saw src/bad/x.txt"},
			{"full checkout again", disable, runs, failed, "saw src/bad/x.txt"},
		}},
		{"SparseCone", tree, []flaggedStep{
			{"full checkout", nil, runs, failed, "saw src/bad/x.txt"},
			{"cone of src/good", sparse("--cone", "src/good"), runs, failed, "saw src/bad/x.txt"},
			{"full checkout again", disable, runs, failed, "saw src/bad/x.txt"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := gittest.Repo(t, map[string]string{
				".deltaci.yml":    c.pipeline,
				".gitignore":      ".deltaci/\n",
				"src/a.txt":       "bad\n",
				"src/bad/x.txt":   "bad\n",
				"src/good/y.txt":  "good\n",
				"src/good/z.txt":  "good\n",
				"docs/readme.txt": "not an input\n",
			})
			for i, s := range c.steps {
				if s.prep != nil {
					s.prep(t, dir)
				}
				var out bytes.Buffer
				code := Run(context.Background(), []string{"run", "--repo", dir}, os.Environ(), &out, &out)
				got := out.String()
				wantCode := 1
				if s.status != failed {
					wantCode = 0
				}
				if code != wantCode || !strings.Contains(got, s.header) || jobStatus(got, "check") != s.status {
					t.Fatalf("run %d (%s): exit %d, want %d, %s and check %s:\n%s", i+1, s.name, code, wantCode, s.header, s.status, got)
				}
				if s.saw != "" && !strings.Contains(got, "check | "+s.saw+"\n") {
					t.Errorf("run %d (%s): the job did not print %q:\n%s", i+1, s.name, s.saw, got)
				}
			}
		})
	}
}

// jobStatus is "state|reason" of job in the summary table of deltaci run.
func jobStatus(out, job string) string {
	i := strings.LastIndex(out, "\nJOB ")
	if i < 0 {
		return ""
	}
	for _, line := range strings.Split(out[i+1:], "\n")[1:] {
		f := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
		if len(f) >= 3 && f[0] == job {
			return f[1] + "|" + f[2]
		}
	}
	return ""
}

func writeTestFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
