package runner_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/jobcache"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/results"
)

// cachePipeline's job prints what its cache holds and then writes into it.
const cachePipeline = `version: 1
jobs:
  build:
    reuse: false
    cache:
      key: [go.sum]
      restore-keys: [build-]
      paths: ["~/.cache/demo", vendor-cache]
    run: |
      echo "home cache: $(cat "$HOME/.cache/demo/state" 2>/dev/null || echo none)"
      echo "workspace cache: $(cat vendor-cache/state 2>/dev/null || echo none)"
      mkdir -p "$HOME/.cache/demo" vendor-cache
      [ -f vendor-cache/state ] || echo "written by $DELTACI_RUN_ID" > vendor-cache/state
      [ -f "$HOME/.cache/demo/state" ] || echo "home of $DELTACI_RUN_ID" > "$HOME/.cache/demo/state"
`

func cacheRepo(t *testing.T) string {
	return apitestRepo(t, map[string]string{".deltaci.yml": cachePipeline, "go.sum": "example.com/x v1.0.0 h1:abc\n"})
}

func apitestRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := gitRepo(t, files[".deltaci.yml"])
	for name, content := range files {
		if name == ".deltaci.yml" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		gitRun(t, dir, "add", name)
	}
	gitRun(t, dir, "commit", "-q", "-m", "files")
	return dir
}

func (c *cluster) runJob(t *testing.T, req protocol.CreateRunRequest) (protocol.Run, protocol.Job, string) {
	t.Helper()
	run, err := c.createRun(t, req)
	if err != nil {
		t.Fatal(err)
	}
	run = c.wait(run.ID)
	j := job(run, "build")
	if len(j.Attempts) == 0 {
		t.Fatalf("run %s: build has no attempt: %+v", run.State, j)
	}
	return run, j, c.log(j.Attempts[0])
}

// TestRemoteCacheWarmsTheNextRun: the first run starts cold and saves the
// cache paths of the home and the workspace; the next, on a fresh runner,
// restores them by the exact key and, changing nothing, saves nothing.
func TestRemoteCacheWarmsTheNextRun(t *testing.T) {
	c := newCluster(t)
	stop := c.runner(1)
	dir := cacheRepo(t)
	first, j, log := c.runJob(t, protocol.CreateRunRequest{Repo: dir, Ref: "main"})
	if first.State != string(core.RunSucceeded) || !first.Trusted {
		t.Fatalf("first run %s (trusted %v): %s", first.State, first.Trusted, log)
	}
	key := regexp.MustCompile(`cache cold \(no entry for key (build-[0-9a-f]{24})\)`).FindStringSubmatch(log)
	if key == nil || !strings.Contains(log, "home cache: none") || !strings.Contains(log, "deltaci: cache saved (key "+key[1]+", 2 files") {
		t.Fatalf("first run's log:\n%s", log)
	}
	if j.Cache == nil || j.Cache.Key != key[1] || len(j.Attempts[0].Cache.Saved) == 0 || j.Attempts[0].Cache.Outcome != "cold" || j.Attempts[0].Cache.SavedBytes == 0 {
		t.Errorf("first run's job data: %+v, attempt cache %+v", j.Cache, j.Attempts[0].Cache)
	}
	stop()

	c.runner(1) // a fresh work directory
	second, j, log := c.runJob(t, protocol.CreateRunRequest{Repo: dir, Ref: "main"})
	if second.State != string(core.RunSucceeded) {
		t.Fatalf("second run %s: %s", second.State, log)
	}
	for _, want := range []string{
		"deltaci: cache restored (exact key " + key[1] + ",",
		"home cache: home of " + first.ID,
		"workspace cache: written by " + first.ID,
		"deltaci: cache unchanged, not saved",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("second run's log lacks %q:\n%s", want, log)
		}
	}
	if a := j.Attempts[0].Cache; a == nil || a.Outcome != "exact" || a.RestoredBytes == 0 || a.Saved != "unchanged" {
		t.Errorf("second run's attempt cache: %+v", a)
	}
}

