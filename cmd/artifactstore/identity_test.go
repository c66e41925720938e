package main_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/store/storetest"
)

// call sends one request with a plain net/http client and returns the
// status and body.
func call(t *testing.T, method, url, token string, header map[string]string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
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
	return resp.StatusCode, string(b)
}

// database returns the flags that put a server's metadata on engine: the
// default SQLite file, or a fresh PostgreSQL schema (the test skips
// without PostgreSQL, loudly).
func database(t *testing.T, engine string) []string {
	if engine == "postgres" {
		return []string{"--database", storetest.PostgresURL(t)}
	}
	return nil
}

// TestServeAttackedWithoutAndWithWeakCredentials starts a real server and
// attacks it with a plain HTTP client: no token, a guessed one, a revoked
// one, a read-only token that writes, and a forged X-Actor. Every refused
// request changes nothing, and the audit trail names the token that did
// each write.
func TestServeAttackedWithoutAndWithWeakCredentials(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			srv := serve(t, dir, nil, database(t, engine)...)
			admin := srv.token
			if !strings.HasPrefix(admin, "dcs_") || !strings.Contains(srv.stderr(), "shown only this once") {
				t.Fatalf("first start printed no admin token:\n%s", srv.stderr())
			}
			as := func(token string, args ...string) result {
				return run(t, dir, append([]string{"--server", srv.url, "--api-token", token}, args...)...)
			}
			src := filepath.Join(dir, "src")
			tree(t, src)
			if r := as(admin, "push", src, "--ref", "outputs/app:v1"); r.code != 0 {
				t.Fatalf("push as admin: exit %d\n%s", r.code, r.stderr)
			}

			// No credential, or a guessed one: 401 everywhere but the
			// public routes, and the CLI says how to give one.
			for _, tok := range []string{"", "dcs_guessed", admin + "x"} {
				for _, p := range []string{"/api/v1/refs", "/api/v1/refs/outputs/app:v1", "/api/v1/audit", "/api/v1/tokens"} {
					if code, body := call(t, "GET", srv.url+p, tok, nil, nil); code != http.StatusUnauthorized || strings.Contains(body, "sha256:") {
						t.Errorf("GET %s with %q: %d %s", p, tok, code, body)
					}
				}
			}
			if code, _ := call(t, "POST", srv.url+"/api/v1/gc", "", nil, nil); code != http.StatusUnauthorized {
				t.Errorf("GC without a token: %d", code)
			}
			for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/openapi.yaml"} {
				if code, body := call(t, "GET", srv.url+p, "", nil, nil); code != http.StatusOK {
					t.Errorf("GET %s without a token: %d %s", p, code, body)
				}
			}
			r := run(t, dir, "--server", srv.url, "ls")
			if r.code != 1 || !strings.Contains(r.stderr, "needs a token: pass --api-token or set ARTIFACTSTORE_TOKEN") {
				t.Errorf("ls without a token: exit %d\n%s", r.code, r.stderr)
			}

			// A read-only token may read and may not write.
			r = as(admin, "tokens", "create", "reader", "--scope", "outputs:read")
			reader := strings.TrimSpace(r.stdout)
			if r.code != 0 || !strings.HasPrefix(reader, "dcs_") {
				t.Fatalf("tokens create: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if r := as(reader, "ls", "outputs"); r.code != 0 || !strings.Contains(r.stdout, "outputs/app:v1") {
				t.Errorf("ls as reader: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("tampered\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"push", src, "--ref", "outputs/app:v1"},
				{"tag", "outputs/app:v1", "--delete"},
				{"tag", "outputs/app:v2", "outputs/app:v1"},
				{"gc", "--grace", "0s"},
				{"tokens", "create", "escalated", "--scope", "*:admin"},
			} {
				r := as(reader, args...)
				if r.code != 1 || !strings.Contains(r.stderr, "token:reader may not do this") {
					t.Errorf("%v as reader: exit %d\n%s", args, r.code, r.stderr)
				}
			}
			manifest := strings.Fields(as(admin, "ls", "outputs").stdout)[1]
			ref := []byte(`{"manifest":"` + manifest + `"}`)
			if code, body := call(t, "PUT", srv.url+"/api/v1/refs/outputs/app:v3", reader, map[string]string{"Content-Type": "application/json"}, ref); code != http.StatusForbidden || !strings.Contains(body, `"code":"forbidden"`) {
				t.Errorf("PUT ref as reader: %d %s", code, body)
			}
			if ls := as(admin, "ls", "outputs").stdout; strings.Count(ls, "outputs/app:") != 1 {
				t.Errorf("refused writes changed the refs:\n%s", ls)
			}

			// A forged X-Actor changes nothing in the audit trail.
			writer := strings.TrimSpace(as(admin, "tokens", "create", "writer", "--scope", "outputs:write").stdout)
			forged := map[string]string{"Content-Type": "application/json", "X-Actor": "mallory"}
			if code, body := call(t, "PUT", srv.url+"/api/v1/refs/outputs/app:forged", writer, forged, ref); code != http.StatusOK {
				t.Fatalf("PUT ref as writer: %d %s", code, body)
			}
			if r := as(writer, "--as", "mallory", "tag", "outputs/app:forged2", "outputs/app:v1"); r.code != 0 {
				t.Fatalf("tag as writer: exit %d\n%s", r.code, r.stderr)
			}
			var evs []struct{ Actor, Subject, Kind string }
			if err := json.Unmarshal([]byte(as(admin, "audit", "--json").stdout), &evs); err != nil {
				t.Fatal(err)
			}
			by := map[string]string{}
			for _, ev := range evs {
				if ev.Actor == "mallory" {
					t.Errorf("the audit trail names the forged actor: %+v", ev)
				}
				by[ev.Subject] = ev.Actor
			}
			if by["outputs/app:forged"] != "token:writer" || by["outputs/app:forged2"] != "token:writer" || by["outputs/app:v1"] != "token:admin" {
				t.Errorf("audit actors by subject: %v", by)
			}
			if r := as(admin, "audit", "--actor", "mallory"); r.code != 0 || r.stdout != "" {
				t.Errorf("audit --actor mallory: %q", r.stdout)
			}

			// A revoked token is refused at its next request.
			if r := as(admin, "tokens", "revoke", "writer"); r.code != 0 {
				t.Fatalf("revoke: exit %d\n%s", r.code, r.stderr)
			}
			if code, _ := call(t, "GET", srv.url+"/api/v1/refs/outputs/app:v1", writer, nil, nil); code != http.StatusUnauthorized {
				t.Errorf("a revoked token: %d", code)
			}
			ls := as(admin, "tokens", "ls").stdout
			if !regexp.MustCompile(`(?m)^writer\s+outputs:write\s+\S+\s+token:admin\s+\S+ by token:admin$`).MatchString(ls) {
				t.Errorf("tokens ls:\n%s", ls)
			}
			if strings.Contains(ls, "dcs_") {
				t.Errorf("tokens ls shows a secret:\n%s", ls)
			}

			// The metrics counted the refusals.
			_, metrics := call(t, "GET", srv.url+"/metrics", "", nil, nil)
			for _, want := range []string{`artifactstore_http_requests_total{route="GET /api/v1/refs",status="401"}`,
				`artifactstore_http_requests_total{route="PUT /api/v1/refs/{namespace}/{ref...}",status="403"}`,
				`artifactstore_auth_failures_total{reason="forbidden"}`, `artifactstore_store_bytes{namespace="outputs"}`} {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
		})
	}
}

