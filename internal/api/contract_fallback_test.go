package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/api/apitest"
)

// TestContractUnmatchedRoutes: a path no route serves answers 404, and a
// served path asked with another method 405 with an Allow header, both
// with the documented JSON error body rather than the mux's plain text.
func TestContractUnmatchedRoutes(t *testing.T) {
	t.Parallel()
	doc, err := contractDoc()
	if err != nil {
		t.Fatal(err)
	}
	detail := doc.Components.Schemas["Error"]
	if detail == nil || detail.Value == nil {
		t.Fatal("the document has no Error schema")
	}
	srv := apitest.Start(t, apitest.Options{})
	cases := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/api/v1/nosuchroute", 404, "not_found", ""},
		{"GET", "/nosuchroute", 404, "not_found", ""},
		{"POST", "/api/v1/runners/x/y/z", 404, "not_found", ""},
		{"PUT", "/api/v1/runs", 405, "method_not_allowed", "GET, HEAD, POST"},
		{"GET", "/api/v1/runners/register", 405, "method_not_allowed", "DELETE, POST"},
		{"POST", "/api/v1/projects/p", 405, "method_not_allowed", "DELETE, GET, HEAD, PATCH"},
		{"POST", "/healthz", 405, "method_not_allowed", "GET, HEAD"},
	}
	for _, c := range cases {
		t.Run(c.method+c.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), c.method, srv.URL+c.path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+apitest.APIToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, body)
			}
			if err := detail.Value.VisitJSON(v); err != nil {
				t.Errorf("body does not match the Error schema: %v: %s", err, body)
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			_ = json.Unmarshal(body, &e)
			if e.Error.Code != c.code || e.Error.Message == "" {
				t.Errorf("code %q, message %q; want code %q and a message", e.Error.Code, e.Error.Message, c.code)
			}
			if got := normalizeAllow(resp.Header.Get("Allow")); got != c.allow {
				t.Errorf("Allow %q, want %q", got, c.allow)
			}
		})
	}
}

// normalizeAllow sorts an Allow header's methods.
func normalizeAllow(h string) string {
	if h == "" {
		return ""
	}
	ms := strings.Split(h, ",")
	for i := range ms {
		ms[i] = strings.TrimSpace(ms[i])
	}
	slices.Sort(ms)
	return strings.Join(ms, ", ")
}
