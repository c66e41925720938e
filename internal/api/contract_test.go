package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/results"
	"github.com/deltaci/deltaci/internal/store"
)

const contractPipeline = `version: 1
jobs:
  build:
    run: echo build
    env: {GREETING: hi}
    outputs: ["out/**"]
    cache: {key: [.deltaci.yml], restore-keys: [build-], paths: ["~/.cache/build", out]}
  test:
    needs: [build]
    run: echo test
  lint:
    run: echo lint
    inputs: [".deltaci.yml"]
    hermetic: true
`

func TestOpenAPIEmbeddedCopy(t *testing.T) {
	t.Parallel()
	embedded, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(embedded, readContractDoc(t)) {
		t.Fatal("internal/api/openapi.yaml differs from api/openapi.yaml; copy the canonical file over it")
	}
}

// TestContract drives every operation of api/openapi.yaml, with each status
// the document lists, through servers on SQLite: the runner protocol by
// hand, as a runner would, and the run API. The validating transport checks
// every exchange against the document; the end of the test checks that
// nothing listed went unexercised. Refused requests are checked to change
// nothing.
func TestContract(t *testing.T) {
	t.Parallel()
	cov := &contractCoverage{}
	e := newContractEnv(t, contractOptions{apiToken: contractAPIToken, logCap: 4096, cov: cov})
	ctx, bad := t.Context(), contractUnchecked(t.Context())
	tooBig := bytes.Repeat([]byte(" "), api.DefaultMaxJSONBytes+1)
	unknownID := store.NewID()
	labels := []string{api.ExecutorLabel("shell"), "os:linux"}
	other, err := auth.NewKeyset(nil)
	if err != nil {
		t.Fatal(err)
	}
	// API tokens the server made: one of a role that is not admin, one
	// of an admin.
	viewer, bot := e.apiToken("viewer", "viewer"), e.apiToken("ci-bot", auth.RoleAdmin)

	t.Run("meta", func(t *testing.T) {
		e := e.on(t)
		r := e.expect(ctx, http.StatusOK, "GET", "/healthz", nil, nil)
		if !bytes.Contains(r.body, []byte(`"ok"`)) {
			t.Errorf("healthz = %s", r.body)
		}
		e.expect(ctx, http.StatusOK, "GET", "/readyz", nil, nil)
		r = e.expect(ctx, http.StatusOK, "GET", "/metrics", nil, nil)
		if !bytes.Contains(r.body, []byte("deltaci_lease_expirations_total")) {
			t.Errorf("metrics lack deltaci_lease_expirations_total:\n%s", r.body)
		}
		r = e.expect(ctx, http.StatusOK, "GET", "/api/v1/openapi.yaml", nil, nil)
		if !bytes.Equal(r.body, readContractDoc(t)) {
			t.Error("GET /api/v1/openapi.yaml is not api/openapi.yaml")
		}
	})

	var r1, r2 protocol.RegisterResponse
	t.Run("register", func(t *testing.T) {
		e := e.on(t)
		const path = "/api/v1/runners/register"
		good := protocol.RegisterRequest{Name: "runner-1", Labels: labels, ProtocolVersion: protocol.Version}
		e.json(ctx, http.StatusCreated, "POST", path, contractRegToken, good).decode(t, &r1)
		if r1.RunnerID == "" || !strings.HasPrefix(r1.Credential, "dcr_") || r1.ProtocolVersion != protocol.Version {
			t.Errorf("register = %+v", r1)
		}
		e.json(ctx, http.StatusCreated, "POST", path, contractRegToken,
			protocol.RegisterRequest{Name: "runner-2", Labels: labels, ProtocolVersion: protocol.Version}).decode(t, &r2)

		e.json(ctx, http.StatusUnauthorized, "POST", path, "", good)
		e.json(ctx, http.StatusUnauthorized, "POST", path, "not-the-token", good)
		r := e.json(bad, http.StatusBadRequest, "POST", path, contractRegToken,
			protocol.RegisterRequest{Name: "old", Labels: labels, ProtocolVersion: protocol.Version + 1})
		if d := r.errorDetail(t); d.Code != protocol.CodeProtocolVersion ||
			d.Details["server_version"] != float64(protocol.Version) || d.Details["runner_version"] != float64(protocol.Version+1) {
			t.Errorf("another protocol version: %+v", d)
		}
		e.json(ctx, http.StatusBadRequest, "POST", path, contractRegToken,
			protocol.RegisterRequest{Name: "bell\a", Labels: labels, ProtocolVersion: protocol.Version})
		e.json(bad, http.StatusBadRequest, "POST", path, contractRegToken,
			protocol.RegisterRequest{Name: "x", Labels: []string{"two words"}, ProtocolVersion: protocol.Version})
		e.json(bad, http.StatusBadRequest, "POST", path, contractRegToken, []byte(`{"name":`))
		e.json(bad, http.StatusBadRequest, "POST", path, contractRegToken, []byte(`{"name":"x","protocol_version":1,"admin":true}`))
		r = e.json(bad, http.StatusRequestEntityTooLarge, "POST", path, contractRegToken, tooBig)
		if d := r.errorDetail(t); d.Code != protocol.CodeTooLarge || d.Details["limit"] != float64(api.DefaultMaxJSONBytes) {
			t.Errorf("oversized body: %+v", d)
		}
		r = e.expect(bad, http.StatusUnsupportedMediaType, "POST", path,
			contractHeader(contractRegToken, "Content-Type", "text/plain"), []byte(`{}`))
		if code := r.errorDetail(t).Code; code != protocol.CodeUnsupportedMedia {
			t.Errorf("text/plain body: code %q", code)
		}
	})

	var s1, s2 protocol.SessionResponse
	t.Run("session", func(t *testing.T) {
		e := e.on(t)
		const path = "/api/v1/runner/session"
		e.json(ctx, http.StatusOK, "POST", path, "", protocol.SessionRequest{RunnerID: r1.RunnerID, Credential: r1.Credential, ProtocolVersion: protocol.Version}).decode(t, &s1)
		e.json(ctx, http.StatusOK, "POST", path, "", protocol.SessionRequest{RunnerID: r2.RunnerID, Credential: r2.Credential, ProtocolVersion: protocol.Version}).decode(t, &s2)
		if s1.Token == "" || s1.ExpiresAt.IsZero() {
			t.Errorf("session = %+v", s1)
		}
		e.json(ctx, http.StatusUnauthorized, "POST", path, "", protocol.SessionRequest{RunnerID: r1.RunnerID, Credential: r2.Credential, ProtocolVersion: protocol.Version})
		e.json(ctx, http.StatusUnauthorized, "POST", path, "", protocol.SessionRequest{RunnerID: unknownID, Credential: r1.Credential, ProtocolVersion: protocol.Version})
		r := e.json(bad, http.StatusBadRequest, "POST", path, "",
			protocol.SessionRequest{RunnerID: r1.RunnerID, Credential: r1.Credential, ProtocolVersion: protocol.Version + 1})
		if code := r.errorDetail(t).Code; code != protocol.CodeProtocolVersion {
			t.Errorf("a session in another protocol version: code %q", code)
		}
		e.json(bad, http.StatusBadRequest, "POST", path, "", []byte(`{"runner_id":1}`))
		e.json(bad, http.StatusRequestEntityTooLarge, "POST", path, "", tooBig)
		e.expect(bad, http.StatusUnsupportedMediaType, "POST", path, contractHeader("", "Content-Type", "text/plain"), []byte(`{}`))
	})

	repo := contractRepo(t, map[string]string{".deltaci.yml": contractPipeline})
	t.Run("projects", func(t *testing.T) {
		testContractProjects(t, e, repo, contractTokens{viewer: viewer, bot: bot, session: s1.Token})
	})
	t.Run("project roles", func(t *testing.T) {
		testContractProjectRoles(t, e, contractTokens{viewer: viewer, bot: bot, session: s1.Token})
	})
	t.Run("hooks", func(t *testing.T) {
		testContractHooks(t, e.on(t), contractTokens{viewer: viewer, bot: bot, session: s1.Token})
	})

	var run1 protocol.Run
	t.Run("create run", func(t *testing.T) {
		e := e.on(t)
		const path = "/api/v1/runs"
		// The project's default branch, main, when no ref is named.
		req := protocol.CreateRunRequest{Project: "contract"}
		e.json(ctx, http.StatusUnauthorized, "POST", path, "", req)
		e.json(ctx, http.StatusUnauthorized, "POST", path, s1.Token, req)
		e.json(ctx, http.StatusUnauthorized, "POST", path, "dci_unknown-token", req)
		e.json(ctx, http.StatusBadRequest, "POST", path, contractAPIToken, protocol.CreateRunRequest{Project: "contract", Ref: "-x"})
		e.json(ctx, http.StatusBadRequest, "POST", path, contractAPIToken, protocol.CreateRunRequest{Project: "contract", Ref: "no-such-branch"})
		bare := contractRepo(t, map[string]string{"README": "no pipeline here\n"})
		e.addProject(ctx, contractProject{Name: "bare", RepoURL: bare})
		e.json(ctx, http.StatusBadRequest, "POST", path, contractAPIToken, protocol.CreateRunRequest{Project: "bare"})
		r := e.json(ctx, http.StatusBadRequest, "POST", path, contractAPIToken, protocol.CreateRunRequest{Project: "contract", Repo: bare})
		if msg := r.errorDetail(t).Message; !strings.Contains(msg, "not "+bare) {
			t.Errorf("a repo that is not the project's: %q", msg)
		}
		// A job asking for a runner label its project does not allow.
		gpu := contractRepo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  train:\n    run: 'true'\n    runs-on: [gpu]\n"})
		e.addProject(ctx, contractProject{Name: "gpu", RepoURL: gpu, Labels: []string{"os:linux"}})
		r = e.json(ctx, http.StatusBadRequest, "POST", path, contractAPIToken, protocol.CreateRunRequest{Project: "gpu"})
		if msg := r.errorDetail(t).Message; !strings.Contains(msg, `"gpu"`) {
			t.Errorf("a label the project does not allow: %q", msg)
		}
		e.json(bad, http.StatusBadRequest, "POST", path, contractAPIToken, protocol.CreateRunRequest{Project: "contract", Event: "pull_request"})
		e.json(bad, http.StatusBadRequest, "POST", path, contractAPIToken, []byte(`{"ref":"main"}`))
		e.json(bad, http.StatusBadRequest, "POST", path, contractAPIToken, []byte(`{"project":"contract","trusted":true}`))
		e.json(bad, http.StatusBadRequest, "POST", path, contractAPIToken, []byte(`{"repo":`))
		e.json(bad, http.StatusRequestEntityTooLarge, "POST", path, contractAPIToken, tooBig)
		e.expect(bad, http.StatusUnsupportedMediaType, "POST", path, contractHeader(contractAPIToken, "Content-Type", "text/yaml"), []byte(`{}`))
		// Runs are made for registered projects only.
		unregistered := contractRepo(t, map[string]string{".deltaci.yml": contractPipeline})
		r = e.json(ctx, http.StatusNotFound, "POST", path, contractAPIToken, protocol.CreateRunRequest{Repo: unregistered, Ref: "main"})
		if d := r.errorDetail(t); d.Code != string(core.KindNotFound) || !strings.Contains(d.Message, "not a registered project") {
			t.Errorf("an unregistered repository: %+v", d)
		}
		e.json(ctx, http.StatusNotFound, "POST", path, contractAPIToken, protocol.CreateRunRequest{Project: "nope"})

		e.json(ctx, http.StatusCreated, "POST", path, contractAPIToken, req).decode(t, &run1)
		if run1.State != string(core.RunRunning) || !run1.Trusted || run1.Event != core.EventPush || run1.Ref != "refs/heads/main" ||
			run1.Project != "contract" || run1.Repo != repo || !strings.Contains(run1.TrustReason, "protected branch main") {
			t.Errorf("created run = %+v", run1)
		}
		for name, want := range map[string]core.JobState{"build": core.JobQueued, "lint": core.JobQueued, "test": core.JobPending} {
			j := contractJob(t, run1, name)
			if j.State != string(want) {
				t.Errorf("job %s is %s, want %s", name, j.State, want)
			}
			if n := len(j.Attempts); (want == core.JobQueued) != (n == 1) {
				t.Errorf("job %s has %d attempts", name, n)
			}
		}

		got := e.run(ctx, run1.ID)
		if got.ID != run1.ID || len(got.Jobs) != 3 || got.Project != "contract" || got.TrustReason != run1.TrustReason {
			t.Errorf("GET run = %+v", got)
		}
		e.json(ctx, http.StatusNotFound, "GET", "/api/v1/runs/"+unknownID, contractAPIToken, nil)
		e.json(ctx, http.StatusUnauthorized, "GET", "/api/v1/runs/"+run1.ID, "", nil)
	})
	if run1.ID == "" {
		t.Fatal("no run to drive")
	}

	leases := map[string]protocol.Lease{}
	t.Run("lease", func(t *testing.T) {
		e := e.on(t)
		const path = "/api/v1/runner/lease"
		forged, _, err := other.IssueSession(r1.RunnerID, labels)
		if err != nil {
			t.Fatal(err)
		}
		e.skew.Store(int64(-time.Hour))
		expired, _, err := e.keys.IssueSession(r1.RunnerID, labels)
		e.skew.Store(0)
		if err != nil {
			t.Fatal(err)
		}
		e.json(ctx, http.StatusUnauthorized, "POST", path, "", nil)
		e.json(ctx, http.StatusUnauthorized, "POST", path, forged, nil)
		e.json(ctx, http.StatusUnauthorized, "POST", path, r1.Credential, nil)
		r := e.json(ctx, http.StatusUnauthorized, "POST", path, expired, nil)
		if msg := r.errorDetail(t).Message; !strings.Contains(msg, "expired") {
			t.Errorf("expired session: %q", msg)
		}
		e.json(bad, http.StatusBadRequest, "POST", path, s1.Token, protocol.LeaseRequest{WaitSeconds: -1})
		e.json(bad, http.StatusBadRequest, "POST", path, s1.Token, protocol.LeaseRequest{WaitSeconds: 3601})
		e.json(bad, http.StatusBadRequest, "POST", path, s1.Token, []byte(`{"wait_seconds":"soon"}`))
		e.json(bad, http.StatusRequestEntityTooLarge, "POST", path, s1.Token, tooBig)
		e.expect(bad, http.StatusUnsupportedMediaType, "POST", path, contractHeader(s1.Token, "Content-Type", "text/plain"), []byte(`{}`))
		for _, j := range e.run(ctx, run1.ID).Jobs {
			for _, a := range j.Attempts {
				if a.State != string(core.AttemptQueued) {
					t.Errorf("a refused lease moved attempt %s of %s to %s", a.ID, j.Name, a.State)
				}
			}
		}

		for range 2 {
			var l protocol.Lease
			e.json(ctx, http.StatusOK, "POST", path, s1.Token, protocol.LeaseRequest{WaitSeconds: 1}).decode(t, &l)
			leases[l.Job] = l
		}
		// test waits for build: nothing is left for anybody.
		e.json(ctx, http.StatusNoContent, "POST", path, s2.Token, nil)

		b, ok := leases["build"]
		if !ok || leases["lint"].AttemptID == "" {
			t.Fatalf("leased %v, want build and lint", leases)
		}
		if b.RunID != run1.ID || !b.Trusted || b.Repo != repo || b.NetworkDenied || b.Script != "echo build" || b.Env["GREETING"] != "hi" ||
			!slices.Equal(b.Outputs, []string{"out/**"}) || len(b.Needs) != 0 || b.AttemptNumber != 1 ||
			b.TTL() != contractTTL || !strings.HasPrefix(b.Digest, "sha256:") || b.LeaseToken == "" || b.JobToken == "" {
			t.Errorf("build lease = %+v", b)
		}
		// Only a hermetic job's lease says so, with the inputs its workspace is made of.
		if l := leases["lint"]; b.Hermetic || b.Inputs != nil || !l.Hermetic || !slices.Equal(l.Inputs, []string{".deltaci.yml"}) {
			t.Errorf("hermetic and inputs: build %v %q, lint %v %q", b.Hermetic, b.Inputs, l.Hermetic, l.Inputs)
		}
		for _, l := range leases {
			if a := e.attempt(ctx, run1.ID, l.AttemptID); a.State != string(core.AttemptLeased) || a.RunnerID != r1.RunnerID {
				t.Errorf("leased attempt reads back as %+v", a)
			}
		}
	})
	build, lint := leases["build"], leases["lint"]
	if build.AttemptID == "" || lint.AttemptID == "" {
		t.Fatal("no leases to drive")
	}
	if c := build.Cache; c == nil || !strings.HasPrefix(c.Key, "build-") || c.Scope != "shared" || c.Restore != nil || lint.Cache != nil {
		t.Errorf("build's lease cache = %+v, lint's %+v", c, lint.Cache)
	}
	attemptPath := func(id, what string) string { return "/api/v1/attempts/" + id + "/" + what }
	stale := protocol.Fenced{LeaseToken: strings.Repeat("0", 32)}
	// unchanged fails the test if the attempt's state or log moved.
	unchanged := func(t *testing.T, l protocol.Lease, state core.AttemptState, logLength int64) {
		t.Helper()
		a := e.on(t).attempt(ctx, l.RunID, l.AttemptID)
		if a.State != string(state) || a.LogLength != logLength {
			t.Errorf("attempt %s (%s) is %s with %d log bytes, want %s with %d", a.ID, l.Job, a.State, a.LogLength, state, logLength)
		}
	}
	// fencedRefusals checks what every fenced JSON route refuses, before
	// or without touching the attempt.
	fencedRefusals := func(t *testing.T, what string) {
		t.Helper()
		e := e.on(t)
		path := attemptPath(build.AttemptID, what)
		fenced := protocol.Fenced{LeaseToken: build.LeaseToken}
		e.json(ctx, http.StatusUnauthorized, "POST", path, "", fenced)
		e.json(ctx, http.StatusUnauthorized, "POST", path, build.JobToken, fenced)
		e.json(ctx, http.StatusNotFound, "POST", attemptPath(unknownID, what), s1.Token, fenced)
		r := e.json(ctx, http.StatusConflict, "POST", path, s2.Token, fenced)
		if code := r.errorDetail(t).Code; code != protocol.CodeLeaseLost {
			t.Errorf("%s by another runner: code %q", what, code)
		}
		r = e.json(ctx, http.StatusConflict, "POST", path, s1.Token, stale)
		if code := r.errorDetail(t).Code; code != protocol.CodeLeaseLost {
			t.Errorf("%s with a stale lease token: code %q", what, code)
		}
		e.json(bad, http.StatusBadRequest, "POST", path, s1.Token, []byte(`{}`))
		e.json(bad, http.StatusBadRequest, "POST", path, s1.Token, []byte(`{"lease_token":`))
		e.json(bad, http.StatusRequestEntityTooLarge, "POST", path, s1.Token, tooBig)
		e.expect(bad, http.StatusUnsupportedMediaType, "POST", path, contractHeader(s1.Token, "Content-Type", "text/plain"), []byte(`{}`))
	}

	t.Run("heartbeat, start, release", func(t *testing.T) {
		e := e.on(t)
		fenced := protocol.Fenced{LeaseToken: build.LeaseToken}
		var hb protocol.HeartbeatResponse
		e.json(ctx, http.StatusOK, "POST", attemptPath(build.AttemptID, "heartbeat"), s1.Token, fenced).decode(t, &hb)
		if hb.Cancel || hb.JobToken == "" || hb.LeaseExpiresAt.IsZero() {
			t.Errorf("heartbeat = %+v", hb)
		}
		for _, what := range []string{"heartbeat", "start", "release"} {
			fencedRefusals(t, what)
		}
		unchanged(t, build, core.AttemptLeased, 0)

		e.json(ctx, http.StatusNoContent, "POST", attemptPath(build.AttemptID, "start"), s1.Token, fenced)
		e.json(ctx, http.StatusNoContent, "POST", attemptPath(build.AttemptID, "start"), s1.Token, fenced)
		r := e.json(ctx, http.StatusConflict, "POST", attemptPath(build.AttemptID, "release"), s1.Token, fenced)
		if code := r.errorDetail(t).Code; code != string(core.KindConflict) {
			t.Errorf("release of a started attempt: code %q", code)
		}
		unchanged(t, build, core.AttemptRunning, 0)
		if j := contractJob(t, e.run(ctx, run1.ID), "build"); j.State != string(core.JobRunning) {
			t.Errorf("build is %s after its attempt started", j.State)
		}
	})

	var lintLog int64 // what lint's log holds once cut at its cap
	logPath := func(l protocol.Lease, query string) string { return attemptPath(l.AttemptID, "log") + query }
	put := func(t *testing.T, ctx context.Context, want int, l protocol.Lease, tok, leaseToken string, offset string, data []byte) contractResponse {
		t.Helper()
		return e.on(t).expect(ctx, want, "PUT", logPath(l, "?offset="+offset),
			contractHeader(tok, protocol.LeaseTokenHeader, leaseToken, "Content-Type", "application/octet-stream"), data)
	}
	t.Run("append log", func(t *testing.T) {
		e := e.on(t)
		var lr protocol.LogResponse
		put(t, ctx, http.StatusOK, build, build.JobToken, build.LeaseToken, "0", []byte("hello\n")).decode(t, &lr)
		if lr.Length != 6 {
			t.Errorf("length after the first chunk = %d", lr.Length)
		}
		put(t, ctx, http.StatusOK, build, build.JobToken, build.LeaseToken, "0", []byte("hello\n")).decode(t, &lr)
		if lr.Length != 6 {
			t.Errorf("length after a retried chunk = %d", lr.Length)
		}
		put(t, ctx, http.StatusOK, build, s1.Token, build.LeaseToken, "6", []byte("world\n")).decode(t, &lr)
		if lr.Length != 12 {
			t.Errorf("length after the second chunk = %d", lr.Length)
		}

		r := put(t, ctx, http.StatusRequestedRangeNotSatisfiable, build, build.JobToken, build.LeaseToken, "100", []byte("gap"))
		if d := r.errorDetail(t); d.Code != protocol.CodeLogOffset || d.Details["length"] != float64(12) {
			t.Errorf("a gap: %+v", d)
		}
		r = put(t, ctx, http.StatusConflict, build, build.JobToken, stale.LeaseToken, "12", []byte("late"))
		if code := r.errorDetail(t).Code; code != protocol.CodeLeaseLost {
			t.Errorf("a stale lease token: code %q", code)
		}
		r = put(t, ctx, http.StatusForbidden, build, lint.JobToken, build.LeaseToken, "12", []byte("mine"))
		if code := r.errorDetail(t).Code; code != "forbidden" {
			t.Errorf("another attempt's job token: code %q", code)
		}
		forged, err := other.IssueJobToken(r1.RunnerID, run1.ID, build.AttemptID, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		expired, err := e.keys.IssueJobToken(r1.RunnerID, run1.ID, build.AttemptID, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		put(t, ctx, http.StatusUnauthorized, build, "", build.LeaseToken, "12", []byte("x"))
		put(t, ctx, http.StatusUnauthorized, build, forged, build.LeaseToken, "12", []byte("x"))
		put(t, ctx, http.StatusUnauthorized, build, expired, build.LeaseToken, "12", []byte("x"))
		put(t, ctx, http.StatusNotFound, protocol.Lease{AttemptID: unknownID}, s1.Token, build.LeaseToken, "0", []byte("x"))
		// An offset no log reaches, more than a chunk past the log's cap
		// (4096 bytes here), is no offset.
		r = put(t, ctx, http.StatusBadRequest, build, build.JobToken, build.LeaseToken, strconv.Itoa(4096+api.MaxLogChunk+1), []byte("x"))
		if code := r.errorDetail(t).Code; code != string(core.KindInvalid) {
			t.Errorf("an offset past the cap: code %q", code)
		}
		r = put(t, ctx, http.StatusConflict, build, s2.Token, build.LeaseToken, "12", []byte("x"))
		if code := r.errorDetail(t).Code; code != protocol.CodeLeaseLost {
			t.Errorf("another runner's session: code %q", code)
		}
		put(t, bad, http.StatusBadRequest, build, build.JobToken, build.LeaseToken, "-1", []byte("x"))
		put(t, bad, http.StatusBadRequest, build, build.JobToken, build.LeaseToken, "twelve", []byte("x"))
		put(t, bad, http.StatusBadRequest, build, build.JobToken, "", "12", []byte("x"))
		e.expect(bad, http.StatusUnsupportedMediaType, "PUT", logPath(build, "?offset=12"),
			contractHeader(build.JobToken, protocol.LeaseTokenHeader, build.LeaseToken, "Content-Type", "text/plain"), []byte("x"))
		r = put(t, ctx, http.StatusRequestEntityTooLarge, build, build.JobToken, build.LeaseToken, "12", make([]byte, api.MaxLogChunk+1))
		if d := r.errorDetail(t); d.Code != protocol.CodeTooLarge || d.Details["limit"] != float64(api.MaxLogChunk) {
			t.Errorf("an oversized chunk: %+v", d)
		}
		unchanged(t, build, core.AttemptRunning, 12)

		// Past the cap, the kept log says why it ends, once.
		r = put(t, ctx, http.StatusRequestEntityTooLarge, lint, lint.JobToken, lint.LeaseToken, "0", make([]byte, 4097))
		if code := r.errorDetail(t).Code; code != protocol.CodeLogCapExceeded {
			t.Errorf("a chunk past the cap: code %q", code)
		}
		note := e.expect(ctx, http.StatusOK, "GET", logPath(lint, ""), contractHeader(contractAPIToken), nil).body
		if !bytes.HasPrefix(note, []byte("\ndeltaci: the log reached its cap of 4096 bytes")) {
			t.Errorf("log cut at its cap = %.120q", note)
		}
		lintLog = int64(len(note))
		put(t, ctx, http.StatusRequestEntityTooLarge, lint, lint.JobToken, lint.LeaseToken, strconv.FormatInt(lintLog, 10), make([]byte, 4096))
		unchanged(t, lint, core.AttemptLeased, lintLog)
	})

	t.Run("read log", func(t *testing.T) {
		e := e.on(t)
		r := e.expect(ctx, http.StatusOK, "GET", logPath(build, ""), contractHeader(contractAPIToken), nil)
		if string(r.body) != "hello\nworld\n" {
			t.Errorf("log = %q", r.body)
		}
		r = e.expect(ctx, http.StatusOK, "GET", logPath(build, "?offset=6"), contractHeader(build.JobToken), nil)
		if string(r.body) != "world\n" {
			t.Errorf("log from 6 = %q", r.body)
		}
		// A runner reads the logs of its own attempts only.
		e.expect(ctx, http.StatusOK, "GET", logPath(build, "?offset=12"), contractHeader(s1.Token), nil)
		r = e.expect(ctx, http.StatusForbidden, "GET", logPath(build, ""), contractHeader(s2.Token), nil)
		if code := r.errorDetail(t).Code; code != "forbidden" {
			t.Errorf("another runner reading the log: code %q", code)
		}
		r = e.expect(ctx, http.StatusRequestedRangeNotSatisfiable, "GET", logPath(build, "?offset=100"), contractHeader(contractAPIToken), nil)
		if d := r.errorDetail(t); d.Code != protocol.CodeLogOffset || d.Details["length"] != float64(12) {
			t.Errorf("reading past the end: %+v", d)
		}
		e.expect(bad, http.StatusBadRequest, "GET", logPath(build, "?offset=x"), contractHeader(contractAPIToken), nil)
		e.expect(bad, http.StatusBadRequest, "GET", logPath(build, "?follow=1"), contractHeader(contractAPIToken, "Last-Event-ID", "x"), nil)
		expired, err := e.keys.IssueJobToken(r1.RunnerID, run1.ID, build.AttemptID, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{"", lint.JobToken, expired, "api-token-guess"} {
			e.expect(ctx, http.StatusUnauthorized, "GET", logPath(build, ""), contractHeader(tok), nil)
		}
		e.expect(ctx, http.StatusNotFound, "GET", logPath(protocol.Lease{AttemptID: unknownID}, ""), contractHeader(contractAPIToken), nil)
	})

	// The outputs manifest of build, and one that names another attempt.
	outputs := func(a core.Attempt, j core.Job) (digest.Digest, []byte) {
		t.Helper()
		b, err := manifest.Encode(manifest.Manifest{Annotations: results.Annotations(a, j)})
		if err != nil {
			t.Fatal(err)
		}
		d, err := digest.FromBytes(digest.SHA256, b)
		if err != nil {
			t.Fatal(err)
		}
		return d, b
	}
	buildJob := core.Job{Name: build.Job, Digest: build.Digest}
	md, mb := outputs(core.Attempt{ID: build.AttemptID, RunID: build.RunID, Number: build.AttemptNumber}, buildJob)
	lintAttempt := core.Attempt{ID: lint.AttemptID, RunID: lint.RunID, Number: lint.AttemptNumber}
	wrongD, wrongB := outputs(lintAttempt, buildJob)
	lintD, lintB := outputs(lintAttempt, core.Job{Name: lint.Job, Digest: lint.Digest})
	absent, err := digest.FromBytes(digest.SHA256, []byte("never stored"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("store scope", func(t *testing.T) {
		e := e.on(t)
		cbor := func(tok string) http.Header { return contractHeader(tok, "Content-Type", manifest.MediaTypeCBOR) }
		e.expect(ctx, http.StatusCreated, "PUT", "/store/api/v1/manifests/"+md.String(), cbor(build.JobToken), mb)
		e.expect(ctx, http.StatusCreated, "PUT", "/store/api/v1/manifests/"+wrongD.String(), cbor(s1.Token), wrongB)
		e.expect(ctx, http.StatusCreated, "PUT", "/store/api/v1/manifests/"+lintD.String(), cbor(lint.JobToken), lintB)
		e.expect(ctx, http.StatusOK, "GET", "/store/api/v1/manifests/"+md.String(), contractHeader(build.JobToken), nil)
		r := e.expect(ctx, http.StatusForbidden, "PUT", "/store/api/v1/refs/outputs/"+build.AttemptID+":latest",
			contractHeader(build.JobToken, "Content-Type", "application/json"), []byte(`{"manifest":"`+md.String()+`"}`))
		if code := r.errorDetail(t).Code; code != "forbidden" {
			t.Errorf("a runner moving a ref: code %q", code)
		}
		// A runner's push holds a GC lease on what it uploads while it
		// runs; GC itself stays an admin's.
		r = e.expect(ctx, http.StatusCreated, "POST", "/store/api/v1/gc/leases",
			contractHeader(build.JobToken, "Content-Type", "application/json"), []byte(`{"digests":["`+md.String()+`"],"ttl":"1m"}`))
		var lease struct {
			ID string `json:"id"`
		}
		r.decode(t, &lease)
		e.expect(ctx, http.StatusNoContent, "DELETE", "/store/api/v1/gc/leases/"+lease.ID, contractHeader(build.JobToken), nil)
		e.expect(ctx, http.StatusForbidden, "POST", "/store/api/v1/gc", contractHeader(build.JobToken, "Content-Type", "application/json"), []byte(`{}`))
		e.expect(ctx, http.StatusUnauthorized, "GET", "/store/api/v1/refs", contractHeader("forged"), nil)
		e.expect(ctx, http.StatusUnauthorized, "GET", "/store/api/v1/refs", nil, nil)
		e.expect(ctx, http.StatusUnauthorized, "GET", "/store/api/v1/refs", contractHeader("dci_unknown-token"), nil)
		e.expect(ctx, http.StatusOK, "GET", "/store/api/v1/refs", contractHeader(contractAPIToken), nil)

		// The store records who wrote: the API token's principal, whatever
		// X-Actor says.
		ref := []byte(`{"manifest":"` + md.String() + `"}`)
		e.expect(ctx, http.StatusOK, "PUT", "/store/api/v1/refs/contract/by-config",
			contractHeader(contractAPIToken, "Content-Type", "application/json", "X-Actor", "mallory"), ref)
		e.expect(ctx, http.StatusOK, "PUT", "/store/api/v1/refs/contract/by-bot",
			contractHeader(bot, "Content-Type", "application/json", "X-Actor", "mallory"), ref)
		e.expect(ctx, http.StatusOK, "PUT", "/store/api/v1/refs/contract/by-viewer", contractHeader(viewer, "Content-Type", "application/json"), ref)
		for actor, ref := range map[string]string{"token:configured": "by-config", "token:ci-bot": "by-bot", "token:viewer": "by-viewer"} {
			evs := contractAudit(t, e, actor)
			if !slices.ContainsFunc(evs, func(ev contractAuditEvent) bool { return ev.Kind == "ref.set" && strings.Contains(ev.Subject, ref) }) {
				t.Errorf("the audit of %s lacks setting %s: %+v", actor, ref, evs)
			}
		}
		if evs := contractAudit(t, e, "mallory"); len(evs) != 0 {
			t.Errorf("X-Actor was recorded: %+v", evs)
		}
	})

	complete := func(t *testing.T, ctx context.Context, want int, tok string, l protocol.Lease, body any) contractResponse {
		t.Helper()
		return e.on(t).json(ctx, want, "POST", attemptPath(l.AttemptID, "complete"), tok, body)
	}
	exit := func(n int) *int { return &n }
	t.Run("complete refused", func(t *testing.T) {
		e := e.on(t)
		ok := protocol.CompleteRequest{LeaseToken: build.LeaseToken, State: core.AttemptSucceeded, OutputsManifest: md.String()}
		complete(t, ctx, http.StatusUnauthorized, "", build, ok)
		complete(t, ctx, http.StatusUnauthorized, build.JobToken, build, ok)
		complete(t, ctx, http.StatusNotFound, s1.Token, protocol.Lease{AttemptID: unknownID}, ok)
		r := complete(t, ctx, http.StatusConflict, s2.Token, build, ok)
		if code := r.errorDetail(t).Code; code != protocol.CodeLeaseLost {
			t.Errorf("complete by another runner: code %q", code)
		}
		staleReq := ok
		staleReq.LeaseToken = stale.LeaseToken
		r = complete(t, ctx, http.StatusConflict, s1.Token, build, staleReq)
		if code := r.errorDetail(t).Code; code != protocol.CodeLeaseLost {
			t.Errorf("complete with a stale lease token: code %q", code)
		}
		for _, body := range []string{
			`{"lease_token":"` + build.LeaseToken + `","state":"running"}`,
			`{"lease_token":"` + build.LeaseToken + `","state":"lost"}`,
			`{"lease_token":"` + build.LeaseToken + `","state":"failed","reason":"bad luck"}`,
			`{"lease_token":"` + build.LeaseToken + `","state":"failed","reason":"runner_lost"}`,
			`{"lease_token":"` + build.LeaseToken + `","state":"succeeded","reason":"exit_code","outputs_manifest":"` + md.String() + `"}`,
			`{"lease_token":"` + build.LeaseToken + `","state":"failed","exit_code":300}`,
			`{"state":"failed"}`,
			`{"lease_token":"` + build.LeaseToken + `","state":"succeeded","outputs_manifest":"nope"}`,
			`{"lease_token":"` + build.LeaseToken + `","state":"succeeded"`,
		} {
			complete(t, bad, http.StatusBadRequest, s1.Token, build, []byte(body))
		}
		complete(t, ctx, http.StatusBadRequest, s1.Token, build, protocol.CompleteRequest{LeaseToken: build.LeaseToken, State: core.AttemptSucceeded})
		r = complete(t, ctx, http.StatusBadRequest, s1.Token, build,
			protocol.CompleteRequest{LeaseToken: build.LeaseToken, State: core.AttemptSucceeded, OutputsManifest: wrongD.String()})
		if msg := r.errorDetail(t).Message; !strings.Contains(msg, "not the outputs of attempt") {
			t.Errorf("another attempt's manifest: %q", msg)
		}
		complete(t, ctx, http.StatusNotFound, s1.Token, build,
			protocol.CompleteRequest{LeaseToken: build.LeaseToken, State: core.AttemptSucceeded, OutputsManifest: absent.String()})
		complete(t, bad, http.StatusRequestEntityTooLarge, s1.Token, build, tooBig)
		e.expect(bad, http.StatusUnsupportedMediaType, "POST", attemptPath(build.AttemptID, "complete"),
			contractHeader(s1.Token, "Content-Type", "text/plain"), []byte(`{}`))
		// A leased attempt can neither fail nor succeed before it started,
		// and a refused success records no outputs.
		r = complete(t, ctx, http.StatusConflict, s1.Token, lint, protocol.CompleteRequest{LeaseToken: lint.LeaseToken, State: core.AttemptFailed, ExitCode: exit(1)})
		if code := r.errorDetail(t).Code; code != string(core.KindConflict) {
			t.Errorf("failing a leased attempt: code %q", code)
		}
		complete(t, ctx, http.StatusConflict, s1.Token, lint, protocol.CompleteRequest{LeaseToken: lint.LeaseToken, State: core.AttemptSucceeded, OutputsManifest: lintD.String()})
		e.expect(ctx, http.StatusNotFound, "GET", "/store/api/v1/refs/"+results.OutputsRef(lint.AttemptID), contractHeader(contractAPIToken), nil)
		unchanged(t, build, core.AttemptRunning, 12)
		unchanged(t, lint, core.AttemptLeased, lintLog)
		if run := e.run(ctx, run1.ID); run.State != string(core.RunRunning) {
			t.Errorf("run is %s after refused completions", run.State)
		}
	})

	t.Run("complete", func(t *testing.T) {
		e := e.on(t)
		// A follower connected before the end gets every byte and the end.
		fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		type result struct {
			r   contractResponse
			err error
		}
		followed := make(chan result, 1)
		go func() {
			r, err := e.try(fctx, "GET", logPath(build, "?follow=1"), contractHeader(contractAPIToken), nil)
			followed <- result{r, err}
		}()

		ok := protocol.CompleteRequest{LeaseToken: build.LeaseToken, State: core.AttemptSucceeded, OutputsManifest: md.String(), ExitCode: exit(0),
			Cache: &protocol.CacheReport{Outcome: "cold", SavedManifest: md.String(), UploadedBytes: 1}}
		var cr protocol.CompleteResponse
		complete(t, ctx, http.StatusOK, s1.Token, build, ok).decode(t, &cr)
		if cr.AttemptID != build.AttemptID || cr.State != core.AttemptSucceeded {
			t.Errorf("complete = %+v", cr)
		}
		complete(t, ctx, http.StatusOK, s1.Token, build, ok).decode(t, &cr)
		if cr.State != core.AttemptSucceeded {
			t.Errorf("a retried completion = %+v", cr)
		}
		r := complete(t, ctx, http.StatusConflict, s1.Token, build, protocol.CompleteRequest{LeaseToken: build.LeaseToken, State: core.AttemptFailed, ExitCode: exit(1)})
		if code := r.errorDetail(t).Code; code != protocol.CodeLeaseLost {
			t.Errorf("another outcome after the end: code %q", code)
		}
		fenced := protocol.Fenced{LeaseToken: build.LeaseToken}
		for _, what := range []string{"heartbeat", "start", "release"} {
			e.json(ctx, http.StatusConflict, "POST", attemptPath(build.AttemptID, what), s1.Token, fenced)
		}
		r = put(t, ctx, http.StatusConflict, build, build.JobToken, build.LeaseToken, "12", []byte("after the end"))
		if code := r.errorDetail(t).Code; code != protocol.CodeLeaseLost {
			t.Errorf("a log chunk after the end: code %q", code)
		}

		run := e.run(ctx, run1.ID)
		a := e.sealed(ctx, run1.ID, build.AttemptID)
		if a.State != string(core.AttemptSucceeded) || a.LogLength != 12 || a.ExitCode == nil || *a.ExitCode != 0 || a.FinishedAt == nil {
			t.Errorf("build's attempt = %+v", a)
		}
		if c := a.Cache; c == nil || c.Outcome != "cold" || c.Saved != "saved" || c.Scope != "shared" || c.UploadedBytes != 1 {
			t.Errorf("build's attempt cache = %+v", c)
		}
		if c := contractJob(t, run, "build").Cache; c == nil || !strings.HasPrefix(c.Key, "build-") || len(c.Paths) != 2 {
			t.Errorf("build's cache = %+v", c)
		}
		if j := contractJob(t, run, "build"); j.State != string(core.JobSucceeded) {
			t.Errorf("build is %s", j.State)
		}
		if j := contractJob(t, run, "test"); j.State != string(core.JobQueued) || len(j.Attempts) != 1 {
			t.Errorf("test after build = %+v", j)
		}

		f := <-followed
		if f.err != nil || f.r.status != http.StatusOK {
			t.Fatalf("follow = %d %s, %v", f.r.status, f.r.body, f.err)
		}
		checkFollowed(t, f.r, 0, "hello\nworld\n", core.AttemptSucceeded)
	})
	logDigest := e.on(t).attempt(ctx, run1.ID, build.AttemptID).LogDigest

	t.Run("read sealed log", func(t *testing.T) {
		e := e.on(t)
		r := e.expect(ctx, http.StatusOK, "GET", logPath(build, ""), contractHeader(contractAPIToken), nil)
		if string(r.body) != "hello\nworld\n" {
			t.Errorf("sealed log = %q", r.body)
		}
		r = e.expect(ctx, http.StatusOK, "GET", logPath(build, "?offset=6"), contractHeader(contractAPIToken), nil)
		if string(r.body) != "world\n" {
			t.Errorf("sealed log from 6 = %q", r.body)
		}
		r = e.expect(ctx, http.StatusOK, "GET", logPath(build, "?follow=1"), contractHeader(contractAPIToken), nil)
		if end := checkFollowed(t, r, 0, "hello\nworld\n", core.AttemptSucceeded); end.Digest != logDigest {
			t.Errorf("end digest %q, attempt's log digest %q", end.Digest, logDigest)
		}
		r = e.expect(ctx, http.StatusOK, "GET", logPath(build, "?follow=1"), contractHeader(contractAPIToken, "Last-Event-ID", "6"), nil)
		checkFollowed(t, r, 6, "world\n", core.AttemptSucceeded)
		r = e.expect(ctx, http.StatusOK, "GET", logPath(build, "?follow=1&offset=100"), contractHeader(contractAPIToken), nil)
		if evs := r.events(t); len(evs) != 1 || evs[0].name != "error" {
			t.Errorf("following past the end = %q", r.body)
		}
		e.expect(ctx, http.StatusRequestedRangeNotSatisfiable, "GET", logPath(build, "?offset=13"), contractHeader(contractAPIToken), nil)
	})

	t.Run("release", func(t *testing.T) {
		e := e.on(t)
		var tl protocol.Lease
		e.json(ctx, http.StatusOK, "POST", "/api/v1/runner/lease", s1.Token, nil).decode(t, &tl)
		if tl.Job != "test" || len(tl.Needs) != 1 || tl.Needs[0] != (protocol.NeedOutputs{Job: "build", Manifest: md.String()}) {
			t.Fatalf("test's lease = %+v", tl)
		}
		release := attemptPath(tl.AttemptID, "release")
		e.json(ctx, http.StatusConflict, "POST", release, s1.Token, stale)
		unchanged(t, tl, core.AttemptLeased, 0)
		e.json(ctx, http.StatusNoContent, "POST", release, s1.Token, protocol.Fenced{LeaseToken: tl.LeaseToken})
		e.json(ctx, http.StatusNoContent, "POST", release, s1.Token, protocol.Fenced{LeaseToken: tl.LeaseToken})
		put(t, ctx, http.StatusConflict, tl, tl.JobToken, tl.LeaseToken, "0", []byte("too late"))
		e.json(ctx, http.StatusConflict, "POST", attemptPath(tl.AttemptID, "heartbeat"), s1.Token, protocol.Fenced{LeaseToken: tl.LeaseToken})
		a := e.attempt(ctx, run1.ID, tl.AttemptID)
		if a.State != string(core.AttemptLost) || a.Reason != string(core.ReasonReleased) {
			t.Errorf("released attempt = %+v", a)
		}
		test := contractJob(t, e.run(ctx, run1.ID), "test")
		if len(test.Attempts) != 2 || test.Attempts[1].State != string(core.AttemptQueued) {
			t.Fatalf("test after the release = %+v", test)
		}

		var t2 protocol.Lease
		e.json(ctx, http.StatusOK, "POST", "/api/v1/runner/lease", s1.Token, protocol.LeaseRequest{WaitSeconds: 1}).decode(t, &t2)
		if t2.Job != "test" || t2.AttemptID != test.Attempts[1].ID {
			t.Fatalf("lease after the release = %+v", t2)
		}
		e.json(ctx, http.StatusNoContent, "POST", attemptPath(t2.AttemptID, "start"), s1.Token, protocol.Fenced{LeaseToken: t2.LeaseToken})
		complete(t, ctx, http.StatusOK, s1.Token, t2, protocol.CompleteRequest{LeaseToken: t2.LeaseToken, State: core.AttemptFailed, Reason: core.ReasonExitCode, ExitCode: exit(1)})
		e.json(ctx, http.StatusNoContent, "POST", attemptPath(lint.AttemptID, "start"), s1.Token, protocol.Fenced{LeaseToken: lint.LeaseToken})
		complete(t, ctx, http.StatusOK, s1.Token, lint, protocol.CompleteRequest{LeaseToken: lint.LeaseToken, State: core.AttemptFailed, ExitCode: exit(2)})

		run := e.run(ctx, run1.ID)
		if run.State != string(core.RunFailed) || run.FinishedAt == nil {
			t.Errorf("run1 ended %s", run.State)
		}
		if a := e.attempt(ctx, run1.ID, lint.AttemptID); a.ExitCode == nil || *a.ExitCode != 2 || a.Reason != string(core.ReasonExitCode) {
			t.Errorf("lint's attempt = %+v", a)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		e := e.on(t)
		cancel := func(want int, tok, id string) contractResponse {
			t.Helper()
			return e.json(ctx, want, "POST", "/api/v1/runs/"+id+"/cancel", tok, nil)
		}
		r := cancel(http.StatusConflict, contractAPIToken, run1.ID)
		if code := r.errorDetail(t).Code; code != string(core.KindConflict) {
			t.Errorf("canceling an ended run: code %q", code)
		}
		cancel(http.StatusNotFound, contractAPIToken, unknownID)

		// A run named by its project's repository.
		run2 := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Repo: repo, Ref: "main"})
		if run2.Project != "contract" || !run2.Trusted {
			t.Errorf("a run by repository = %+v", run2)
		}
		if j := contractJob(t, run2, "build"); j.State != string(core.JobReused) || j.ReusedFrom != build.AttemptID {
			t.Errorf("build in the second run = %+v", j)
		}
		cancel(http.StatusUnauthorized, "", run2.ID)
		cancel(http.StatusForbidden, e.apiToken("watcher", auth.RoleViewer), run2.ID)
		if run := e.run(ctx, run2.ID); run.State != string(core.RunRunning) {
			t.Errorf("run2 is %s after a refused cancel", run.State)
		}
		var x protocol.Lease
		e.json(ctx, http.StatusOK, "POST", "/api/v1/runner/lease", s1.Token, nil).decode(t, &x)
		fenced := protocol.Fenced{LeaseToken: x.LeaseToken}
		e.json(ctx, http.StatusNoContent, "POST", attemptPath(x.AttemptID, "start"), s1.Token, fenced)

		var got protocol.Run
		cancel(http.StatusOK, contractAPIToken, run2.ID).decode(t, &got)
		if got.State != string(core.RunCanceling) {
			t.Errorf("run2 after cancel = %s", got.State)
		}
		cancel(http.StatusOK, contractAPIToken, run2.ID)
		var hb protocol.HeartbeatResponse
		e.json(ctx, http.StatusOK, "POST", attemptPath(x.AttemptID, "heartbeat"), s1.Token, fenced).decode(t, &hb)
		if !hb.Cancel {
			t.Error("heartbeat of a canceling run does not say cancel")
		}
		complete(t, ctx, http.StatusOK, s1.Token, x, protocol.CompleteRequest{LeaseToken: x.LeaseToken, State: core.AttemptCanceled, Reason: core.ReasonCanceled})
		if run := e.run(ctx, run2.ID); run.State != string(core.RunCanceled) {
			t.Errorf("run2 ended %s", run.State)
		}
		cancel(http.StatusConflict, contractAPIToken, run2.ID)
	})

	t.Run("runners", func(t *testing.T) {
		e := e.on(t)
		var r3 protocol.RegisterResponse
		e.json(ctx, http.StatusCreated, "POST", "/api/v1/runners/register", contractRegToken,
			protocol.RegisterRequest{Name: "runner-3", Labels: labels, ProtocolVersion: protocol.Version}).decode(t, &r3)
		var s3 protocol.SessionResponse
		session := protocol.SessionRequest{RunnerID: r3.RunnerID, Credential: r3.Credential, ProtocolVersion: protocol.Version}
		e.json(ctx, http.StatusOK, "POST", "/api/v1/runner/session", "", session).decode(t, &s3)
		list := func() []string {
			t.Helper()
			var got protocol.RunnerList
			e.json(ctx, http.StatusOK, "GET", "/api/v1/runners", contractAPIToken, nil).decode(t, &got)
			var names []string
			for _, rn := range got.Runners {
				names = append(names, rn.Name)
			}
			return names
		}
		if got := list(); !slices.Contains(got, "runner-1") || !slices.Contains(got, "runner-3") {
			t.Errorf("runners = %v", got)
		}
		e.json(ctx, http.StatusUnauthorized, "GET", "/api/v1/runners", "", nil)
		e.json(ctx, http.StatusUnauthorized, "DELETE", "/api/v1/runners/"+r3.RunnerID, s3.Token, nil)
		// Managing runners needs an admin token.
		for _, r := range []contractResponse{
			e.json(ctx, http.StatusForbidden, "GET", "/api/v1/runners", viewer, nil),
			e.json(ctx, http.StatusForbidden, "DELETE", "/api/v1/runners/"+r3.RunnerID, viewer, nil),
		} {
			if code := r.errorDetail(t).Code; code != protocol.CodeForbidden {
				t.Errorf("a viewer managing runners: code %q", code)
			}
		}
		if got := list(); !slices.Contains(got, "runner-3") {
			t.Errorf("runners after a refused removal = %v", got)
		}
		e.json(ctx, http.StatusNotFound, "DELETE", "/api/v1/runners/"+unknownID, contractAPIToken, nil)
		e.json(ctx, http.StatusNoContent, "DELETE", "/api/v1/runners/"+r3.RunnerID, contractAPIToken, nil)
		e.json(ctx, http.StatusNotFound, "DELETE", "/api/v1/runners/"+r3.RunnerID, contractAPIToken, nil)
		if got := list(); slices.Contains(got, "runner-3") {
			t.Errorf("runners after the removal = %v", got)
		}
		// Its credential and its session token are refused from now on.
		e.json(ctx, http.StatusUnauthorized, "POST", "/api/v1/runner/session", "", session)
		r := e.json(ctx, http.StatusUnauthorized, "POST", "/api/v1/runner/lease", s3.Token, protocol.LeaseRequest{WaitSeconds: 1})
		if d := r.errorDetail(t); !strings.Contains(d.Message, "removed") {
			t.Errorf("lease of a removed runner: %+v", d)
		}
	})

	t.Run("no credential", func(t *testing.T) { testContractNoCredential(t, e) })
	t.Run("server without authentication", func(t *testing.T) { testContractNoAuth(t, cov, repo) })
	t.Run("rate limit", func(t *testing.T) { testContractRateLimit(t, cov) })
	t.Run("fetch timeout", func(t *testing.T) { testContractFetchTimeout(t, cov) })
	t.Run("trust", func(t *testing.T) { testContractTrust(t, cov) })
	t.Run("run events", func(t *testing.T) { testContractRunEvents(t, cov, "SQLite") })
	t.Run("run history", func(t *testing.T) { testContractHistory(t, cov, "SQLite") })
	t.Run("analysis", func(t *testing.T) { testContractAnalysis(t, cov, "SQLite") })

	t.Run("not ready", func(t *testing.T) {
		d := newContractEnv(t, contractOptions{cov: cov})
		var reg protocol.RegisterResponse
		d.json(ctx, http.StatusCreated, "POST", "/api/v1/runners/register", contractRegToken,
			protocol.RegisterRequest{Name: "r", Labels: labels, ProtocolVersion: protocol.Version}).decode(t, &reg)
		var s protocol.SessionResponse
		d.json(ctx, http.StatusOK, "POST", "/api/v1/runner/session", "", protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version}).decode(t, &s)
		d.srv.Drain()
		r := d.expect(ctx, http.StatusServiceUnavailable, "GET", "/readyz", nil, nil)
		if !bytes.Contains(r.body, []byte(`"draining"`)) {
			t.Errorf("draining readyz = %s", r.body)
		}
		d.expect(ctx, http.StatusOK, "GET", "/healthz", nil, nil)
		d.json(ctx, http.StatusNoContent, "POST", "/api/v1/runner/lease", s.Token, protocol.LeaseRequest{WaitSeconds: 30})

		down := newContractEnv(t, contractOptions{cov: cov})
		if err := down.st.Close(); err != nil {
			t.Fatal(err)
		}
		r = down.expect(ctx, http.StatusServiceUnavailable, "GET", "/readyz", nil, nil)
		if code := r.errorDetail(t).Code; code != string(core.KindUnavailable) {
			t.Errorf("readyz with the database closed: code %q", code)
		}
	})

	// Every operation with every status the document lists.
	doc, err := contractDoc()
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				if code == "default" {
					continue
				}
				status, err := strconv.Atoi(code)
				if err != nil {
					t.Fatalf("%s %s: response %q", method, path, code)
				}
				if !cov.Has(op.OperationID, status) {
					t.Errorf("never exercised: %s %s (%s) → %d", method, path, op.OperationID, status)
				}
			}
		}
	}
}

