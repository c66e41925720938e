package api_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// contractSamples are valid request bodies of the operations that need
// one, to send without a credential.
var contractSamples = map[string]any{
	"registerRunner":     protocol.RegisterRequest{Name: "x", Labels: []string{api.ExecutorLabel("shell")}, ProtocolVersion: protocol.Version},
	"heartbeat":          protocol.Fenced{LeaseToken: "x"},
	"startAttempt":       protocol.Fenced{LeaseToken: "x"},
	"releaseAttempt":     protocol.Fenced{LeaseToken: "x"},
	"completeAttempt":    protocol.CompleteRequest{LeaseToken: "x", State: core.AttemptFailed},
	"appendLog":          []byte("x"),
	"addProject":         contractProject{Name: "x", RepoURL: "/srv/git/x"},
	"updateProject":      protocol.ProjectPatch{},
	"updateProjectRoles": protocol.RolesPatch{Revoke: []string{"x@example.com"}},
	"createRun":          protocol.CreateRunRequest{Project: "x"},
}

// testContractNoCredential sends every operation of the document that
// names a security requirement a valid request without a credential, and
// with a token the server does not know: each is 401.
func testContractNoCredential(t *testing.T, e *contractEnv) {
	e = e.on(t)
	ctx := t.Context()
	doc, err := contractDoc()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, item := range doc.Paths.Map() {
		prefix := "/api/v1"
		if len(item.Servers) > 0 {
			prefix = strings.TrimSuffix(item.Servers[0].URL, "/")
		}
		for method, op := range item.Operations() {
			if op.Security != nil && len(*op.Security) == 0 {
				continue // documented as open
			}
			n++
			target := prefix + strings.NewReplacer("{id}", store.NewID(), "{name}", "x").Replace(path)
			for _, tok := range []string{"", "dci_unknown-token", "not.a.jwt"} {
				h := contractHeader(tok)
				var body []byte
				switch sample, ok := contractSamples[op.OperationID]; {
				case op.OperationID == "appendLog":
					h = contractHeader(tok, protocol.LeaseTokenHeader, "x", "Content-Type", "application/octet-stream")
					body = sample.([]byte)
				case ok:
					b, err := json.Marshal(sample)
					if err != nil {
						t.Fatal(err)
					}
					body = b
					h.Set("Content-Type", "application/json")
				case op.RequestBody != nil && op.RequestBody.Value.Required:
					t.Fatalf("%s %s (%s) needs a body: add one to contractSamples", method, path, op.OperationID)
				}
				r := e.expect(ctx, http.StatusUnauthorized, method, target, h, body)
				if r.status == http.StatusUnauthorized && r.errorDetail(t).Code != string(core.KindUnauthorized) {
					t.Errorf("%s %s with token %q: %s", method, target, tok, r.body)
				}
			}
		}
	}
	if n < 15 {
		t.Errorf("only %d operations need a credential", n)
	}
}

// testContractRateLimit checks the per-address limit on registration and
// sessions, a bucket for each: a burst of 2, then a token every 100
// seconds, so the limit holds for the whole test.
func testContractRateLimit(t *testing.T, cov *contractCoverage) {
	e := newContractEnv(t, contractOptions{apiToken: contractAPIToken, cov: cov, edit: func(c *api.Config) {
		c.AuthRate, c.AuthBurst = 0.01, 2
	}})
	ctx := t.Context()
	labels := []string{api.ExecutorLabel("shell")}
	const register, session = "/api/v1/runners/register", "/api/v1/runner/session"
	good := protocol.RegisterRequest{Name: "r", Labels: labels, ProtocolVersion: protocol.Version}
	var reg protocol.RegisterResponse
	e.json(ctx, http.StatusCreated, "POST", register, contractRegToken, good).decode(t, &reg)
	e.json(ctx, http.StatusUnauthorized, "POST", register, "guess", good)
	sr := protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version}
	e.json(ctx, http.StatusOK, "POST", session, "", sr)
	e.json(ctx, http.StatusOK, "POST", session, "", sr)

	limited := func(path, tok string, body any) {
		t.Helper()
		r := e.json(ctx, http.StatusTooManyRequests, "POST", path, tok, body)
		if code := r.errorDetail(t).Code; code != protocol.CodeRateLimited {
			t.Errorf("POST %s over the limit: code %q", path, code)
		}
		// About 100 s until the bucket holds a token again.
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 100 {
			t.Errorf("POST %s over the limit: Retry-After %q, want 1 to 100 seconds", path, r.header.Get("Retry-After"))
		}
	}
	limited(register, contractRegToken, good)
	limited(session, "", sr)
	// The limit comes before the token's check.
	limited(register, "guess", good)

	metrics := string(e.expect(ctx, http.StatusOK, "GET", "/metrics", nil, nil).body)
	for _, want := range []string{
		`deltaci_rate_limited_total{endpoint="register"} 2`,
		`deltaci_rate_limited_total{endpoint="session"} 1`,
		`deltaci_auth_failures_total{endpoint="register"} 1`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Only one runner was registered.
	var list protocol.RunnerList
	e.json(ctx, http.StatusOK, "GET", "/api/v1/runners", contractAPIToken, nil).decode(t, &list)
	if len(list.Runners) != 1 {
		t.Errorf("runners = %+v", list.Runners)
	}
}

