package ui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/oidctest"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/ui"
	"github.com/deltaci/deltaci/internal/webauth"
)

// deadline bounds every wait of these tests.
const deadline = 60 * time.Second

// pipeline has a job that is reused on the second run (lint: its inputs
// do not change), one that is skipped on main (docs), and a chain that
// runs (build, then test).
const pipeline = `version: 1
jobs:
  build:
    run: "true"
    inputs: ["src/**"]
  lint:
    run: "true"
    inputs: ["lint/**"]
    cache: {key: [lint/rules], paths: ["~/.cache/lint"]}
  test:
    needs: [build]
    run: "true"
    inputs: ["src/**"]
  docs:
    run: "true"
    branches: [release]
`

// env is a server with the UI in front of its API, on a real listener,
// with a project whose main branch is protected and a runner that the
// test drives through the runner protocol.
type env struct {
	srv     *apitest.Server
	URL     string
	project core.Project
	repo    string
	runner  *runner
	// viewer is a viewer's API token.
	viewer string
}

func setup(t *testing.T) *env {
	t.Helper()
	s := apitest.Start(t, apitest.Options{Edit: func(c *api.Config) { c.InsecureNoAuth = true }})
	a := ui.APIAuth{Authenticate: s.API.Authenticate}
	u, err := ui.New(ui.Config{Backend: s.API, Auth: a, Middleware: a.Middleware, Session: a.Session})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(u.Handler(s.API.Handler()))
	t.Cleanup(hs.Close)
	e := &env{srv: s, URL: hs.URL}
	e.repo = gittest.Repo(t, map[string]string{".deltaci.yml": pipeline, "src/main.go": "package main\n", "lint/rules": "a\n"})
	e.project = s.AddProject(t, e.repo)
	e.runner = newRunner(t, s.URL)
	tok, hash := auth.NewAPIToken()
	if _, err := s.Store.CreateAPIToken(context.Background(), store.APIToken{Name: "viewer", Role: auth.RoleViewer, Hash: hash}); err != nil {
		t.Fatal(err)
	}
	e.viewer = tok
	return e
}