// TestFirstTokenOnlyOnce: a restart prints no token and the first one
// still works; a configured token (ARTIFACTSTORE_API_TOKEN) means none is
// made; and the server's files keep no secret.
func TestFirstTokenOnlyOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := serve(t, dir, nil)
	if first.token == "" {
		t.Fatalf("no first token:\n%s", first.stderr())
	}
	first.cmd.Process.Signal(os.Interrupt)
	first.cmd.Wait()
	again := serve(t, dir, nil)
	if again.token != "" || strings.Contains(again.stderr(), "shown only this once") {
		t.Errorf("a restart printed a token:\n%s", again.stderr())
	}
	if code, _ := call(t, "GET", again.url+"/api/v1/refs", first.token, nil, nil); code != http.StatusOK {
		t.Errorf("the first token after a restart: %d", code)
	}
	files, err := filepath.Glob(filepath.Join(dir, "srv.db*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("database files: %v %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(strings.TrimPrefix(first.token, "dcs_"))) {
			t.Errorf("%s holds the token's secret", filepath.Base(f))
		}
	}

	fresh := t.TempDir()
	cfg := serve(t, fresh, []string{"ARTIFACTSTORE_API_TOKEN=configured-secret-0123456789"})
	if cfg.token != "" {
		t.Errorf("a server given a token made another:\n%s", cfg.stderr())
	}
	src := filepath.Join(fresh, "src")
	tree(t, src)
	if r := run(t, fresh, "--server", cfg.url, "--api-token", "configured-secret-0123456789", "push", src, "--ref", "outputs/c:1"); r.code != 0 {
		t.Fatalf("push with the configured token: exit %d\n%s", r.code, r.stderr)
	}
	r := run(t, fresh, "--server", cfg.url, "--api-token", "configured-secret-0123456789", "audit", "--subject", "outputs/c:1")
	if !strings.Contains(r.stdout, "token:configured") {
		t.Errorf("audit of the configured token's push:\n%s%s", r.stdout, r.stderr)
	}
	// Development without a token needs a loopback address.
	if r := run(t, fresh, "serve", "--insecure-no-auth", "--listen", "0.0.0.0:0"); r.code != 2 || !strings.Contains(r.stderr, "loopback") {
		t.Errorf("--insecure-no-auth on 0.0.0.0: exit %d\n%s", r.code, r.stderr)
	}
}

