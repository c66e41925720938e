package api_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/forge"
	"github.com/deltaci/deltaci/internal/protocol"
)

// testContractHooks drives the webhook routes with each status the
// document lists: the hooks of a project (admins only), the secret's
// rotation, and deliveries refused, ignored, queued and replayed.
func testContractHooks(t *testing.T, e *contractEnv, tok contractTokens) {
	ctx, bad := t.Context(), contractUnchecked(t.Context())
	var hooked protocol.Project
	e.json(ctx, http.StatusCreated, "POST", "/api/v1/projects", contractAPIToken, map[string]any{
		"name": "hooked", "repo_url": contractRepo(t, map[string]string{"README": "hooked\n"}), "forge": map[string]any{"kind": "github", "repo": "acme/hooked"},
	}).decode(t, &hooked)
	if hooked.Forge == nil || hooked.Forge.Kind != "github" {
		t.Fatalf("project with a forge = %+v", hooked)
	}

	const hooksPath = "/api/v1/projects/hooked/hooks"
	e.json(ctx, http.StatusForbidden, "GET", hooksPath, tok.viewer, nil)
	e.json(ctx, http.StatusNotFound, "GET", "/api/v1/projects/nope/hooks", contractAPIToken, nil)
	e.json(ctx, http.StatusConflict, "GET", "/api/v1/projects/contract/hooks", contractAPIToken, nil)
	var h protocol.ProjectHooks
	e.json(ctx, http.StatusOK, "GET", hooksPath, contractAPIToken, nil).decode(t, &h)
	if h.Forge != "github" || len(h.Secret) != 64 || !strings.HasSuffix(h.URL, "/api/v1/hooks/github/hooked") || len(h.Deliveries) != 0 {
		t.Errorf("hooks = %+v", h)
	}

	const rotatePath = hooksPath + "/secret"
	e.json(ctx, http.StatusForbidden, "POST", rotatePath, tok.viewer, nil)
	e.json(ctx, http.StatusNotFound, "POST", "/api/v1/projects/nope/hooks/secret", contractAPIToken, nil)
	e.json(ctx, http.StatusConflict, "POST", "/api/v1/projects/contract/hooks/secret", contractAPIToken, nil)
	old := h.Secret
	e.json(ctx, http.StatusOK, "POST", rotatePath, contractAPIToken, nil).decode(t, &h)
	if h.Secret == old || len(h.Secret) != 64 {
		t.Errorf("rotated secret %q, was %q", h.Secret, old)
	}

	const path = "/api/v1/hooks/github/hooked"
	deliver := func(ctx context.Context, want int, secret, event, id string, body []byte) contractResponse {
		t.Helper()
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		hd := http.Header{
			"Content-Type": {"application/json"}, "X-Github-Event": {event}, "X-Github-Delivery": {id},
			"X-Hub-Signature-256": {"sha256=" + hex.EncodeToString(mac.Sum(nil))},
		}
		return e.expect(ctx, want, "POST", path, hd, body)
	}
	// A push of a commit the repository does not have: queued, and its
	// planning fails later without making a run.
	push := []byte(`{"ref":"refs/heads/main","before":"` + strings.Repeat("0", 40) + `","after":"` + strings.Repeat("ab", 20) +
		`","deleted":false,"head_commit":{"id":"` + strings.Repeat("ab", 20) + `","message":"x"},` +
		`"repository":{"id":1,"full_name":"acme/hooked"},"sender":{"login":"octocat"}}`)
	deliver(ctx, http.StatusUnauthorized, old, "push", "d-1", push)
	e.expect(ctx, http.StatusNotFound, "POST", "/api/v1/hooks/gitlab/hooked", http.Header{"Content-Type": {"application/json"}}, push)
	deliver(bad, http.StatusRequestEntityTooLarge, h.Secret, "push", "d-big", bytes.Repeat([]byte(" "), forge.MaxBody+1))
	deliver(ctx, http.StatusBadRequest, h.Secret, "push", "d-bad", []byte(`{"ref":"--upload-pack=x","after":"zz"}`))
	var a protocol.HookAnswer
	deliver(ctx, http.StatusAccepted, h.Secret, "ping", "d-ping", []byte(`{"zen":"x","repository":{"id":1,"full_name":"acme/hooked"},"sender":{"login":"octocat"}}`)).decode(t, &a)
	if a.Result != "ignored" || a.Reason == "" {
		t.Errorf("ping answer = %+v", a)
	}
	deliver(ctx, http.StatusAccepted, h.Secret, "push", "d-1", push).decode(t, &a)
	if a.Result != "queued" || a.Delivery == "" {
		t.Errorf("push answer = %+v", a)
	}
	deliver(ctx, http.StatusOK, h.Secret, "push", "d-1", push).decode(t, &a)
	if a.Result != "duplicate" {
		t.Errorf("replayed push answer = %+v", a)
	}
	e.json(ctx, http.StatusOK, "GET", hooksPath, contractAPIToken, nil).decode(t, &h)
	if len(h.Deliveries) != 1 || h.Deliveries[0].Delivery != "d-1" || h.Deliveries[0].Event != "push" {
		t.Errorf("deliveries = %+v", h.Deliveries)
	}
}
