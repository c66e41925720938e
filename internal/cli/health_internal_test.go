package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealth: deltaci health exits 0 on 200, 1 on anything else or no
// answer, and 2 on a bad URL, saying why each time.
func TestHealth(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			_, _ = w.Write([]byte(`{"status":"ready"}`))
			return
		}
		if r.URL.Path == "/hostile" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("down\x1b]0;owned\x07"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"draining"}`))
	}))
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		url        string
		code       int
		out, error string
	}{
		{srv.URL + "/readyz", ExitOK, `{"status":"ready"}`, ""},
		{srv.URL + "/other", ExitFailed, "", `answered 503 Service Unavailable: {"status":"draining"}`},
		{closed.URL + "/readyz", ExitFailed, "", "connection refused"},
		{srv.URL + "/hostile", ExitFailed, "", "answered 503 Service Unavailable: down"},
		{"ftp://x/readyz", ExitUsage, "", "give an http or https URL"},
	} {
		var out, errOut bytes.Buffer
		code := Run(t.Context(), []string{"health", "--url", tc.url}, nil, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.error) {
			t.Errorf("health --url %s: exit %d, stdout %q, stderr %q; want exit %d, %q, %q",
				tc.url, code, out.String(), errOut.String(), tc.code, tc.out, tc.error)
		}
		if strings.ContainsRune(out.String()+errOut.String(), 0x1b) {
			t.Errorf("health --url %s wrote the answer's escape sequence to the terminal: %q", tc.url, errOut.String())
		}
	}
}
