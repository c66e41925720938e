package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
)

// contractAuth is TestContract's part about credentials: every documented
// operation but the public ones answers 401 to a request without a token,
// and 403 where the document says a token's scopes can fall short; then
// the routes of tokens, upload status and metrics with each of their
// statuses. It records into cov, which TestContract checks.
func contractAuth(t *testing.T, e *env, cov *coverage) {
	ctx := e.ctx
	doc, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := e.newToken("elsewhere", "elsewhere:read")
	concrete := strings.NewReplacer("{digest}", "sha256:"+strings.Repeat("0", 64), "{id}", "x", "{namespace}", "ns",
		"{ref}", "n:t", "{name}", "someone")
	for path, item := range doc.Paths.Map() {
		prefix := "/api/v1"
		if len(item.Servers) > 0 {
			prefix = strings.TrimSuffix(item.Servers[0].URL, "/")
		}
		for method, op := range item.Operations() {
			p := prefix + concrete.Replace(path)
			if op.Responses.Value("401") != nil {
				// No body and no parameters: the credential is checked first.
				r := e.expect(unchecked(anonymous(ctx)), http.StatusUnauthorized, method, p, nil, nil)
				if method != http.MethodHead && r.errorBody(t).Code != "unauthorized" {
					t.Errorf("%s %s without a token: %s", method, p, r.body)
				}
				e.expect(unchecked(ctx), http.StatusUnauthorized, method, p, bearer("dcs_forged"), nil)
			} else if op.OperationID != "getMetrics" {
				e.expect(anonymous(ctx), http.StatusOK, method, p, nil, nil)
			}
			if op.Responses.Value("403") != nil {
				r := e.expect(unchecked(ctx), http.StatusForbidden, method, p, bearer(elsewhere), nil)
				if d := r.errorBody(t); d.Code != httpapi.CodeForbidden || d.Details["principal"] != "token:elsewhere" {
					t.Errorf("%s %s with a token for another namespace: %s", method, p, r.body)
				}
			}
		}
	}

	t.Run("tokens", func(t *testing.T) {
		create := func(body string) response {
			return e.send(unchecked(ctx), "POST", "/api/v1/tokens", jsonCT, []byte(body))
		}
		r := e.expect(ctx, http.StatusCreated, "POST", "/api/v1/tokens", jsonCT, []byte(`{"name":"ci","scopes":["outputs:write","logs:read"]}`))
		var made httpapi.TokenBody
		if err := json.Unmarshal(r.body, &made); err != nil || !strings.HasPrefix(made.Token, "dcs_") ||
			strings.Join(made.Scopes, ",") != "logs:read,outputs:write" || made.CreatedBy != "token:alice" {
			t.Errorf("created token %s: %v", r.body, err)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("the answer with a secret may be cached: %v", r.header)
		}
		e.expect(ctx, http.StatusConflict, "POST", "/api/v1/tokens", jsonCT, []byte(`{"name":"ci","scopes":["logs:read"]}`))
		if r := create(`{"name":"x","scopes":["logs:owner"]}`); r.status != http.StatusBadRequest {
			t.Errorf("a bad scope: %d %s", r.status, r.body)
		}
		if r := create(`{"name":"configured","scopes":["logs:read"]}`); r.status != http.StatusBadRequest {
			t.Errorf("the configured token's name: %d %s", r.status, r.body)
		}
		e.expect(unchecked(ctx), http.StatusRequestEntityTooLarge, "POST", "/api/v1/tokens", jsonCT, bytes.Repeat([]byte(" "), testMaxJSON+1))
		e.expect(unchecked(ctx), http.StatusUnsupportedMediaType, "POST", "/api/v1/tokens", hdr("Content-Type", "text/plain"), []byte(`{}`))
		r = e.expect(ctx, http.StatusOK, "GET", "/api/v1/tokens", nil, nil)
		if bytes.Contains(r.body, []byte(made.Token)) || !bytes.Contains(r.body, []byte(`"name":"ci"`)) {
			t.Errorf("token list %s", r.body)
		}
		e.expect(ctx, http.StatusOK, "GET", "/api/v1/refs?namespace=outputs", bearer(made.Token), nil)
		e.expect(ctx, http.StatusNoContent, "DELETE", "/api/v1/tokens/ci", nil, nil)
		e.expect(ctx, http.StatusNotFound, "DELETE", "/api/v1/tokens/ci", nil, nil)
		e.expect(unchecked(ctx), http.StatusBadRequest, "DELETE", "/api/v1/tokens/-bad", nil, nil)
		e.expect(ctx, http.StatusUnauthorized, "GET", "/api/v1/refs?namespace=outputs", bearer(made.Token), nil)
		r = e.expect(ctx, http.StatusOK, "GET", "/api/v1/tokens", nil, nil)
		if !bytes.Contains(r.body, []byte(`"revoked_by":"token:alice"`)) {
			t.Errorf("revoked token not listed as revoked: %s", r.body)
		}
	})

	t.Run("upload status", func(t *testing.T) {
		content := []byte("twelve bytes")
		d, err := digest.FromBytes(digest.SHA256, content)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := e.client.StartUpload(ctx, digest.SHA256, d)
		if err != nil {
			t.Fatal(err)
		}
		path := "/api/v1/blobs/uploads/" + sess.ID
		r := e.expect(ctx, http.StatusOK, "GET", path, nil, nil)
		if r.header.Get("Range") != "" || !bytes.Contains(r.body, []byte(`"offset":0`)) {
			t.Errorf("a fresh session: Range %q, %s", r.header.Get("Range"), r.body)
		}
		if _, err := e.client.Append(ctx, sess.ID, 0, bytes.NewReader(content[:5])); err != nil {
			t.Fatal(err)
		}
		r = e.expect(ctx, http.StatusOK, "GET", path, nil, nil)
		if r.header.Get("Range") != "0-4" || !bytes.Contains(r.body, []byte(`"offset":5`)) || !bytes.Contains(r.body, []byte(d.String())) {
			t.Errorf("after 5 bytes: Range %q, %s", r.header.Get("Range"), r.body)
		}
		e.expect(unchecked(ctx), http.StatusBadRequest, "GET", "/api/v1/blobs/uploads/bad%20id", nil, nil)
		e.expect(ctx, http.StatusNotFound, "GET", "/api/v1/blobs/uploads/no-such-session", nil, nil)
		if _, err := e.client.Finish(ctx, "", sess.ID, d); err == nil {
			t.Fatal("finished a session that lacks 7 bytes")
		}
	})

	t.Run("metrics", func(t *testing.T) {
		r := e.expect(anonymous(ctx), http.StatusOK, "GET", "/metrics", nil, nil)
		if !bytes.Contains(r.body, []byte(`artifactstore_http_requests_total{route="GET /api/v1/tokens",status="200"}`)) {
			t.Errorf("metrics lack the token list requests:\n%s", r.body)
		}
	})

	t.Run("mounted", func(t *testing.T) {
		m := setup(t, mounted(), withCoverage(cov))
		for _, p := range []string{"/api/v1/tokens", "/metrics"} {
			m.expect(ctx, http.StatusNotFound, "GET", p, nil, nil)
		}
		m.expect(ctx, http.StatusNotFound, "POST", "/api/v1/tokens", jsonCT, []byte(`{"name":"ci","scopes":["logs:read"]}`))
		// Mounted, the API takes every request the mounting server hands
		// on, without a credential of its own.
		m.expect(anonymous(ctx), http.StatusOK, "GET", "/api/v1/refs", nil, nil)
	})
}
