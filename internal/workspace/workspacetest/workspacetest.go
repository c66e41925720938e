// Package workspacetest is what the tests of job workspaces share: the
// workspace methods and executors this machine has, and a pipeline whose
// job changes its workspace in every way beside jobs that must not see it.
package workspacetest

import (
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/executor"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/workspace"
)

// Methods lists the workspace methods that work on this machine, checked
// in a temporary directory. One that does not is logged loudly, and fails
// the test under CI=true, which must cover them all: the kernel's
// overlayfs needs root, fuse-overlayfs its package and /dev/fuse.
func Methods(t *testing.T) []workspace.Method {
	t.Helper()
	out := []workspace.Method{workspace.MethodCopy}
	for _, m := range []workspace.Method{workspace.MethodOverlay, workspace.MethodFuse} {
		_, err := workspace.New(t.Context(), nil, m, t.TempDir())
		switch {
		case err == nil:
			out = append(out, m)
		case os.Getenv("CI") == "true" && (m == workspace.MethodFuse || os.Geteuid() == 0):
			t.Fatalf("CI must cover workspaces of method %s: %v", m, err)
		default:
			t.Logf("!!! NOT TESTING WORKSPACES OF METHOD %s: %v", m, err)
		}
	}
	return out
}

// Executor is an executor and its name for --executor.
type Executor struct {
	Name string
	Exec executor.Executor
}

// Executors returns the shell executor and, where bwrap is installed, the
// sandbox; without bwrap it says so loudly, and fails under CI=true.
func Executors(t *testing.T) []Executor {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	out := []Executor{{"shell", executor.NewShell(log)}}
	if _, err := exec.LookPath("bwrap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bwrap is not installed, and CI must run the sandbox tests: install the bubblewrap package")
		}
		t.Log("!!! NOT TESTING THE SANDBOX EXECUTOR: bwrap is not installed")
		return out
	}
	sb, err := executor.NewSandbox(log, executor.SandboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return append(out, Executor{"sandbox", sb})
}

// Pipeline has a job, mutate, that changes its workspace in every way
// (writes in place, appends, truncates, deletes, renames, creates), one,
// peer, that runs beside it, and one, after, that runs after it: both
// must see the tree as committed. With git (a runner's shell executor,
// whose workspace is a worktree), each job's git state is its own too:
// mutate's git add shows in no other job's status.
func Pipeline(git bool) string {
	pristine := `grep -qx committed data.txt
test "$(cat dir/sub/b.txt)" = b
test "$(cat keep.txt)" = keep
test -f gone.txt && test -f old.txt && test -d tree && ! test -e new.txt && ! test -e fresh.txt
`
	if git {
		pristine += `test "$(git rev-parse HEAD)" = "$DELTACI_COMMIT"
test -z "$(git status --porcelain)"
`
	}
	mutate := `printf 'XX' | dd of=data.txt bs=1 seek=2 conv=notrunc 2>/dev/null
echo more >> dir/a.txt
truncate -s 1 dir/sub/b.txt
: > keep.txt
rm gone.txt
mv old.txt new.txt
rm -r tree
echo fresh > fresh.txt
test "$(cat data.txt)" = coXXitted
`
	if git {
		mutate += "git add -A\ntest -n \"$(git status --porcelain)\"\n"
	}
	indent := func(s string) string {
		return "      " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n      ") + "\n"
	}
	return "version: 1\njobs:\n" +
		"  mutate:\n    run: |\n" + indent(pristine+mutate) +
		"  peer:\n    run: |\n" + indent(pristine) +
		"  after:\n    needs: [mutate]\n    run: |\n" + indent(pristine)
}

// Repo is a repository of Pipeline(git) and the files its jobs read.
func Repo(t *testing.T, git bool, extra map[string]string) string {
	t.Helper()
	files := map[string]string{
		".deltaci.yml": Pipeline(git),
		"data.txt":     "committed\n", "keep.txt": "keep\n", "gone.txt": "gone\n", "old.txt": "old\n",
		"dir/a.txt": "a\n", "dir/sub/b.txt": "b\n", "tree/c.txt": "c\n",
	}
	for k, v := range extra {
		files[k] = v
	}
	return gittest.Repo(t, files)
}
