package runner_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/runner"
	"github.com/deltaci/deltaci/internal/secret"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/workspace"
)

// cluster is a server in this process, on a real loopback listener, with
// the runners a test starts against it.
type cluster struct {
	t        *testing.T
	url      string
	user     *protocol.Client
	srv      *api.Server
	apitest  *apitest.Server
	projects map[string]bool // repositories registered as projects
}

func newCluster(t *testing.T, opts ...store.Option) *cluster {
	t.Helper()
	return newClusterWith(t, nil, opts...)
}

func newClusterWith(t *testing.T, edit func(*api.Config), opts ...store.Option) *cluster {
	t.Helper()
	srv := apitest.Start(t, apitest.Options{StoreOptions: opts, Edit: func(c *api.Config) {
		c.TTL, c.ReapInterval = 3*time.Second, 200*time.Millisecond
		if edit != nil {
			edit(c)
		}
	}})
	return &cluster{t: t, url: srv.URL, user: srv.User(), srv: srv.API, apitest: srv, projects: map[string]bool{}}
}

// createRun registers the request's repository as a project (with
// edits), the first time, and starts the run.
func (c *cluster) createRun(t *testing.T, req protocol.CreateRunRequest, edits ...func(*core.Project)) (protocol.Run, error) {
	t.Helper()
	if !c.projects[req.Repo] {
		c.apitest.AddProject(t, req.Repo, edits...)
		c.projects[req.Repo] = true
	}
	return c.user.CreateRun(t.Context(), req)
}

// runner starts a runner with capacity slots; cancel drains it.
func (c *cluster) runner(capacity int) context.CancelFunc {
	c.t.Helper()
	return c.runnerWith(runnerConfig{capacity: capacity})
}

// runnerConfig is a test runner's: its slots, and optionally its
// executor (a shell), work directory (a new one) and workspace method
// (MethodAuto).
type runnerConfig struct {
	capacity int
	exec     executor.Executor
	dir      string
	method   workspace.Method
}

