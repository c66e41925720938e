package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
)

// cacheModule is the Go module the cache suite builds.
var cacheModule = map[string]string{
	"go.mod": "module example.com/bench\n\ngo 1.21\n",
	"main.go": `package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

func main() {
	b, _ := json.Marshal(map[string]string{"greeting": strings.ToUpper("hello")})
	fmt.Fprintln(os.Stdout, string(b))
}
`,
}

// cacheJob times its go build step itself, so that the figure is the
// build's alone: not the restore, the save or the checkout.
const cacheJob = `version: 1
jobs:
  build:
    reuse: false
    env: {GOTOOLCHAIN: local}
    cache:
      key: [go.mod]
      paths: ["~/.cache/go-build"]
    run: |
      s=$(date +%s%N); go build -o app .; e=$(date +%s%N)
      echo "go build ns: $((e - s))"
      ./app
`

var buildNanos = regexp.MustCompile(`(?m)^go build ns: (\d+)$`)

// benchCache times the go build step of a Go module job on a sandbox
// runner whose work directory is new each time: cold (nothing cached), then
// warm (its cache restored by the exact key), against go build on the host
// with a warm build cache, in a new directory each time as the job's
// workspace is.
func benchCache(ctx context.Context, h *harness) ([]Result, error) {
	const name = "second sandboxed run's go build (cache restored by exact key)"
	const goal = "ratio <= 1.5"
	if _, err := exec.LookPath("bwrap"); err != nil {
		return skipped(name, goal, "bwrap (bubblewrap) is not installed"), nil
	}
	if _, err := exec.LookPath("go"); err != nil {
		return skipped(name, goal, "go is not installed"), nil
	}
	rounds := 5
	if h.quick {
		rounds = 2
	}
	srv, err := h.startDeltaci(ctx, "cache", "--executor", "sandbox")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	base := "http://" + srv.addr
	files := map[string]string{".deltaci.yml": cacheJob}
	for n, c := range cacheModule {
		files[n] = c
	}
	repo, err := h.gitRepo(ctx, "cache-repo", files)
	if err != nil {
		return nil, err
	}
	user := &protocol.Client{BaseURL: base, Token: apiToken}
	if err := addProject(ctx, user, repo); err != nil {
		return nil, err
	}
	sandboxed := func(i int) (time.Duration, error) {
		r, err := h.startRunner(ctx, base, fmt.Sprintf("cache-runner-%d", i), "sandbox", nil)
		if err != nil {
			return 0, err
		}
		defer r.stop()
		return cacheBuildOnce(ctx, user, repo)
	}
	cold, err := sandboxed(0)
	if err != nil {
		return nil, err
	}
	var warms []time.Duration
	for i := 1; i <= rounds; i++ {
		d, err := sandboxed(i)
		if err != nil {
			return nil, err
		}
		warms = append(warms, d)
	}

	// The host: a build cache of its own, warmed by a first build.
	gocache := filepath.Join(h.dir, "cache-host-gocache")
	hostBuild := func(i int) (time.Duration, error) {
		dir := filepath.Join(h.dir, fmt.Sprintf("cache-host-%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return 0, err
		}
		for n, c := range cacheModule {
			if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
				return 0, err
			}
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-o", "app", ".")
		cmd.Dir, cmd.Env = dir, append(os.Environ(), "GOCACHE="+gocache, "GOTOOLCHAIN=local", "GOFLAGS=")
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("go build on the host: %w\n%s", err, out)
		}
		return time.Since(start), nil
	}
	hostCold, err := hostBuild(0)
	if err != nil {
		return nil, err
	}
	var hosts []time.Duration
	for i := 1; i <= rounds; i++ {
		d, err := hostBuild(i)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, d)
	}
	warm, host := millis(medianDuration(warms)), millis(medianDuration(hosts))
	return []Result{{
		Name: name, Value: warm, Unit: "ms",
		Baseline: "warm go build on the host, ms", BaselineValue: host, Ratio: warm / host,
		Goal: goal, Met: warm/host <= 1.5,
		Note: fmt.Sprintf("medians of %d runs, each on a new runner work directory; the job's own timing of go build", rounds),
	}, {
		Name: "first sandboxed run's go build (cold: nothing cached)", Value: millis(cold), Unit: "ms",
		Baseline: "cold go build on the host, ms", BaselineValue: millis(hostCold), Ratio: millis(cold) / millis(hostCold),
		Goal: "report", Met: true,
		Note: "one run each: what the cache saves is this minus the warm figure",
	}}, nil
}

// cacheBuildOnce runs the cache job once and returns its go build time.
func cacheBuildOnce(ctx context.Context, user *protocol.Client, repo string) (time.Duration, error) {
	run, err := user.CreateRun(ctx, protocol.CreateRunRequest{Repo: repo, Ref: "main"})
	if err != nil {
		return 0, err
	}
	for deadline := time.Now().Add(10 * time.Minute); ; {
		if run, err = user.Run(ctx, run.ID); err != nil {
			return 0, err
		}
		if core.RunState(run.State).Terminal() {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("run %s is %s after 10 minutes", run.ID, run.State)
		}
		// Seldom: the polls' work would be timed with the build's.
		time.Sleep(500 * time.Millisecond)
	}
	if len(run.Jobs) != 1 || len(run.Jobs[0].Attempts) == 0 {
		return 0, fmt.Errorf("run %s has no attempt", run.ID)
	}
	a := run.Jobs[0].Attempts[len(run.Jobs[0].Attempts)-1]
	log, err := user.Log(ctx, a.ID, 0)
	if err != nil {
		return 0, err
	}
	m := buildNanos.FindSubmatch(log)
	if a.State != string(core.AttemptSucceeded) || m == nil {
		return 0, fmt.Errorf("the cache job ended %s/%s:\n%s", a.State, a.Reason, log)
	}
	ns, err := strconv.ParseInt(string(m[1]), 10, 64)
	return time.Duration(ns), err
}
