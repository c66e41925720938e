package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/treehash"
	"github.com/deltaci/deltaci/internal/workspace/workspacetest"
)

// TestRunJobWritesLeaveTheSnapshotIntact runs, with each executor and
// workspace method, a job that changes every kind of file of its
// workspace, beside a job and before another over the same snapshot: both
// see the working tree as it is, and so does the user.
func TestRunJobWritesLeaveTheSnapshotIntact(t *testing.T) {
	t.Parallel()
	methods := workspacetest.Methods(t)
	for _, ex := range workspacetest.Executors(t) {
		for _, m := range methods {
			t.Run(ex.Name+"/"+string(m), func(t *testing.T) {
				t.Parallel()
				dir := workspacetest.Repo(t, false, map[string]string{".gitignore": ".deltaci/\n"})
				before := treehash.Of(t, dir, filepath.Join(dir, ".git"))
				var out bytes.Buffer
				code := Run(context.Background(), []string{"run", "--repo", dir, "--jobs", "2",
					"--executor", ex.Name, "--workspaces", string(m)}, os.Environ(), &out, &out)
				if code != 0 {
					t.Fatalf("exit %d:\n%s", code, out.String())
				}
				for _, j := range []string{"mutate", "peer", "after"} {
					if s := jobStatus(out.String(), j); s != "succeeded|-" {
						t.Errorf("%s %s:\n%s", j, s, out.String())
					}
				}
				if after := treehash.Of(t, dir, filepath.Join(dir, ".git"), filepath.Join(dir, ".deltaci")); after != before {
					t.Error("the jobs changed the working tree")
				}
			})
		}
	}
}

// An unknown or unusable --workspaces is a usage error that names it,
// and nothing runs.
func TestRunRefusesABadWorkspacesMethod(t *testing.T) {
	t.Parallel()
	dir := gittest.Repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  a:\n    run: \"true\"\n", ".gitignore": ".deltaci/\n"})
	var out bytes.Buffer
	code := Run(context.Background(), []string{"run", "--repo", dir, "--workspaces", "hardlinks"}, os.Environ(), &out, &out)
	if code != ExitUsage || !strings.Contains(out.String(), `--workspaces: workspace method: "hardlinks" is not one of auto, overlay, fuse-overlayfs, copy`) {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
}

// TestFullyReusedRunTakesNoSnapshot: a run in which every job is reused
// copies nothing of the working tree and makes no workspace.
func TestFullyReusedRunTakesNoSnapshot(t *testing.T) {
	dir := gittest.Repo(t, map[string]string{
		".deltaci.yml": "version: 1\njobs:\n  a:\n    run: \"true\"\n    inputs: [\"src/**\"]\n",
		".gitignore":   ".deltaci/\n", "src/f.txt": "f\n",
	})
	snapshots := 0
	afterSnapshot = func(string) { snapshots++ }
	defer func() { afterSnapshot = func(string) {} }()
	run := func() string {
		t.Helper()
		var out bytes.Buffer
		if code := Run(context.Background(), []string{"run", "--repo", dir}, os.Environ(), &out, &out); code != 0 {
			t.Fatalf("exit %d:\n%s", code, out.String())
		}
		return out.String()
	}
	if out := run(); snapshots != 1 || !strings.Contains(out, "(1 to run, 0 reused") {
		t.Fatalf("first run: %d snapshots:\n%s", snapshots, out)
	}
	if out := run(); snapshots != 1 || !strings.Contains(out, "(0 to run, 1 reused") {
		t.Fatalf("fully reused run: %d snapshots in all, want still 1:\n%s", snapshots, out)
	}
}