// TestTokensLocally: without --server, tokens are managed in the database
// itself, which is how an operator who lost every admin token gets one.
func TestTokensLocally(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := []string{"--database", filepath.Join(dir, "srv.db"), "--store", filepath.Join(dir, "srv")}
	r := run(t, dir, append(db, "tokens", "create", "rescue", "--scope", "*:admin", "--json")...)
	var made struct {
		Token     string `json:"token"`
		CreatedBy string `json:"created_by"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &made); err != nil || r.code != 0 {
		t.Fatalf("local tokens create: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if made.CreatedBy != "tester" {
		t.Errorf("a local token is made by --as (ARTIFACTSTORE_ACTOR): %s", r.stdout)
	}
	srv := serve(t, dir, nil)
	if srv.token != "" {
		t.Errorf("a store that has a token made a first one:\n%s", srv.stderr())
	}
	if code, body := call(t, "GET", srv.url+"/api/v1/tokens", made.Token, nil, nil); code != http.StatusOK || !strings.Contains(body, `"name":"rescue"`) {
		t.Errorf("GET /tokens with the local token: %d %s", code, body)
	}
	for _, args := range [][]string{
		{"tokens", "create", "x"},
		{"tokens", "create", "x", "--scope", "outputs:owner"},
		{"tokens", "create", "configured", "--scope", "outputs:read"},
		{"tokens", "create", "a b", "--scope", "outputs:read"},
	} {
		if r := run(t, dir, append(db, args...)...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
	if r := run(t, dir, append(db, "tokens", "revoke", "nobody")...); r.code != 1 || !strings.Contains(r.stderr, `no valid token is named "nobody"`) {
		t.Errorf("revoke of an unknown token: exit %d\n%s", r.code, r.stderr)
	}
}

// TestMigrate applies the store's migrations and exits, on both engines;
// a second run has nothing to do.
func TestMigrate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			db := filepath.Join(dir, "m.db")
			if engine == "postgres" {
				db = storetest.PostgresURL(t)
			}
			r := run(t, dir, "migrate", "--database", db)
			if r.code != 0 || !strings.Contains(r.stdout, "applied migration 00001\n") || !strings.Contains(r.stdout, "applied migration 00004\n") {
				t.Fatalf("first migrate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if r := run(t, dir, "migrate", "--database", db); r.code != 0 || r.stdout != "database is up to date\n" {
				t.Errorf("second migrate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if r := run(t, dir, "migrate", "--database", db, "--json"); r.code != 0 || !strings.Contains(r.stdout, `"applied": []`) {
				t.Errorf("migrate --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "artifacts")); !os.IsNotExist(err) {
		t.Errorf("migrate made a blob store: %v", err)
	}
	if r := run(t, dir, "migrate", "--server", "http://127.0.0.1:1"); r.code != 2 {
		t.Errorf("migrate --server: exit %d\n%s", r.code, r.stderr)
	}
}

func TestVersionNamesArtifactstore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if v := ok(t, dir, "version"); !strings.HasPrefix(v, "artifactstore ") {
		t.Errorf("version = %q", v)
	}
	help := ok(t, dir, "--help")
	if !regexp.MustCompile(`version\s+Print the version of artifactstore`).MatchString(help) || strings.Contains(help, "version of deltaci") {
		t.Errorf("--help:\n%s", help)
	}
}