// testContractFetchTimeout makes a run of a project whose repository
// never answers: the fetch is given up after the server's fetch timeout.
func testContractFetchTimeout(t *testing.T, cov *contractCoverage) {
	// A git daemon that accepts connections and never says a word.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	e := newContractEnv(t, contractOptions{apiToken: contractAPIToken, cov: cov, edit: func(c *api.Config) {
		c.FetchTimeout = 200 * time.Millisecond
	}})
	ctx := t.Context()
	e.addProject(ctx, contractProject{Name: "silent", RepoURL: "git://" + ln.Addr().String() + "/silent.git", ProtectedBranches: []string{"main"}})
	r := e.json(ctx, http.StatusServiceUnavailable, "POST", "/api/v1/runs", contractAPIToken, protocol.CreateRunRequest{Project: "silent"})
	if d := r.errorDetail(t); d.Code != string(core.KindUnavailable) || !strings.Contains(d.Message, "fetch timeout") {
		t.Errorf("a fetch that never ends: %+v", d)
	}
}

// testContractNoAuth checks a server started without authentication: a
// request without a token acts as an admin, a token it does not know is
// still refused.
func testContractNoAuth(t *testing.T, cov *contractCoverage, repo string) {
	o := newContractEnv(t, contractOptions{cov: cov, edit: func(c *api.Config) { c.InsecureNoAuth = true }})
	ctx := t.Context()
	o.json(ctx, http.StatusCreated, "POST", "/api/v1/projects", "", contractProject{Name: "open", RepoURL: repo, ProtectedBranches: []string{"main"}})
	run := o.createRun(ctx, "", protocol.CreateRunRequest{Repo: repo, Ref: "main", Event: core.EventManual})
	if run.Event != core.EventManual || !run.Trusted || run.Project != "open" {
		t.Errorf("manual run of an anonymous admin = %+v", run)
	}
	a := contractJob(t, run, "lint").Attempts[0]
	o.expect(ctx, http.StatusOK, "GET", "/api/v1/runs/"+run.ID, nil, nil)
	o.expect(ctx, http.StatusOK, "GET", "/api/v1/attempts/"+a.ID+"/log", nil, nil)
	o.expect(ctx, http.StatusOK, "GET", "/api/v1/runners", nil, nil)
	// A token is checked even where none is needed.
	for _, tok := range []string{"dci_unknown-token", contractAPIToken} {
		o.expect(ctx, http.StatusUnauthorized, "GET", "/api/v1/runs/"+run.ID, contractHeader(tok), nil)
	}
	o.expect(ctx, http.StatusUnauthorized, "GET", "/store/api/v1/refs", contractHeader("forged"), nil)
	o.expect(ctx, http.StatusOK, "GET", "/store/api/v1/refs", nil, nil)
}

// contractAuditEvent is what the tests read of an event of the artifact
// store's audit log.
type contractAuditEvent struct {
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
}

// contractAudit lists the artifact store's audit events of an actor.
func contractAudit(t *testing.T, e *contractEnv, actor string) []contractAuditEvent {
	t.Helper()
	r := e.on(t).expect(t.Context(), http.StatusOK, "GET", "/store/api/v1/audit?actor="+url.QueryEscape(actor), contractHeader(contractAPIToken), nil)
	var out struct {
		Events []contractAuditEvent `json:"events"`
	}
	r.decode(t, &out)
	return out.Events
}