// jobTokenTransport sends a job token, as the runner does to the store.
type jobTokenTransport string

func (t jobTokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+string(t))
	return http.DefaultTransport.RoundTrip(req)
}

// TestUntrustedRunCannotPoisonTheSharedCache: an untrusted run of the
// same job and key holds the lease and its job token. It uploads a
// poisoned entry, tries to point the shared scope's ref at it through the
// store's API, and reports it as its save. None of it reaches a trusted
// run, which starts cold and saves its own.
func TestUntrustedRunCannotPoisonTheSharedCache(t *testing.T) {
	c := newCluster(t)
	dir := cacheRepo(t)
	gitRun(t, dir, "checkout", "-q", "-b", "feature")
	untrusted, err := c.createRun(t, protocol.CreateRunRequest{Repo: dir, Ref: "feature", Event: "manual"})
	if err != nil {
		t.Fatal(err)
	}
	if untrusted.Trusted {
		t.Fatal("a run of an unprotected branch is trusted")
	}

	// The attacker's runner.
	ctx := t.Context()
	client := &protocol.Client{BaseURL: c.url}
	reg, err := client.Register(ctx, apitest.RegistrationToken, protocol.RegisterRequest{Name: "attacker", Labels: []string{api.ExecutorLabel("shell")}, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := client.Session(ctx, protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	client.Token = func(context.Context) (string, error) { return sess.Token, nil }
	l, err := client.Lease(ctx, 5*time.Second)
	if err != nil || l == nil {
		t.Fatalf("lease: %v %v", l, err)
	}
	if l.Cache == nil || l.Cache.Scope != "own" || l.Cache.Restore != nil {
		t.Fatalf("untrusted lease's cache: %+v", l.Cache)
	}
	jobs, err := c.apitest.Store.Jobs(ctx, untrusted.ID)
	if err != nil {
		t.Fatal(err)
	}
	env := jobs[0].Spec.Cache.Env

	poison := t.TempDir()
	if err := os.MkdirAll(filepath.Join(poison, "vendor-cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(poison, "vendor-cache", "state"), []byte("POISONED\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hc := &httpapi.Client{BaseURL: c.url + api.StorePrefix, HTTP: &http.Client{Transport: jobTokenTransport(l.JobToken)}}
	tr := &registry.Transfer{Data: hc, Catalog: httpapi.Catalog{C: hc}}
	pushed, err := jobcache.Save(ctx, tr, "", jobcache.Roots{Home: t.TempDir(), Workspace: poison}, []string{"vendor-cache"}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	project := jobsProject(t, c, untrusted.ID)
	shared, err := jobcache.Ref(project, env, l.Cache.Key, results.SharedOf(project))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc.SetRef(ctx, shared.String(), pushed.Manifest, nil); err == nil || !strings.Contains(err.Error(), "runner tokens may") {
		t.Errorf("setting %s with the job token: %v, want refused", shared, err)
	}
	if err := client.Start(ctx, l.AttemptID, l.LeaseToken); err != nil {
		t.Fatal(err)
	}
	code := 0
	if _, err := client.Complete(ctx, l.AttemptID, protocol.CompleteRequest{
		LeaseToken: l.LeaseToken, State: core.AttemptSucceeded, ExitCode: &code,
		Cache: &protocol.CacheReport{Outcome: "cold", SavedManifest: pushed.Manifest.String(), UploadedBytes: 9},
	}); err != nil {
		t.Fatal(err)
	}
	if r := c.wait(untrusted.ID); r.State != string(core.RunSucceeded) {
		t.Fatalf("untrusted run %s", r.State)
	}

	// The untrusted run's own next run restores its own entry...
	c.runner(1)
	_, _, log := c.runJob(t, protocol.CreateRunRequest{Repo: dir, Ref: "feature", Event: "manual"})
	if !strings.Contains(log, "workspace cache: POISONED") || !strings.Contains(log, "cache restored (exact key") {
		t.Errorf("the branch's next run does not restore its own scope:\n%s", log)
	}
	// ...but a trusted run does not see it.
	gitRun(t, dir, "checkout", "-q", "main")
	trusted, j, log := c.runJob(t, protocol.CreateRunRequest{Repo: dir, Ref: "main"})
	if !trusted.Trusted || trusted.State != string(core.RunSucceeded) {
		t.Fatalf("trusted run %s (trusted %v)", trusted.State, trusted.Trusted)
	}
	if strings.Contains(log, "POISONED") || !strings.Contains(log, "deltaci: cache cold") || !strings.Contains(log, "workspace cache: none") {
		t.Errorf("the trusted run saw the untrusted entry:\n%s", log)
	}
	if a := j.Attempts[0].Cache; a == nil || a.Outcome != "cold" || a.Saved != "saved" {
		t.Errorf("trusted attempt's cache: %+v", a)
	}
	if r, err := c.apitest.Config.Registry.Meta.Ref(ctx, shared); err != nil || r.Manifest == pushed.Manifest {
		t.Errorf("the shared entry: %+v, %v; want the trusted run's own", r, err)
	}
}

// jobsProject is the project a run belongs to.
func jobsProject(t *testing.T, c *cluster, runID string) string {
	t.Helper()
	run, err := c.apitest.Store.Run(t.Context(), runID)
	if err != nil {
		t.Fatal(err)
	}
	return run.Project
}

// TestCacheOverItsLimitEvictsTheLeastRecentlyUsed: with room for two
// entries, a third evicts the one used longest ago, not the oldest saved:
// restoring an entry counts as a use. (Without restore keys, so that only
// the exact key is restored.)
func TestCacheOverItsLimitEvictsTheLeastRecentlyUsed(t *testing.T) {
	c := newClusterWith(t, func(cfg *api.Config) { cfg.CacheLimit = 200 })
	c.runner(1)
	dir := apitestRepo(t, map[string]string{".deltaci.yml": strings.Replace(cachePipeline, "      restore-keys: [build-]\n", "", 1), "go.sum": "x\n"})
	keyOf := func(sum string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "go.sum"), []byte(sum), 0o644); err != nil {
			t.Fatal(err)
		}
		gitRun(t, dir, "commit", "-q", "--allow-empty", "-am", "go.sum "+sum)
		run, j, log := c.runJob(t, protocol.CreateRunRequest{Repo: dir, Ref: "main"})
		if run.State != string(core.RunSucceeded) || j.Cache == nil {
			t.Fatalf("run %s: %s", run.State, log)
		}
		return j.Cache.Key
	}
	a := keyOf("a\n")
	b := keyOf("b\n")
	if again := keyOf("a\n"); again != a {
		t.Fatalf("the same go.sum made key %s, then %s", a, again)
	}
	cKey := keyOf("c\n")
	ctx := t.Context()
	project := c.projectOf(t, dir)
	entries, err := c.apitest.Store.CacheEntries(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	var total int64
	for _, e := range entries {
		kept = append(kept, e.Ref[strings.LastIndexByte(e.Ref, '/')+1:strings.LastIndexByte(e.Ref, ':')])
		total += e.Bytes
	}
	if len(kept) != 2 || kept[0] != a || kept[1] != cKey || total > 200 {
		t.Fatalf("kept %v (%d bytes), want [%s %s] within 200 bytes; %s went first", kept, total, a, cKey, b)
	}
	refs, err := c.apitest.Config.Registry.Meta.Refs(ctx, jobcache.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if jobcache.KeyOf(r.RefName) == b {
			t.Errorf("the evicted entry's ref %s is still there", r.RefName)
		}
	}
}

// projectOf is the project registered for a repository.
func (c *cluster) projectOf(t *testing.T, repo string) string {
	t.Helper()
	p, err := c.apitest.Store.ProjectByRepo(t.Context(), repo)
	if err != nil {
		t.Fatal(err)
	}
	return p.Name
}