// checkFollowed checks a followed log's events from offset: log events
// whose ids are the offsets after them, carrying want, then one end event.
func checkFollowed(t *testing.T, r contractResponse, offset int64, want string, state core.AttemptState) protocol.LogEnd {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("follow Content-Type = %q", ct)
	}
	evs := r.events(t)
	var got []byte
	var end protocol.LogEnd
	for i, ev := range evs {
		switch ev.name {
		case "log":
			var le protocol.LogEvent
			if err := json.Unmarshal(ev.data, &le); err != nil {
				t.Fatalf("log event %q: %v", ev.data, err)
			}
			if le.Offset != offset+int64(len(got)) || ev.id != strconv.FormatInt(le.Offset+int64(len(le.Data)), 10) {
				t.Errorf("log event at %d with id %s after %d bytes", le.Offset, ev.id, len(got))
			}
			got = append(got, le.Data...)
		case "end":
			if i != len(evs)-1 {
				t.Errorf("end event is not the last: %q", r.body)
			}
			if err := json.Unmarshal(ev.data, &end); err != nil {
				t.Fatalf("end event %q: %v", ev.data, err)
			}
		default:
			t.Errorf("unexpected %q event: %s", ev.name, ev.data)
		}
	}
	if string(got) != want || end.Length != offset+int64(len(want)) || end.State != string(state) {
		t.Errorf("followed %q ending %+v, want %q ending at %d %s", got, end, want, offset+int64(len(want)), state)
	}
	return end
}

