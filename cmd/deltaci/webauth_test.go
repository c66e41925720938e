package main_test

import (
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/oidctest"
	"github.com/deltaci/deltaci/internal/protocol"
)

// TestWebLoginThroughServer signs in to a real server through a real
// OpenID provider, with the roles and public flag set by the CLI; API
// tokens keep working beside the login, and a logout without the CSRF
// token is refused.
func TestWebLoginThroughServer(t *testing.T) {
	t.Parallel()
	op, err := oidctest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	op.AddUser(oidctest.User{Username: "ada", Password: "pw", Subject: "s-ada", Email: "ada@example.com", EmailVerified: true, Groups: []string{"ops"}})

	// The provider must know where to send browsers back before the
	// server starts: take a free port for it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	external := "http://" + addr
	secretFile := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secretFile, []byte(op.AddClient("deltaci", external+"/auth/callback")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &server{dataDir: t.TempDir(), executor: "shell", apiToken: e2eAPIToken, projects: map[string]string{}, args: []string{
		"--external-url", external, "--oidc-issuer", op.Issuer(), "--oidc-client-id", "deltaci",
		"--oidc-client-secret-file", secretFile, "--oidc-admins", "root@example.com",
		"--oidc-role-claim", "groups", "--oidc-scopes", "openid,email,profile,groups",
	}}
	s.start(t, addr)

	// The project's roles and public flag, through the CLI.
	if _, err := s.api.AddProject(t.Context(), protocol.Project{Name: "web", RepoURL: "/srv/git/web"}); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) string {
		t.Helper()
		cmd := command(t.TempDir(), append(args, "--server", s.url())...)
		cmd.Env = childEnv(s.userEnv()...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("deltaci %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := cli("projects", "set", "web", "--public"); !strings.Contains(out, "public") || !strings.Contains(out, "yes") {
		t.Errorf("projects set --public printed:\n%s", out)
	}
	out := cli("projects", "roles", "web", "--grant", "group:ops=maintainer", "--grant", "Bob@Example.com=viewer")
	if !strings.Contains(out, "group:ops") || !strings.Contains(out, "maintainer") || !strings.Contains(out, "bob@example.com") {
		t.Errorf("projects roles --grant printed:\n%s", out)
	}
	out = cli("projects", "roles", "web", "--revoke", "bob@example.com")
	if strings.Contains(out, "bob@example.com") || !strings.Contains(out, "group:ops") {
		t.Errorf("projects roles --revoke printed:\n%s", out)
	}
	cmd := command(t.TempDir(), "projects", "roles", "web", "--grant", "ada", "--server", s.url())
	cmd.Env = childEnv(s.userEnv()...)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "PRINCIPAL=ROLE") {
		t.Errorf("a grant without a role: %v\n%s", err, b)
	}

	// A browser signs in and comes back where it asked.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: waitLong}
	resp, err := op.LogIn(t.Context(), browser, s.url()+"/login?next=/healthz", "ada", "pw")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/healthz" {
		t.Fatalf("after signing in: %s at %s: %s", resp.Status, resp.Request.URL, body)
	}
	u, _ := url.Parse(s.url())
	var session string
	for _, c := range jar.Cookies(u) {
		if c.Name == "deltaci-session" {
			session = c.Value
		}
	}
	if session == "" {
		t.Fatal("no session cookie after signing in")
	}
	if rec := s.waitRecord(t, "signed in", 0); rec["subject"] != "s-ada" {
		t.Errorf("sign-in logged as %v", rec)
	}

	// Logging out needs the session's CSRF token.
	resp, err = browser.PostForm(s.url()+"/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "CSRF") {
		t.Errorf("logout without the CSRF token: %s %s", resp.Status, body)
	}

	// API tokens work as before; a session cookie is no API credential.
	if _, err := s.api.Projects(t.Context()); err != nil {
		t.Errorf("the API token stopped working: %v", err)
	}
	resp, err = browser.Get(s.url() + "/api/v1/projects")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the API with only a session cookie: %s, want 401", resp.Status)
	}
}
