package forge_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"

	"github.com/deltaci/deltaci/internal/forge"
)

// hostile starts a server that answers every request with h, standing for
// a forge (or something posing as one) that does not play by the rules.
func hostile(t *testing.T, h http.HandlerFunc) (*httptest.Server, forge.Target) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, forge.Target{Kind: forge.GitLab, APIURL: srv.URL + "/api/v4", Repo: "g/p", Commit: sha, Token: "glpat-SECRETSECRETSECRET"}
}

func TestForgeEchoingTheTokenCannotLeakIt(t *testing.T) {
	t.Parallel()
	srv, target := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"token `+r.Header.Get("Private-Token")+` is not valid"}`)
	})
	err := forge.Post(context.Background(), srv.Client(), target, forge.Status{Context: "deltaci", State: forge.Success})
	var pe *forge.PostError
	if !errors.As(err, &pe) || pe.Code != http.StatusUnauthorized {
		t.Fatalf("got %v, want the forge's 401", err)
	}
	if strings.Contains(err.Error(), target.Token) {
		t.Errorf("the token is in the error: %v", err)
	}
	if !strings.Contains(pe.Message, "is not valid") {
		t.Errorf("the forge's words are lost: %q", pe.Message)
	}
}

func TestRedirectCannotCarryTheTokenAway(t *testing.T) {
	t.Parallel()
	var reached atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(elsewhere.Close)
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		srv, target := hostile(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+r.URL.Path, code)
		})
		err := forge.Post(context.Background(), srv.Client(), target, forge.Status{Context: "deltaci", State: forge.Success})
		var pe *forge.PostError
		if !errors.As(err, &pe) || pe.Code != code || pe.Retry {
			t.Errorf("%d: got %v, want a *PostError with the redirect's code, not retryable", code, err)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

func TestHostileAnswerIsBoundedAndMadePrintable(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		// A message with terminal escapes, a bidirectional override and
		// newlines, longer than any error should be.
		"Escapes": `{"message":"\u001b[2J\u001b]52;c;aGk=\u0007fake\u202e\nsuccess` + strings.Repeat("é", 500) + `"}`,
		// An answer far larger than a status answer, never read whole.
		"Huge": `{"message":"` + strings.Repeat("x", 8<<20) + `"}`,
		// A proxy's error page.
		"HTML": `<html><body>Bad gateway</body></html>`,
	}
	for name, body := range cases {
		srv, target := hostile(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, body)
		})
		err := forge.Post(context.Background(), srv.Client(), target, forge.Status{Context: "deltaci", State: forge.Success})
		var pe *forge.PostError
		if !errors.As(err, &pe) || !pe.Retry {
			t.Fatalf("%s: got %v, want a retryable *PostError", name, err)
		}
		if len(pe.Message) > 200 || pe.Message == "" {
			t.Errorf("%s: message of %d bytes, want 1 to 200", name, len(pe.Message))
		}
		if strings.ContainsFunc(pe.Message, func(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf) }) {
			t.Errorf("%s: message keeps control characters: %q", name, pe.Message)
		}
	}
}

func TestPostWithoutAnAnswerIsRetryable(t *testing.T) {
	t.Parallel()
	// A forge that cuts the connection without answering.
	srv, target := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	err := forge.Post(context.Background(), srv.Client(), target, forge.Status{Context: "deltaci", State: forge.Success})
	var pe *forge.PostError
	if err == nil || errors.As(err, &pe) || !forge.Retryable(err) {
		t.Errorf("got %v, want a retryable error without an answer", err)
	}
}