// trigger starts a run of the project's main branch.
func (e *env) trigger(t *testing.T) protocol.Run {
	t.Helper()
	run, err := e.srv.User().CreateRun(t.Context(), protocol.CreateRunRequest{Project: e.project.Name, Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// commit changes files on main.
func (e *env) commit(t *testing.T, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(e.repo, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gittest.Git(t, e.repo, "add", "-A")
	gittest.Git(t, e.repo, "commit", "-q", "-m", "change")
}

// reusedRun makes the run the DAG tests look at: a first run where every
// job passes, then a change to src/ whose run reuses lint, skips docs,
// fails build and so leaves test upstream_failed.
func (e *env) reusedRun(t *testing.T) protocol.Run {
	t.Helper()
	first := e.trigger(t)
	e.runner.pass(t, first.ID, "build", "lint", "test")
	e.waitRun(t, first.ID, core.RunSucceeded)
	e.commit(t, map[string]string{"src/main.go": "package main\n\nfunc main() {}\n"})
	second := e.trigger(t)
	l := e.runner.start(t, second.ID, "build")
	e.runner.log(t, l, 0, "compiling\n<script>alert(1)</script>\n\x1b[31mFAIL\x1b[0m build\n")
	e.runner.end(t, l, core.AttemptFailed)
	return e.waitRun(t, second.ID, core.RunFailed)
}

// waitRun waits until the run is in state.
func (e *env) waitRun(t *testing.T, id string, state core.RunState) protocol.Run {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		run, err := e.srv.User().Run(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if run.State == string(state) {
			return run
		}
		if time.Now().After(end) {
			t.Fatalf("run %s is %s after %v, want %s", id, run.State, deadline, state)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// browser is an HTTP client with cookies, as a browser is.
func (e *env) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get fetches a page and returns its status and body.
func get(t *testing.T, c *http.Client, u string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// post sends a form as a browser does after loading page: with the CSRF
// token the page carried.
func post(t *testing.T, c *http.Client, page, action string, header ...string) (*http.Response, string) {
	t.Helper()
	_, body := get(t, c, page, header...)
	form := url.Values{}
	if m := csrfRE.FindStringSubmatch(body); m != nil {
		form.Set("csrf", m[1])
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, action, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// runner acts as a runner through the runner protocol, so that the test
// decides when each job starts, what it logs and how it ends.
type runner struct {
	c    *protocol.Client
	held map[string]protocol.Lease
}

func newRunner(t *testing.T, base string) *runner {
	t.Helper()
	ctx := t.Context()
	c := &protocol.Client{BaseURL: base}
	reg, err := c.Register(ctx, apitest.RegistrationToken, protocol.RegisterRequest{Name: "ui-runner", Labels: []string{api.ExecutorLabel("shell")}, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.Session(ctx, protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	c.Token = func(context.Context) (string, error) { return sess.Token, nil }
	return &runner{c: c, held: map[string]protocol.Lease{}}
}

// take leases attempts until it holds job's of run.
func (r *runner) take(t *testing.T, runID, job string) protocol.Lease {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		if l, ok := r.held[runID+"/"+job]; ok {
			delete(r.held, runID+"/"+job)
			return l
		}
		if time.Now().After(end) {
			t.Fatalf("job %s of run %s was not leased within %v", job, runID, deadline)
		}
		l, err := r.c.Lease(t.Context(), time.Second)
		if err != nil {
			t.Fatalf("lease: %v", err)
		}
		if l != nil {
			r.held[l.RunID+"/"+l.Job] = *l
		}
	}
}

func (r *runner) start(t *testing.T, runID, job string) protocol.Lease {
	t.Helper()
	l := r.take(t, runID, job)
	if err := r.c.Start(t.Context(), l.AttemptID, l.LeaseToken); err != nil {
		t.Fatalf("start %s: %v", job, err)
	}
	return l
}

// log appends text to the attempt's log at offset and returns the new
// length.
func (r *runner) log(t *testing.T, l protocol.Lease, offset int64, text string) int64 {
	t.Helper()
	n, err := r.c.AppendLog(t.Context(), l.AttemptID, l.LeaseToken, "", offset, []byte(text))
	if err != nil {
		t.Fatalf("log of %s: %v", l.Job, err)
	}
	return n
}

func (r *runner) end(t *testing.T, l protocol.Lease, state core.AttemptState) {
	t.Helper()
	req := protocol.CompleteRequest{LeaseToken: l.LeaseToken, State: state, ExitCode: new(int)}
	if l.Cache != nil {
		req.Cache = &protocol.CacheReport{Outcome: "cold"}
	}
	if state == core.AttemptFailed {
		one := 1
		req.Reason, req.ExitCode = core.ReasonExitCode, &one
	}
	if _, err := r.c.Complete(t.Context(), l.AttemptID, req); err != nil {
		t.Fatalf("complete %s as %s: %v", l.Job, state, err)
	}
}

func (r *runner) pass(t *testing.T, runID string, jobs ...string) {
	t.Helper()
	for _, j := range jobs {
		r.end(t, r.start(t, runID, j), core.AttemptSucceeded)
	}
}

// webEnv is env with the web login of a real OpenID provider in front of
// the pages instead of the API's tokens.
type webEnv struct {
	*env
	op *oidctest.Provider
}

// Users of the provider: alice maintains the project, victor views it.
var (
	alice  = oidctest.User{Username: "alice", Password: "alice-pw", Email: "alice@example.com", EmailVerified: true, Name: "Alice"}
	victor = oidctest.User{Username: "victor", Password: "victor-pw", Email: "victor@example.com", EmailVerified: true, Name: "Victor"}
)

func setupWeb(t *testing.T) *webEnv {
	t.Helper()
	s := apitest.Start(t, apitest.Options{})
	op, err := oidctest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	var h http.Handler = http.NotFoundHandler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	redirect := hs.URL + webauth.CallbackPath
	secret := op.AddClient("deltaci-ui", redirect)
	op.AddUser(alice)
	op.AddUser(victor)
	web, err := webauth.New(t.Context(), webauth.Config{Issuer: op.Issuer(), ClientID: "deltaci-ui", ClientSecret: secret, RedirectURL: redirect}, s.Store)
	if err != nil {
		t.Fatal(err)
	}
	a := ui.APIAuth{Authenticate: s.API.Authenticate}
	u, err := ui.New(ui.WithWebLogin(ui.Config{Backend: s.API, Auth: a, Session: a.Session}, web))
	if err != nil {
		t.Fatal(err)
	}
	// As the server wires it: the login's routes and the pages, in the
	// login's middleware.
	mux := http.NewServeMux()
	web.Routes(mux)
	u.Routes(mux)
	mux.Handle("/", s.API.Handler())
	h = web.Middleware(mux)
	e := &env{srv: s, URL: hs.URL}
	e.repo = gittest.Repo(t, map[string]string{".deltaci.yml": pipeline, "src/main.go": "package main\n", "lint/rules": "a\n"})
	e.project = s.AddProject(t, e.repo)
	e.runner = newRunner(t, s.URL)
	for _, b := range []struct{ who, role string }{{alice.Email, webauth.RoleMaintainer}, {victor.Email, webauth.RoleViewer}} {
		if _, err := s.Store.SetProjectRole(t.Context(), e.project.Name, b.who, b.role); err != nil {
			t.Fatal(err)
		}
	}
	return &webEnv{env: e, op: op}
}
