package main_test

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
)

// goCachePipeline builds a Go module in the sandbox, keeping Go's build
// cache at its default place under the job's home, and says how many
// packages the build compiled (none when the cache is warm).
const goCachePipeline = `version: 1
jobs:
  build:
    reuse: false
    env: {GOTOOLCHAIN: local, GOFLAGS: -mod=mod}
    cache:
      key: [go.mod, go.sum]
      restore-keys: [build-]
      paths: ["~/.cache/go-build"]
    run: |
      echo "GOCACHE=$(go env GOCACHE)"
      go build -x -o hello . 2> build.log || { cat build.log; exit 1; }
      echo "compiled $(grep -c '/compile ' build.log) packages"
      ./hello
`

// TestGoCacheWarmsTheSecondSandboxedRun: a Go module job runs twice on a
// sandbox runner, each time with a fresh work directory. The first starts
// cold and saves Go's build cache; the second restores it by the exact key
// and its go build compiles the module's own package alone (its workspace,
// a new directory for each attempt, is part of that package's cache key),
// not the standard library again.
func TestGoCacheWarmsTheSecondSandboxedRun(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bwrap (bubblewrap) is required under CI=true")
		}
		t.Skip("!!! SKIPPING the Go cache test: bwrap (bubblewrap) is not installed")
	}
	srv := startServer(t, serverOpts{executor: "sandbox"})
	dir := repo(t, map[string]string{
		".deltaci.yml": goCachePipeline,
		"go.mod":       "module example.com/hello\n\ngo 1.21\n",
		"main.go":      "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from the sandbox\") }\n",
	})
	compiled := regexp.MustCompile(`(?m)^compiled (\d+) packages$`)
	runOnce := func(what string) (string, int) {
		t.Helper()
		r := srv.startRunner(t, runnerOpts{executor: "sandbox"}) // a fresh work directory
		defer r.kill(t)
		run := srv.waitRunEnds(t, srv.createRun(t, dir, "main").ID)
		j := run.Jobs[0]
		log := string(sealedLog(t, srv, *lastAttempt(j)))
		if j.State != string(core.JobSucceeded) || !strings.Contains(log, "hello from the sandbox") {
			t.Fatalf("%s run: build %s (%s):\n%s", what, j.State, j.Reason, log)
		}
		m := compiled.FindStringSubmatch(log)
		if m == nil {
			t.Fatalf("%s run: no count of compiled packages:\n%s", what, log)
		}
		n, _ := strconv.Atoi(m[1])
		return log, n
	}
	first, cold := runOnce("first")
	key := regexp.MustCompile(`deltaci: cache cold \(no entry for key (build-[0-9a-f]{24})\)`).FindStringSubmatch(first)
	if key == nil || !strings.Contains(first, "deltaci: cache saved (key "+key[1]) || cold == 0 {
		t.Fatalf("first run: want a cold start, a save and compiled packages (%d):\n%s", cold, first)
	}
	second, warm := runOnce("second")
	if !strings.Contains(second, "deltaci: cache restored (exact key "+key[1]+", ") {
		t.Errorf("second run did not restore the exact key %s:\n%s", key[1], second)
	}
	if warm > 1 || cold < 10 {
		t.Errorf("second run compiled %d packages (the first %d): the build cache was not warm:\n%s", warm, cold, second)
	}
}