// TestContractRoutes checks that routes.go and the document list the same
// operations, and that every documented operation reaches a handler.
func TestContractRoutes(t *testing.T) {
	t.Parallel()
	doc, err := contractDoc()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		prefix := "/api/v1"
		if len(item.Servers) > 0 {
			prefix = strings.TrimSuffix(item.Servers[0].URL, "/")
		}
		for method := range item.Operations() {
			documented[method+" "+prefix+path] = true
		}
	}
	routed := contractRoutes(t)
	for r := range routed {
		if !documented[r] {
			t.Errorf("routes.go serves %s, which api/openapi.yaml does not document", r)
		}
	}
	for d := range documented {
		if !routed[d] {
			t.Errorf("api/openapi.yaml documents %s, which routes.go does not serve", d)
		}
	}

	// The mux answers an unrouted request with a plain-text 404 or a 405.
	e := newContractEnv(t, contractOptions{})
	for r := range documented {
		method, path, _ := strings.Cut(r, " ")
		path = strings.NewReplacer("{id}", store.NewID(), "{name}", "x").Replace(path)
		resp, err := e.try(contractUnchecked(t.Context()), method, path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.status == http.StatusMethodNotAllowed || resp.status == http.StatusNotFound && !strings.HasPrefix(resp.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s is documented but not routed: %d %s", r, resp.status, resp.body)
		}
	}
}

// contractRoutes reads the method patterns registered in routes.go, other
// than the artifact store's mount.
func contractRoutes(t *testing.T) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "routes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						consts[name.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
		return true
	})
	// eval folds a concatenation of string literals and local constants.
	var eval func(ast.Expr) (string, bool)
	eval = func(x ast.Expr) (string, bool) {
		switch x := x.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(x.Value)
			return s, err == nil && x.Kind == token.STRING
		case *ast.Ident:
			s, ok := consts[x.Name]
			return s, ok
		case *ast.BinaryExpr:
			a, aok := eval(x.X)
			b, bok := eval(x.Y)
			return a + b, aok && bok && x.Op == token.ADD
		}
		return "", false
	}
	routes := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) != 2 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
			return true
		}
		if pattern, ok := eval(call.Args[0]); ok {
			routes[pattern] = true
		}
		return true
	})
	if len(routes) < 10 {
		t.Fatalf("found only %d routes in routes.go: %v", len(routes), routes)
	}
	return routes
}
