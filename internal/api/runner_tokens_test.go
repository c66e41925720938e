package api_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/protocol"
)

// TestRunnerTokensCannotActAsUsers: a runner's session token and a job
// token, both valid, can neither start runs, register projects, list
// runners, nor move a ref of the artifact store (the shared results
// included): whoever holds a runner cannot plant a result or a trusted run.
func TestRunnerTokensCannotActAsUsers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := apitest.Start(t, apitest.Options{})
	repo := gittest.Repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  a:\n    run: 'true'\n"})
	p := srv.AddProject(t, repo)
	if _, err := srv.User().CreateRun(ctx, protocol.CreateRunRequest{Project: p.Name}); err != nil {
		t.Fatal(err)
	}
	rc := &protocol.Client{BaseURL: srv.URL}
	reg, err := rc.Register(ctx, apitest.RegistrationToken, protocol.RegisterRequest{Name: "r", Labels: []string{api.ExecutorLabel("shell")}, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := rc.Session(ctx, protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	rc.Token = func(context.Context) (string, error) { return sess.Token, nil }
	lease, err := rc.Lease(ctx, time.Second)
	if err != nil || lease == nil {
		t.Fatalf("lease: %v, %v", lease, err)
	}
	ref := "/store/api/v1/refs/results/" + lease.Digest[len("sha256:"):] + ":shared." + p.Name
	for _, tok := range []struct{ name, token string }{{"session", sess.Token}, {"job", lease.JobToken}} {
		for _, c := range []struct {
			method, path, body string
			want               int
		}{
			{"POST", "/api/v1/runs", `{"project":"` + p.Name + `"}`, http.StatusUnauthorized},
			{"POST", "/api/v1/projects", `{"name":"evil","repo_url":"/srv/evil"}`, http.StatusUnauthorized},
			{"GET", "/api/v1/runners", "", http.StatusUnauthorized},
			{"PUT", ref, `{"manifest":"sha256:` + string(bytes.Repeat([]byte("0"), 64)) + `"}`, http.StatusForbidden},
			{"DELETE", "/store/api/v1/refs/outputs/" + lease.AttemptID + ":latest", "", http.StatusForbidden},
			{"POST", "/store/api/v1/gc", "{}", http.StatusForbidden},
		} {
			req, err := http.NewRequestWithContext(ctx, c.method, srv.URL+c.path, bytes.NewReader([]byte(c.body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok.token)
			req.Header.Set("X-Actor", "server")
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("%s %s with a %s token: %d, want %d", c.method, c.path, tok.name, resp.StatusCode, c.want)
			}
		}
	}
	projects, err := srv.Store.Projects(ctx)
	if err != nil || len(projects) != 1 {
		t.Errorf("projects after the attempts: %v, %v", projects, err)
	}
}
