package runner_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/treehash"
	"github.com/deltaci/deltaci/internal/workspace/workspacetest"
)

// TestRemoteJobWritesLeaveTheSharedCheckoutIntact runs, on one runner with
// two slots, a job that changes every kind of file of its workspace beside
// and before jobs of the same commit, under each executor and workspace
// method: the other jobs see the commit as it is, the runner's one
// checkout of it keeps every byte, and no workspace is left.
func TestRemoteJobWritesLeaveTheSharedCheckoutIntact(t *testing.T) {
	t.Parallel()
	methods := workspacetest.Methods(t)
	for _, ex := range workspacetest.Executors(t) {
		for _, m := range methods {
			t.Run(ex.Name+"/"+string(m), func(t *testing.T) {
				t.Parallel()
				c := newCluster(t)
				work := t.TempDir()
				stop := c.runnerWith(runnerConfig{capacity: 2, exec: ex.Exec, dir: work, method: m})
				repo := workspacetest.Repo(t, ex.Name == "shell", nil)
				run, err := c.createRun(t, protocol.CreateRunRequest{Repo: repo, Ref: "main"})
				if err != nil {
					t.Fatal(err)
				}
				run = c.wait(run.ID)
				if run.State != string(core.RunSucceeded) {
					for _, j := range run.Jobs {
						for _, a := range j.Attempts {
							t.Logf("%s attempt %d %s:\n%s", j.Name, a.Number, a.State, c.log(a))
						}
					}
					t.Fatalf("run %s", run.State)
				}
				checkouts, err := os.ReadDir(filepath.Join(work, "checkouts"))
				if err != nil || len(checkouts) != 1 {
					t.Fatalf("want one shared checkout, got %v, %v", checkouts, err)
				}
				shared := filepath.Join(work, "checkouts", checkouts[0].Name())
				if got, want := treehash.Of(t, shared, filepath.Join(shared, ".git")), treehash.Of(t, repo, filepath.Join(repo, ".git")); got != want {
					t.Error("the shared checkout differs from the commit after the jobs wrote in their workspaces")
				}
				if entries, _ := os.ReadDir(filepath.Join(work, "ws")); len(entries) > 0 {
					t.Errorf("workspaces left: %v", entries)
				}
				stop()
				// A drained runner removes the checkouts no attempt uses.
				if entries, _ := os.ReadDir(filepath.Join(work, "checkouts")); len(entries) > 0 {
					t.Errorf("checkouts left after the runner stopped: %v", entries)
				}
			})
		}
	}
}
