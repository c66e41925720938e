package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// TestRunnersListState: GET /runners says of each runner whether it is
// idle, busy (with the attempts it holds) or offline, and a request made
// with a runner's token counts as its contact.
func TestRunnersListState(t *testing.T) {
	t.Parallel()
	// The store's clock runs behind by offset, so that a runner can be
	// registered long ago.
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	srv := apitest.Start(t, apitest.Options{StoreOptions: []store.Option{store.WithClock(clock)}, Edit: func(c *api.Config) {
		c.MaxLeaseWait = 100 * time.Millisecond
		c.ContactFlush = 20 * time.Millisecond
	}})
	hc := &http.Client{Transport: newContractValidator(t, srv.HTTP.Client().Transport, nil)}
	call := func(method, path, tok string, in, out any) {
		t.Helper()
		var body io.Reader
		if in != nil {
			b, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			body = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s = %d: %s", method, path, resp.StatusCode, raw)
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, raw)
			}
		}
	}
	join := func(name string) string {
		t.Helper()
		var reg protocol.RegisterResponse
		call("POST", "/api/v1/runners/register", apitest.RegistrationToken,
			protocol.RegisterRequest{Name: name, Labels: []string{api.ExecutorLabel("shell")}, ProtocolVersion: protocol.Version}, &reg)
		var sess protocol.SessionResponse
		call("POST", "/api/v1/runner/session", "",
			protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version}, &sess)
		return sess.Token
	}
	list := func() map[string]protocol.RunnerInfo {
		t.Helper()
		var got protocol.RunnerList
		call("GET", "/api/v1/runners", apitest.APIToken, nil, &got)
		out := map[string]protocol.RunnerInfo{}
		for _, r := range got.Runners {
			out[r.Name] = r
		}
		return out
	}

	offset.Store(int64(-time.Hour))
	gone := join("gone")
	offset.Store(0)
	busy := join("busy")
	repo := gittest.Repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  build:\n    run: echo hi\n"})
	p := srv.AddProject(t, repo)
	var run protocol.Run
	call("POST", "/api/v1/runs", apitest.APIToken, protocol.CreateRunRequest{Project: p.Name, Ref: "main"}, &run)
	var lease protocol.Lease
	call("POST", "/api/v1/runner/lease", busy, protocol.LeaseRequest{WaitSeconds: 5}, &lease)

	got := list()
	if r := got["gone"]; r.State != protocol.RunnerOffline || len(r.Attempts) != 0 {
		t.Errorf("a runner silent for an hour: state %q, attempts %+v; want offline and none", r.State, r.Attempts)
	}
	b := got["busy"]
	if b.State != protocol.RunnerBusy || len(b.Attempts) != 1 {
		t.Fatalf("a runner holding a lease: state %q, attempts %+v; want busy with 1", b.State, b.Attempts)
	}
	if a := b.Attempts[0]; a.AttemptID != lease.AttemptID || a.RunID != run.ID || a.Job != lease.Job || a.State != "leased" || a.LeasedAt.IsZero() {
		t.Errorf("held attempt %+v, want %s of run %s, job %s, leased", a, lease.AttemptID, run.ID, lease.Job)
	}

	if b.LastSeenAt.Before(b.Attempts[0].LeasedAt) {
		t.Errorf("a busy runner last seen %v, before its lease at %v", b.LastSeenAt, b.Attempts[0].LeasedAt)
	}

	// A lease poll with its token is the silent runner's contact, written
	// at the next flush.
	before := got["gone"].LastSeenAt
	call("POST", "/api/v1/runner/lease", gone, protocol.LeaseRequest{WaitSeconds: 1}, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := list()["gone"]
		if r.State == protocol.RunnerIdle && r.LastSeenAt.After(before.Add(30*time.Minute)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after a lease poll: state %q, last seen %v (was %v); want idle and seen now", r.State, r.LastSeenAt, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
