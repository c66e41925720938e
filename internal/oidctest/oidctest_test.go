package oidctest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/oidctest"
)

func TestProvider(t *testing.T) {
	t.Parallel()
	p, err := oidctest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	const back = "http://127.0.0.1:1/auth/callback"
	p.AddClient("ci", back)
	p.AddUser(oidctest.User{Username: "ada", Password: "pw", Email: "ada@example.com", EmailVerified: true})

	resp, err := http.Get(p.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		Issuer     string   `json:"issuer"`
		Challenges []string `json:"code_challenge_methods_supported"`
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil || disc.Issuer != p.Issuer() || !slices.Contains(disc.Challenges, "S256") {
		t.Fatalf("discovery: %+v, %v", disc, err)
	}

	auth := func(client string) string {
		q := url.Values{"client_id": {client}, "redirect_uri": {back}, "response_type": {"code"}, "scope": {"openid email"},
			"state": {"st"}, "nonce": {"n"}, "code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}}
		return p.Issuer() + "/authorize?" + q.Encode()
	}
	t.Run("OK", func(t *testing.T) {
		u, err := p.Authorize(t.Context(), http.DefaultClient, auth("ci"), "ada", "pw")
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Scheme + "://" + u.Host + u.Path; got != back || u.Query().Get("code") == "" || u.Query().Get("state") != "st" {
			t.Fatalf("sent back to %s", u)
		}
	})
	t.Run("ErrWrongPassword", func(t *testing.T) {
		_, err := p.Authorize(t.Context(), http.DefaultClient, auth("ci"), "ada", "guess")
		if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "Wrong username or password") {
			t.Fatalf("a wrong password: %v", err)
		}
	})
	t.Run("ErrUnknownUser", func(t *testing.T) {
		if _, err := p.Authorize(t.Context(), http.DefaultClient, auth("ci"), "eve", ""); err == nil {
			t.Fatal("an unknown user signed in")
		}
	})
	t.Run("ErrUnknownClient", func(t *testing.T) {
		if u, err := p.Authorize(t.Context(), http.DefaultClient, auth("other"), "ada", "pw"); err == nil {
			t.Fatalf("an unknown client got %s", u)
		}
	})
}
