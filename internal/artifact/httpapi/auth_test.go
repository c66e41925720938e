package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/core"
)

// raw sends one request with a plain net/http client, as an attacker
// would, and returns the status and body.
func raw(t *testing.T, base, method, path, token string, header http.Header, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// stored uploads content and commits a manifest of it as admin, and
// returns the manifest's digest.
func stored(t *testing.T, e *env, content string) (digest.Digest, []byte) {
	t.Helper()
	e.upload([]byte(content))
	m := fileManifest(t, map[string][]byte{"f": []byte(content)})
	d, err := e.client.PutManifest(e.ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	body, err := manifest.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return d, body
}

func TestRequestWithoutTokenIsRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	md, _ := stored(t, e, "secret build output")
	if _, err := e.client.SetRef(e.ctx, "outputs/app:v1", md, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/refs/outputs/app:v1"},
		{"GET", "/api/v1/manifests/" + md.String()},
		{"PUT", "/api/v1/refs/outputs/app:v2"},
		{"POST", "/api/v1/gc"},
		{"GET", "/api/v1/audit"},
	} {
		for _, token := range []string{"", "dcs_guessed", e.tokens["alice"] + "x", "Basic YWxpY2U6YWxpY2U="} {
			status, body := raw(t, e.srv.URL, tc.method, tc.path, token, nil, nil)
			if status != http.StatusUnauthorized || !bytes.Contains(body, []byte(`"code":"unauthorized"`)) || bytes.Contains(body, []byte(md.String())) {
				t.Errorf("%s %s with token %q: %d %s", tc.method, tc.path, token, status, body)
			}
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/openapi.yaml"} {
		if status, body := raw(t, e.srv.URL, "GET", p, "", nil, nil); status != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", p, status, body)
		}
	}
}

func TestReadOnlyTokenCannotWrite(t *testing.T) {
	t.Parallel()
	e := setup(t)
	md, body := stored(t, e, "logs of attempt 1")
	if _, err := e.client.SetRef(e.ctx, "logs/attempt-1", md, nil); err != nil {
		t.Fatal(err)
	}
	reader := e.newToken("reader", "logs:read")
	ref := mustJSON(t, httpapi.RefUpdate{Manifest: md.String()})
	other := []byte("mallory's bytes")
	otherD := sha(t, other)
	jsonCT := hdr("Content-Type", "application/json")
	for _, tc := range []struct {
		method, path string
		header       http.Header
		body         []byte
	}{
		{"PUT", "/api/v1/refs/logs/attempt-1", jsonCT, ref},
		{"DELETE", "/api/v1/refs/logs/attempt-1", nil, nil},
		{"POST", "/api/v1/blobs/uploads?digest=" + otherD.String(), hdr("Content-Type", "application/octet-stream"), other},
		{"POST", "/api/v1/blobs/uploads", nil, nil},
		{"PUT", "/api/v1/manifests/" + md.String(), hdr("Content-Type", manifest.MediaTypeCBOR), body},
		{"PUT", "/api/v1/retention/logs", jsonCT, []byte(`{"selector":"**","keep_last":1}`)},
		{"POST", "/api/v1/retention/apply?namespace=logs", nil, nil},
		{"POST", "/api/v1/gc", jsonCT, []byte(`{"grace":"0s"}`)},
		{"POST", "/api/v1/tokens", jsonCT, []byte(`{"name":"mine","scopes":["*:admin"]}`)},
		{"GET", "/api/v1/refs/outputs/app:v1", nil, nil},
		{"GET", "/api/v1/audit", nil, nil},
	} {
		status, body := raw(t, e.srv.URL, tc.method, tc.path, reader, tc.header, tc.body)
		if status != http.StatusForbidden || !bytes.Contains(body, []byte(`"code":"forbidden"`)) || !bytes.Contains(body, []byte("token:reader")) {
			t.Errorf("%s %s as a logs reader: %d %s", tc.method, tc.path, status, body)
		}
	}
	// What it may do, it does.
	if status, body := raw(t, e.srv.URL, "GET", "/api/v1/refs/logs/attempt-1", reader, nil, nil); status != http.StatusOK {
		t.Errorf("read of its own namespace: %d %s", status, body)
	}
	if status, _ := raw(t, e.srv.URL, "GET", "/api/v1/manifests/"+md.String(), reader, nil, nil); status != http.StatusOK {
		t.Errorf("read of a manifest: %d", status)
	}
	if status, body := raw(t, e.srv.URL, "POST", "/api/v1/retention/apply?namespace=logs&dry_run=true", reader, nil, nil); status != http.StatusOK {
		t.Errorf("a dry run of its namespace: %d %s", status, body)
	}
	// Nothing the refused requests asked for happened.
	if _, err := e.client.Stat(e.ctx, otherD); core.KindOf(err) != core.KindNotFound {
		t.Errorf("a refused upload stored its blob: %v", err)
	}
	r, err := e.client.GetRef(e.ctx, "logs/attempt-1")
	if err != nil || r.Manifest != md {
		t.Errorf("the ref after refused writes: %+v %v", r, err)
	}
	// The client says why, with the token's scopes.
	c := &httpapi.Client{BaseURL: e.srv.URL, Token: reader}
	_, err = c.SetRef(e.ctx, "logs/attempt-2", md, nil)
	var fe *httpapi.ForbiddenError
	if !errors.As(err, &fe) || core.KindOf(err) != core.KindUnauthorized || fe.Namespace != "logs" || fe.Role != eventlog.RoleWrite ||
		fe.Scopes.String() != "logs:read" || !strings.Contains(err.Error(), `needs write on namespace "logs"`) {
		t.Errorf("client error for a read-only write: %v", err)
	}
}

func TestNamespaceWriterStaysInItsNamespace(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := &httpapi.Client{BaseURL: e.srv.URL, Token: e.newToken("ci", "outputs:write")}
	content := []byte("built binary")
	d := sha(t, content)
	if _, err := w.Upload(e.ctx, "", "", d, bytes.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	md, err := w.PutManifest(e.ctx, fileManifest(t, map[string][]byte{"bin": content}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.SetRef(e.ctx, "outputs/app:v1", md, nil); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"set a ref of logs":    func() error { _, err := w.SetRef(e.ctx, "logs/app", md, nil); return err }(),
		"list every namespace": func() error { _, err := w.Refs(e.ctx, ""); return err }(),
		"set retention": func() error {
			_, err := w.SetRetention(e.ctx, eventlog.Policy{Namespace: "outputs", Selector: "**", KeepLast: 1})
			return err
		}(),
		"run GC":         func() error { _, err := w.GC(e.ctx, 0); return err }(),
		"read the audit": func() error { _, err := w.Audit(e.ctx, eventlog.AuditFilter{}); return err }(),
		"make a token": func() error {
			_, _, err := w.CreateToken(e.ctx, "more", eventlog.Scopes{{Namespace: "*", Role: "admin"}})
			return err
		}(),
	} {
		var fe *httpapi.ForbiddenError
		if !errors.As(err, &fe) {
			t.Errorf("%s with outputs:write: %v, want forbidden", name, err)
		}
	}
	if refs, err := w.Refs(e.ctx, "outputs"); err != nil || len(refs) != 1 {
		t.Errorf("list of its namespace: %+v %v", refs, err)
	}
}

func TestForgedActorIsIgnored(t *testing.T) {
	t.Parallel()
	e := setup(t)
	md, _ := stored(t, e, "release notes")
	writer := e.newToken("writer", "outputs:write")
	ref := mustJSON(t, httpapi.RefUpdate{Manifest: md.String()})
	for _, forged := range []string{"mallory", "token:alice", "eve\tmallory", strings.Repeat("m", 1000)} {
		h := hdr("Content-Type", "application/json", "X-Actor", forged)
		if status, body := raw(t, e.srv.URL, "PUT", "/api/v1/refs/outputs/notes:v1", writer, h, ref); status != http.StatusOK {
			t.Fatalf("PUT with X-Actor %q: %d %s", forged, status, body)
		}
		if status, body := raw(t, e.srv.URL, "DELETE", "/api/v1/refs/outputs/notes:v1", writer, hdr("X-Actor", forged), nil); status != http.StatusNoContent {
			t.Fatalf("DELETE with X-Actor %q: %d %s", forged, status, body)
		}
	}
	evs, err := e.client.Audit(e.ctx, eventlog.AuditFilter{Subject: "outputs/notes:v1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 8 {
		t.Fatalf("%d events on the ref, want 8", len(evs))
	}
	for _, ev := range evs {
		if ev.Actor != "token:writer" {
			t.Errorf("event %d (%s) names %q, not the token that made it", ev.Seq, ev.Kind, ev.Actor)
		}
	}
	for _, forged := range []string{"mallory", "eve\tmallory"} {
		if evs, err := e.client.Audit(e.ctx, eventlog.AuditFilter{Actor: forged}); err != nil || len(evs) != 0 {
			t.Errorf("audit by %q: %+v %v", forged, evs, err)
		}
	}
}

func TestRevokedTokenIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tok := e.newToken("leaked", "*:read")
	if status, _ := raw(t, e.srv.URL, "GET", "/api/v1/refs", tok, nil, nil); status != http.StatusOK {
		t.Fatalf("before revocation: %d", status)
	}
	if err := e.client.RevokeToken(e.ctx, "leaked"); err != nil {
		t.Fatal(err)
	}
	if status, body := raw(t, e.srv.URL, "GET", "/api/v1/refs", tok, nil, nil); status != http.StatusUnauthorized {
		t.Errorf("after revocation: %d %s", status, body)
	}
	ts, err := e.client.Tokens(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		if tk.Name == "leaked" && (!tk.Revoked() || tk.RevokedBy != "token:alice") {
			t.Errorf("listed as %+v", tk)
		}
	}
}

func TestConfiguredTokenAndAnonymousDevelopment(t *testing.T) {
	t.Parallel()
	e := setup(t)
	md, _ := stored(t, e, "configured")
	serve := func(auth *httpapi.TokenAuth) string {
		srv := httptest.NewServer(httpapi.New(httpapi.Options{Registry: e.reg, Auth: auth}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	ref := mustJSON(t, httpapi.RefUpdate{Manifest: md.String()})
	jsonCT := hdr("Content-Type", "application/json")
	configured := serve(&httpapi.TokenAuth{Meta: e.meta, Configured: "s3cret-configured-token"})
	if status, body := raw(t, configured, "PUT", "/api/v1/refs/outputs/c", "s3cret-configured-token", jsonCT, ref); status != http.StatusOK {
		t.Fatalf("configured token: %d %s", status, body)
	}
	// Stored tokens still work beside it; a near miss does not.
	if status, _ := raw(t, configured, "GET", "/api/v1/audit", e.tokens["carol"], nil, nil); status != http.StatusOK {
		t.Errorf("stored token beside a configured one: %d", status)
	}
	if status, _ := raw(t, configured, "GET", "/api/v1/audit", "s3cret-configured-toke", nil, nil); status != http.StatusUnauthorized {
		t.Errorf("a prefix of the configured token: %d", status)
	}
	open := serve(&httpapi.TokenAuth{Meta: e.meta, AllowAnonymous: true})
	if status, body := raw(t, open, "PUT", "/api/v1/refs/outputs/a", "", hdr("Content-Type", "application/json", "X-Actor", "mallory"), ref); status != http.StatusOK {
		t.Fatalf("anonymous: %d %s", status, body)
	}
	if status, _ := raw(t, open, "GET", "/api/v1/audit", "dcs_wrong", nil, nil); status != http.StatusUnauthorized {
		t.Errorf("a bad token where none is needed: %d", status)
	}
	for ref, want := range map[string]string{"outputs/c": "token:configured", "outputs/a": "anonymous"} {
		evs, err := e.client.Audit(e.ctx, eventlog.AuditFilter{Subject: ref})
		if err != nil || len(evs) != 1 || evs[0].Actor != want {
			t.Errorf("audit of %s: %+v %v, want one event by %s", ref, evs, err, want)
		}
	}
}

func TestAuditTakesDurationsAndUntaggedRefs(t *testing.T) {
	t.Parallel()
	e := setup(t)
	md, _ := stored(t, e, "audited")
	if _, err := e.client.SetRef(e.ctx, "logs/attempt-7", md, nil); err != nil {
		t.Fatal(err)
	}
	list := func(query string) []httpapi.Event {
		t.Helper()
		r := e.expect(e.ctx, http.StatusOK, "GET", "/api/v1/audit?"+query, nil, nil)
		var out httpapi.EventList
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		return out.Events
	}
	for _, q := range []string{"subject=logs/attempt-7", "subject=logs%2Fattempt-7%3Alatest", "subject=logs/attempt-7&since=24h", "subject=logs/attempt-7&since=90m"} {
		if evs := list(q); len(evs) != 1 || evs[0].Kind != "ref.set" || evs[0].Subject != "logs/attempt-7:latest" {
			t.Errorf("audit?%s = %+v", q, evs)
		}
	}
	// The server's clock decides what "24h ago" is.
	e.clock.set(time.Now().Add(48 * time.Hour))
	if evs := list("subject=logs/attempt-7&since=24h"); len(evs) != 0 {
		t.Errorf("since=24h, a day after the event: %+v", evs)
	}
	e.expect(unchecked(e.ctx), http.StatusBadRequest, "GET", "/api/v1/audit?since=-24h", nil, nil)
	// Times have millisecond precision, as the CLI prints them.
	r := e.expect(e.ctx, http.StatusOK, "GET", "/api/v1/refs/logs/attempt-7", nil, nil)
	if !regexp.MustCompile(`"updated_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`).Match(r.body) {
		t.Errorf("ref times are not RFC 3339 with milliseconds: %s", r.body)
	}
}

func TestMetricsCountRequestsAndBytes(t *testing.T) {
	t.Parallel()
	e := setup(t)
	content := bytes.Repeat([]byte("m"), 3000)
	e.upload(content)
	rc, _, err := e.client.Open(e.ctx, sha(t, content), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	raw(t, e.srv.URL, "GET", "/api/v1/refs", "", nil, nil)
	raw(t, e.srv.URL, "GET", "/api/v1/refs", e.newToken("narrow", "logs:read"), nil, nil)
	raw(t, e.srv.URL, "GET", "/no/such/path", "", nil, nil)
	if _, err := e.client.SetRef(e.ctx, "outputs/m", e.putManifest(content), nil); err != nil {
		t.Fatal(err)
	}
	_, body := raw(t, e.srv.URL, "GET", "/metrics", "", nil, nil)
	for _, want := range []string{
		`artifactstore_http_requests_total{route="POST /api/v1/blobs/uploads",status="201"} 1`,
		`artifactstore_http_request_bytes_total{route="POST /api/v1/blobs/uploads"} 3000`,
		`artifactstore_http_response_bytes_total{route="GET /api/v1/blobs/{digest}"} 3000`,
		`artifactstore_http_requests_total{route="GET /api/v1/refs",status="401"} 1`,
		`artifactstore_http_requests_total{route="GET /api/v1/refs",status="403"} 1`,
		`artifactstore_http_requests_total{route="unrouted",status="404"} 1`,
		`artifactstore_auth_failures_total{reason="unauthorized"} 1`,
		`artifactstore_auth_failures_total{reason="forbidden"} 1`,
		`artifactstore_store_bytes{namespace="outputs"} 3000`,
		`artifactstore_events 3`,
		`artifactstore_http_request_duration_seconds_count{route="GET /api/v1/blobs/{digest}"} 1`,
		`go_goroutines`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// putManifest commits a manifest of one file holding content, as admin.
func (e *env) putManifest(content []byte) digest.Digest {
	e.t.Helper()
	d, err := e.client.PutManifest(e.ctx, fileManifest(e.t, map[string][]byte{"f": content}))
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func TestClientReadsUploadStatus(t *testing.T) {
	t.Parallel()
	e := setup(t)
	content := []byte("half of it now, half later")
	d := sha(t, content)
	sess, err := e.client.StartUpload(e.ctx, digest.SHA256, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Append(e.ctx, sess.ID, 0, bytes.NewReader(content[:10])); err != nil {
		t.Fatal(err)
	}
	st, err := e.client.UploadStatus(e.ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != sess.ID || st.Offset != 10 || st.Expected != d || st.Algorithm != digest.SHA256 || st.ExpiresAt.Before(time.Now()) {
		t.Errorf("status = %+v", st)
	}
	// A client that lost track resumes from what the server says.
	if _, err := e.client.Append(e.ctx, sess.ID, st.Offset, bytes.NewReader(content[st.Offset:])); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Finish(e.ctx, "", sess.ID, d); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UploadStatus(e.ctx, sess.ID); core.KindOf(err) != core.KindNotFound {
		t.Errorf("status of a finished session: %v", err)
	}
}
