package api_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/core"
)

// TestRunnerTokensCannotActAsUsers: a runner's session token and a job
// token, both valid, can neither start runs, register projects, list
// runners, nor move a ref of the artifact store (the shared results
// included), nor collect or scrub it: whoever holds a runner cannot plant
// a result or a trusted run, nor set the store's disks spinning.
func TestRunnerTokensCannotActAsUsers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := apitest.Start(t, apitest.Options{})
	lr := srv.Leased(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  a:\n    run: 'true'\n"})
	run, err := srv.Store.Run(ctx, lr.Lease.RunID)
	if err != nil {
		t.Fatal(err)
	}
	p := core.Project{Name: run.Project}
	ref := "/store/api/v1/refs/results/" + lr.Lease.Digest[len("sha256:"):] + ":shared." + p.Name
	for _, tok := range []struct{ name, token string }{{"session", lr.Session}, {"job", lr.Lease.JobToken}} {
		for _, c := range []struct {
			method, path, body string
			want               int
		}{
			{"POST", "/api/v1/runs", `{"project":"` + p.Name + `"}`, http.StatusUnauthorized},
			{"POST", "/api/v1/projects", `{"name":"evil","repo_url":"/srv/evil"}`, http.StatusUnauthorized},
			{"GET", "/api/v1/runners", "", http.StatusUnauthorized},
			{"PUT", ref, `{"manifest":"sha256:` + string(bytes.Repeat([]byte("0"), 64)) + `"}`, http.StatusForbidden},
			{"DELETE", "/store/api/v1/refs/outputs/" + lr.Lease.AttemptID + ":latest", "", http.StatusForbidden},
			{"POST", "/store/api/v1/gc", "{}", http.StatusForbidden},
			{"POST", "/store/api/v1/scrub", `{"rate":-1}`, http.StatusForbidden},
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
