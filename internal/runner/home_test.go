package runner_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/workspace/workspacetest"
)

// logsOf returns the log of each job's first attempt, by job name.
func (c *cluster) logsOf(run protocol.Run) map[string]string {
	c.t.Helper()
	logs := map[string]string{}
	for _, j := range run.Jobs {
		if len(j.Attempts) > 0 {
			logs[j.Name] = c.log(j.Attempts[0])
		}
	}
	return logs
}

// TestRemoteSandboxGoBuildCachesInTheJobsHome: on a sandbox runner, go
// build works with Go's default cache locations, which are in the job's
// home: in the attempt's work area, outside its workspace, and removed
// with it.
func TestRemoteSandboxGoBuildCachesInTheJobsHome(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("!!! SKIPPING: the go command is not on PATH")
	}
	if !strings.HasPrefix(goBin, "/usr/") {
		t.Skipf("!!! SKIPPING: go at %s is outside /usr, where the sandbox does not see it", goBin)
	}
	var sb executor.Executor
	for _, ex := range workspacetest.Executors(t) {
		if ex.Name == "sandbox" {
			sb = ex.Exec
		}
	}
	if sb == nil {
		t.Skip("!!! SKIPPING: bwrap is not installed")
	}
	c := newCluster(t)
	work := t.TempDir()
	c.runnerWith(runnerConfig{capacity: 1, exec: sb, dir: work})
	repo := gittest.Repo(t, map[string]string{
		"go.mod":  "module example.com/tiny\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() { println(\"tiny ran\") }\n",
		".deltaci.yml": `version: 1
jobs:
  build:
    timeout: 5m
    run: |
      go build -o tiny . && ./tiny
      echo "home=$HOME cache=$XDG_CACHE_HOME gocache=$(go env GOCACHE)"
      test -n "$(ls "$(go env GOCACHE)")"
      test ! -e .cache && test ! -e go && echo "workspace clean"
`,
	})
	run, err := c.createRun(t, protocol.CreateRunRequest{Repo: repo, Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	run = c.wait(run.ID)
	logs := c.logsOf(run)
	if run.State != string(core.RunSucceeded) {
		t.Fatalf("run %s; log:\n%s", run.State, logs["build"])
	}
	a := job(run, "build").Attempts[0]
	home := filepath.Join(work, "ws", a.ID, "home")
	want := fmt.Sprintf("home=%[1]s cache=%[1]s/.cache gocache=%[1]s/.cache/go-build\n", home)
	if got := logs["build"]; !strings.Contains(got, "tiny ran\n"+want) || !strings.Contains(got, "workspace clean\n") {
		t.Errorf("log:\n%s\nwant the home %s", got, home)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("the job's home is still there after the attempt (stat: %v)", err)
	}
}

// TestRemoteConcurrentJobsHaveHomesOfTheirOwn: two jobs running at once on
// one runner, with the shell executor, each get an empty home of their
// own, which is neither the runner user's home (even with a HOME in the
// runner's base environment) nor the other's; each is gone once its
// attempt is.
func TestRemoteConcurrentJobsHaveHomesOfTheirOwn(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	work := t.TempDir()
	c.runnerWith(runnerConfig{capacity: 2, dir: work})
	meet := t.TempDir() // where the two jobs wait for each other
	// Each job marks its home, then waits (at most a minute) until the
	// other has marked its own, so that both run at once, then lists it.
	script := fmt.Sprintf(`echo "home=$HOME cache=$XDG_CACHE_HOME"
ls -A "$HOME" | sed 's/^/before: /'
touch "$HOME/mine-$DELTACI_JOB" %[1]s/$DELTACI_JOB
i=0; until [ -e %[1]s/a ] && [ -e %[1]s/b ]; do i=$((i+1)); [ $i -lt 600 ] || exit 7; sleep 0.1; done
ls -A "$HOME" | sed 's/^/after: /'`, meet)
	repo := gitRepo(t, fmt.Sprintf("version: 1\njobs:\n  a:\n    run: |\n%[1]s\n  b:\n    run: |\n%[1]s\n", indent(script, "      ")))
	run, err := c.createRun(t, protocol.CreateRunRequest{Repo: repo, Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	run = c.wait(run.ID)
	logs := c.logsOf(run)
	if run.State != string(core.RunSucceeded) {
		t.Fatalf("run %s; logs:\n%v", run.State, logs)
	}
	runnerHome, _ := os.UserHomeDir()
	homes := map[string]string{}
	for _, name := range []string{"a", "b"} {
		m := regexp.MustCompile(`(?m)^home=(\S+) cache=(\S+)$`).FindStringSubmatch(logs[name])
		if m == nil {
			t.Fatalf("%s's log shows no home:\n%s", name, logs[name])
		}
		home := m[1]
		homes[name] = home
		a := job(run, name).Attempts[0]
		if want := filepath.Join(work, "ws", a.ID, "home"); home != want || m[2] != home+"/.cache" {
			t.Errorf("%s: HOME=%s XDG_CACHE_HOME=%s, want %s and its .cache", name, home, m[2], want)
		}
		if home == runnerHome {
			t.Errorf("%s ran in the runner user's home %s", name, runnerHome)
		}
		// Empty at first; only its own mark at the end, though the other
		// job had marked its home by then.
		if strings.Contains(logs[name], "before: ") || !strings.Contains(logs[name], "after: mine-"+name+"\n") ||
			strings.Count(logs[name], "after: ") != 1 {
			t.Errorf("%s's home was not its own:\n%s", name, logs[name])
		}
		if _, err := os.Stat(home); !os.IsNotExist(err) {
			t.Errorf("%s's home is still there after the attempt (stat: %v)", name, err)
		}
	}
	if homes["a"] == homes["b"] {
		t.Errorf("both jobs had the home %s", homes["a"])
	}
	if _, err := os.Stat(filepath.Join(runnerHome, "mine-a")); !os.IsNotExist(err) {
		t.Errorf("a job wrote in the runner user's home (stat: %v)", err)
	}
}

// indent prefixes every line of s with prefix.
func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