func (c *cluster) runnerWith(rc runnerConfig) context.CancelFunc {
	t := c.t
	t.Helper()
	dir, capacity := rc.dir, rc.capacity
	if dir == "" {
		dir = t.TempDir()
	}
	if rc.exec == nil {
		rc.exec = executor.NewShell(slog.New(slog.DiscardHandler))
	}
	if rc.method == "" {
		rc.method = workspace.MethodAuto
	}
	client := &protocol.Client{BaseURL: c.url}
	sess := &runner.Session{Client: client, RegistrationToken: apitest.RegistrationToken, Dir: dir,
		Register: protocol.RegisterRequest{Name: "test", Labels: []string{api.ExecutorLabel("shell")}}}
	client.Token, client.OnUnauthorized = sess.Token, sess.Invalidate
	if _, err := sess.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	views, err := workspace.New(t.Context(), nil, rc.method, filepath.Join(dir, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	r := &runner.Remote{
		Client: client, StoreURL: c.url + api.StorePrefix, Exec: rc.exec,
		Mirrors: gitx.Mirrors{Dir: filepath.Join(dir, "mirrors")}, Workspaces: views, WorkDir: dir, Capacity: capacity,
		// The runner's HOME in the base, which no job may get: each has its own.
		BaseEnv: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, Grace: time.Second, Log: slog.New(slog.DiscardHandler),
		LeaseWait: 2 * time.Second,
	}
	drain, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(context.Background(), drain)
	}()
	stopped := func() { stop(); <-done }
	t.Cleanup(stopped)
	return stopped
}

func gitRepo(t *testing.T, pipeline string) string {
	return gittest.Repo(t, map[string]string{".deltaci.yml": pipeline})
}

func gitRun(t *testing.T, dir string, args ...string) { gittest.Git(t, dir, args...) }

// wait polls the run until it ends.
func (c *cluster) wait(id string) protocol.Run {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		run, err := c.user.Run(c.t.Context(), id)
		if err != nil {
			c.t.Fatal(err)
		}
		if core.RunState(run.State).Terminal() {
			return run
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("run %s still %s after 60 s: %+v", id, run.State, run.Jobs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) log(a protocol.Attempt) string {
	c.t.Helper()
	b, err := c.user.Log(c.t.Context(), a.ID, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

func job(run protocol.Run, name string) protocol.Job {
	for _, j := range run.Jobs {
		if j.Name == name {
			return j
		}
	}
	return protocol.Job{}
}

func TestRemoteRunsADAGWithOutputs(t *testing.T) {
	c := newCluster(t)
	c.runner(2)
	dir := gitRepo(t, `version: 1
jobs:
  build:
    run: mkdir -p out && echo "built at $DELTACI_COMMIT" > out/artifact.txt
    outputs: ["out/**"]
  test:
    needs: [build]
    run: cat out/artifact.txt
  lint:
    run: echo lint ok
`)
	run, err := c.createRun(t, protocol.CreateRunRequest{Repo: dir, Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	run = c.wait(run.ID)
	if run.State != string(core.RunSucceeded) {
		t.Fatalf("run %s: %+v", run.State, run.Jobs)
	}
	test := job(run, "test")
	if got := c.log(test.Attempts[0]); !strings.Contains(got, "built at "+run.Commit) {
		t.Fatalf("test's log %q does not show build's output", got)
	}
	if test.Attempts[0].LogDigest == "" {
		// Sealing happens at completion; the sweep is the safety net.
		deadline := time.Now().Add(10 * time.Second)
		for test.Attempts[0].LogDigest == "" && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			run, _ = c.user.Run(t.Context(), run.ID)
			test = job(run, "test")
		}
		if test.Attempts[0].LogDigest == "" {
			t.Fatal("the log was never sealed")
		}
	}
	if got := c.log(test.Attempts[0]); !strings.Contains(got, "built at") {
		t.Fatalf("sealed log %q", got)
	}
}

func TestRemoteLogCapFailsTheJob(t *testing.T) {
	c := newCluster(t, store.WithLogCap(64<<10))
	c.runner(1)
	dir := gitRepo(t, `version: 1
jobs:
  noisy:
    run: head -c 2000000 /dev/zero | tr '\0' 'x'; sleep 30
`)
	run, err := c.createRun(t, protocol.CreateRunRequest{Repo: dir, Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	run = c.wait(run.ID)
	a := job(run, "noisy").Attempts[0]
	if a.State != string(core.AttemptFailed) || a.Reason != string(core.ReasonResourceLimit) {
		t.Fatalf("attempt %s/%s, want failed/resource_limit", a.State, a.Reason)
	}
	if a.LogLength > 64<<10+200 {
		t.Fatalf("log of %d bytes kept past the 64 KiB cap", a.LogLength)
	}
	if got := c.log(a); !strings.Contains(got, "the log reached its cap") {
		t.Fatalf("the kept log does not say it was cut: ...%q", got[max(0, len(got)-200):])
	}
}

func TestRemoteCancel(t *testing.T) {
	c := newCluster(t)
	c.runner(1)
	dir := gitRepo(t, `version: 1
jobs:
  slow:
    run: echo started; sleep 60
`)
	run, err := c.createRun(t, protocol.CreateRunRequest{Repo: dir, Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	// Cancel once the job runs, so the heartbeat delivers it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := c.user.Run(t.Context(), run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j := job(r, "slow"); j.State == string(core.JobRunning) && j.Attempts[0].LogLength > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the job never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.user.CancelRun(t.Context(), run.ID); err != nil {
		t.Fatal(err)
	}
	run = c.wait(run.ID)
	if run.State != string(core.RunCanceled) || job(run, "slow").Attempts[0].State != string(core.AttemptCanceled) {
		t.Fatalf("run %s, attempt %s; want canceled, canceled", run.State, job(run, "slow").Attempts[0].State)
	}
}

// TestRemoteDrainReleasesNothingStarted: a drained runner stops leasing;
// work queued afterwards waits for another runner.
func TestRemoteDrain(t *testing.T) {
	c := newCluster(t)
	stop := c.runner(1)
	stop()
	dir := gitRepo(t, "version: 1\njobs:\n  a:\n    run: echo a\n")
	run, err := c.createRun(t, protocol.CreateRunRequest{Repo: dir, Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if r, _ := c.user.Run(t.Context(), run.ID); job(r, "a").State != string(core.JobQueued) {
		t.Fatalf("job %s after the only runner drained, want queued", job(r, "a").State)
	}
	c.runner(1)
	if r := c.wait(run.ID); r.State != string(core.RunSucceeded) {
		t.Fatalf("run %s", r.State)
	}
}

// TestRemoteSecrets: a trusted run gets its secrets, masked in the log; a
// secret the server does not have, or one its project may not receive,
// ends the attempt with config_error and says why; an untrusted run's job
// gets none and is told so.
func TestRemoteSecrets(t *testing.T) {
	c := newClusterWith(t, func(cfg *api.Config) {
		cfg.Secrets = secret.NewEnv([]string{"DELTACI_SECRET_TOKEN=s3cr3t-value", "DELTACI_SECRET_OTHER=0ther-s3cr3t"})
	})
	c.runner(1)
	dir := gitRepo(t, `version: 1
jobs:
  uses:
    secrets: [TOKEN]
    run: echo "token=$TOKEN"
  missing:
    secrets: [NOPE]
    run: echo never
  denied:
    secrets: [OTHER]
    run: echo "other=$OTHER"
`)
	run, err := c.createRun(t, protocol.CreateRunRequest{Repo: dir, Ref: "main"}, func(p *core.Project) {
		p.Secrets = []string{"TOKEN", "NOPE"}
	})
	if err != nil {
		t.Fatal(err)
	}
	run = c.wait(run.ID)
	uses := job(run, "uses").Attempts[0]
	if got := c.log(uses); uses.State != string(core.AttemptSucceeded) || strings.Contains(got, "s3cr3t") || !strings.Contains(got, "token="+secret.Mask) {
		t.Fatalf("uses: %s, log %q", uses.State, got)
	}
	missing := job(run, "missing").Attempts[0]
	if got := c.log(missing); missing.Reason != string(core.ReasonConfigError) || !strings.Contains(got, "NOPE") {
		t.Fatalf("missing: %s/%s, log %q", missing.State, missing.Reason, got)
	}
	denied := job(run, "denied").Attempts[0]
	if got := c.log(denied); denied.Reason != string(core.ReasonConfigError) || !strings.Contains(got, "may not receive") || strings.Contains(got, "0ther") {
		t.Fatalf("denied: %s/%s, log %q", denied.State, denied.Reason, got)
	}

	gitRun(t, dir, "checkout", "-q", "-b", "feature")
	// A manual run has no base, so nothing is reused from main's run.
	run, err = c.createRun(t, protocol.CreateRunRequest{Repo: dir, Ref: "feature", Event: "manual"})
	if err != nil {
		t.Fatal(err)
	}
	run = c.wait(run.ID)
	if run.Trusted {
		t.Fatal("a run of an unprotected branch is trusted")
	}
	uses = job(run, "uses").Attempts[0]
	if got := c.log(uses); !strings.Contains(got, "token=\n") || !strings.Contains(got, "withheld") {
		t.Fatalf("untrusted uses: log %q", got)
	}
}

// TestRemoteReusesJobsWithoutOutputs: a job with no outputs sends no
// manifest; the server still records its result, and the next run of the
// same commit reuses it, as it does the job with outputs that needs it.
func TestRemoteReusesJobsWithoutOutputs(t *testing.T) {
	c := newCluster(t)
	c.runner(1)
	dir := gitRepo(t, `version: 1
jobs:
  check:
    run: echo checked
  build:
    needs: [check]
    run: mkdir -p out && echo built > out/x
    outputs: ["out/**"]
`)
	first, err := c.createRun(t, protocol.CreateRunRequest{Repo: dir, Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.wait(first.ID); r.State != string(core.RunSucceeded) {
		t.Fatalf("first run %s: %+v", r.State, r.Jobs)
	}
	second, err := c.createRun(t, protocol.CreateRunRequest{Repo: dir, Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	r := c.wait(second.ID)
	for _, name := range []string{"check", "build"} {
		if j := job(r, name); j.State != string(core.JobReused) {
			t.Errorf("second run: %s is %s (%s), want reused", name, j.State, j.Explain)
		}
	}
}
