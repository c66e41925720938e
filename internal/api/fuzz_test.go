package api_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/protocol"
)

// FuzzRunnerRequests sends arbitrary bodies, with valid runner tokens, to
// every runner route of a server holding one leased attempt. Without the
// lease token no request may change that attempt, and none may make the
// server fail (5xx).
func FuzzRunnerRequests(f *testing.F) {
	ctx := context.Background()
	srv := apitest.Start(f, apitest.Options{Edit: func(c *api.Config) { c.MaxLeaseWait = 50 * time.Millisecond }})
	st, hs := srv.Store, srv.HTTP

	lr := srv.Leased(f, map[string]string{".deltaci.yml": "version: 1\njobs:\n  a:\n    run: 'true'\n"})
	before, err := st.Attempt(ctx, lr.Lease.AttemptID)
	if err != nil {
		f.Fatal(err)
	}

	routes := []struct{ method, path, token string }{
		{"POST", "/api/v1/runner/lease", lr.Session},
		{"POST", "/api/v1/attempts/" + lr.Lease.AttemptID + "/heartbeat", lr.Session},
		{"POST", "/api/v1/attempts/" + lr.Lease.AttemptID + "/start", lr.Session},
		{"POST", "/api/v1/attempts/" + lr.Lease.AttemptID + "/release", lr.Session},
		{"POST", "/api/v1/attempts/" + lr.Lease.AttemptID + "/complete", lr.Session},
		{"PUT", "/api/v1/attempts/" + lr.Lease.AttemptID + "/log?offset=0", lr.Lease.JobToken},
		{"POST", "/api/v1/runners/register", apitest.RegistrationToken},
		{"POST", "/api/v1/runner/session", ""},
		{"POST", "/api/v1/runs", ""},
	}
	f.Add(uint8(4), []byte(`{"lease_token":"x","state":"succeeded","exit_code":0}`))
	f.Add(uint8(1), []byte(`{"lease_token":""}`))
	f.Add(uint8(0), []byte(`{"wait_seconds":-5}`))
	f.Add(uint8(6), []byte(`{"name":"x","labels":["a b"],"protocol_version":1}`))
	f.Add(uint8(7), []byte(`{"runner_id":"`+lr.RunnerID+`","credential":"nope"}`))
	f.Add(uint8(8), []byte(`{"repo":"-x","ref":"main"}`))
	f.Add(uint8(5), []byte("log bytes"))
	f.Add(uint8(4), []byte(`{"lease_token":"x","state":"lost"}{}`))
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := routes[int(route)%len(routes)]
		if r.path == "/api/v1/runs" && len(body) > 0 && bytes.Contains(body, []byte(`"repo"`)) {
			// A valid repository would start a real run; others must fail cleanly.
			body = bytes.ReplaceAll(body, []byte(lr.Repo), []byte("missing"))
		}
		req, err := http.NewRequest(r.method, hs.URL+r.path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if r.token != "" {
			req.Header.Set("Authorization", "Bearer "+r.token)
		}
		req.Header.Set(protocol.LeaseTokenHeader, "not-the-lease-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s with %q: status %d", r.method, r.path, body, resp.StatusCode)
		}
		after, err := st.Attempt(ctx, lr.Lease.AttemptID)
		if err != nil {
			t.Fatal(err)
		}
		if after.State != before.State || after.LeaseToken != before.LeaseToken || !after.LeaseExpiresAt.Equal(before.LeaseExpiresAt) {
			t.Fatalf("%s %s with %q changed the attempt: %+v → %+v", r.method, r.path, body, before, after)
		}
		if info, err := st.LogInfo(ctx, lr.Lease.AttemptID); err != nil || info.Length != 0 {
			t.Fatalf("%s %s with %q changed the log: %+v, %v", r.method, r.path, body, info, err)
		}
	})
}
