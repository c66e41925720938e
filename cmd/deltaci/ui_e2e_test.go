package main_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServerServesTheUIInFrontOfTheAPI checks the binary's wiring: the
// pages at / with their security headers, a browser without a token
// refused, the same page with the API token shown, and the API still
// answered under /api/v1.
func TestServerServesTheUIInFrontOfTheAPI(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	get := func(path, token string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.url()+path, nil)
		if err != nil {
			t.Fatal(err)
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
		return resp, string(b)
	}
	resp, body := get("/runs", "")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Sign in needed") {
		t.Errorf("GET /runs without a token: %d\n%s", resp.StatusCode, body)
	}
	resp, body = get("/runs", s.apiToken)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<h1>Runs</h1>") {
		t.Fatalf("GET /runs with the API token: %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("the page's security headers: CSP %q, X-Frame-Options %q", csp, resp.Header.Get("X-Frame-Options"))
	}
	resp, body = get("/api/v1/runs", s.apiToken)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"runs"`) {
		t.Errorf("GET /api/v1/runs: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = get("/api/v1/nope", s.apiToken)
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("an unknown API route: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
