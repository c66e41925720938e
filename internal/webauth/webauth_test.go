package webauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/oidctest"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/sqlite"
	"github.com/deltaci/deltaci/internal/webauth"
)

// op is the OpenID provider every test signs in at, started once.
var op *oidctest.Provider

// The provider's users.
var (
	ada     = oidctest.User{Username: "ada", Password: "ada-pw", Subject: "sub-ada", Email: "Ada@Example.com", EmailVerified: true, Name: "Ada", Groups: []string{"ops"}}
	mallory = oidctest.User{Username: "mallory", Password: "mallory-pw", Subject: "sub-mallory", Email: "ada@example.com", Name: "Not Ada"}
	carol   = oidctest.User{Username: "carol", Password: "carol-pw", Subject: "sub-carol", Email: "carol@example.com", EmailVerified: true, Groups: []string{"release", "dev"}}
	root    = oidctest.User{Username: "root", Password: "root-pw", Subject: "sub-root", Email: "root@example.com", EmailVerified: true}
)

func TestMain(m *testing.M) {
	var err error
	if op, err = oidctest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, u := range []oidctest.User{ada, mallory, carol, root} {
		op.AddUser(u)
	}
	code := m.Run()
	op.Close()
	os.Exit(code)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type bundle struct {
	ctx   context.Context
	st    *store.Store
	auth  *webauth.Auth
	srv   *httptest.Server
	clock *clock
}

var clients atomic.Int64

// setup starts a UI on loopback with the login's routes, /whoami (the
// session and the role on ?project=) and POST /act (CSRF-checked), signed
// in through its own client at the provider.
func setup(t *testing.T) bundle {
	t.Helper()
	ctx := context.Background()
	drv, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "state.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(drv)
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Now()}
	mux := http.NewServeMux()
	var a *webauth.Auth
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.Middleware(mux).ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	id := fmt.Sprintf("deltaci-%d", clients.Add(1))
	secret := op.AddClient(id, srv.URL+webauth.CallbackPath)
	a, err = webauth.New(ctx, webauth.Config{
		Issuer: op.Issuer(), ClientID: id, ClientSecret: secret, RedirectURL: srv.URL + webauth.CallbackPath,
		Scopes: []string{"email", "profile", oidctest.ScopeGroups}, RoleClaim: "groups", Admins: []string{"ROOT@example.com"},
		IdleTimeout: time.Hour, MaxAge: 3 * time.Hour,
	}, st, webauth.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	a.Routes(mux)
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		s, ok := webauth.SessionFrom(r.Context())
		_ = json.NewEncoder(w).Encode(whoami{SignedIn: ok, Subject: s.User.Subject, Email: s.User.Email, Name: s.User.Name,
			Groups: s.User.Groups, CSRF: s.CSRF, Role: a.Role(r.Context(), r.URL.Query().Get("project"))})
	})
	mux.HandleFunc("POST /act", func(w http.ResponseWriter, r *http.Request) {
		if err := a.CheckCSRF(r); err != nil {
			if !errors.Is(err, webauth.ErrCSRF) {
				t.Errorf("CheckCSRF error %v does not wrap ErrCSRF", err)
			}
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		io.WriteString(w, "done")
	})
	return bundle{ctx: ctx, st: st, auth: a, srv: srv, clock: c}
}

type whoami struct {
	SignedIn bool     `json:"signed_in"`
	Subject  string   `json:"subject"`
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Groups   []string `json:"groups"`
	CSRF     string   `json:"csrf"`
	Role     string   `json:"role"`
}

// browser is an HTTP client with a cookie jar.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: time.Minute}
}

func noFollow(c *http.Client) *http.Client {
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &nc
}

// signIn logs u in with c and checks it landed on /whoami signed in.
func (b bundle) signIn(t *testing.T, c *http.Client, u oidctest.User) whoami {
	t.Helper()
	resp, err := op.LogIn(b.ctx, c, b.srv.URL+"/login?next=/whoami", u.Username, u.Password)
	if err != nil {
		t.Fatal(err)
	}
	w := decode(t, resp)
	if !w.SignedIn || w.Subject != u.Subject {
		t.Fatalf("after signing in as %s: %+v", u.Username, w)
	}
	return w
}

func decode(t *testing.T, resp *http.Response) whoami {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: %s: %s", resp.Request.Method, resp.Request.URL, resp.Status, b)
	}
	var w whoami
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		t.Fatal(err)
	}
	return w
}

func (b bundle) who(t *testing.T, c *http.Client, project string) whoami {
	t.Helper()
	resp, err := c.Get(b.srv.URL + "/whoami?project=" + url.QueryEscape(project))
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, resp)
}

// get sends a GET without following redirects.
func get(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := noFollow(c).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func wantStatus(t *testing.T, resp *http.Response, status int, says string) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || !strings.Contains(string(body), says) {
		t.Fatalf("%s %s: %s %q; want %d saying %q", resp.Request.Method, resp.Request.URL.Path, resp.Status, body, status, says)
	}
}

func cookieOf(c *http.Client, u, name string) string {
	pu, _ := url.Parse(u)
	for _, k := range c.Jar.Cookies(pu) {
		if k.Name == name {
			return k.Value
		}
	}
	return ""
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// startLogin opens /login with c and returns the provider's authorization
// URL it was sent to.
func (b bundle) startLogin(t *testing.T, c *http.Client) *url.URL {
	t.Helper()
	resp := get(t, c, b.srv.URL+"/login")
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("/login: %s", resp.Status)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestLoginCodeFlowWithPKCE(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := browser(t)

	auth := b.startLogin(t, c)
	q := auth.Query()
	if !strings.HasPrefix(auth.String(), op.Issuer()+"/") || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		len(q.Get("code_challenge")) != 43 || q.Get("nonce") == "" || q.Get("state") == "" || !strings.Contains(q.Get("scope"), "openid") {
		t.Fatalf("authorization URL lacks the code flow's PKCE, nonce or state: %s", auth)
	}
	if got := cookieOf(c, b.srv.URL, "deltaci-login"); got != q.Get("state") {
		t.Fatalf("the login cookie %q is not the state %q", got, q.Get("state"))
	}

	back, err := op.Authorize(b.ctx, c, auth.String(), ada.Username, ada.Password)
	if err != nil {
		t.Fatal(err)
	}
	resp := get(t, c, back.String())
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("callback: %s to %q, want 303 to /", resp.Status, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == "deltaci-session" {
			session = k
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.Secure || session.Domain != "" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/, no Domain (and not Secure on http loopback)", session)
	}
	w := b.who(t, c, "")
	if w.Subject != "sub-ada" || w.Email != "Ada@Example.com" || w.Name != "Ada" || len(w.Groups) != 1 || w.Groups[0] != "ops" || w.CSRF == "" {
		t.Fatalf("session: %+v", w)
	}
	// The database holds the id's hash, never the id.
	if _, err := b.st.WebSession(b.ctx, hash(session.Value)); err != nil {
		t.Fatalf("no session under the id's hash: %v", err)
	}
	if _, err := b.st.WebSession(b.ctx, session.Value); core.KindOf(err) != core.KindNotFound {
		t.Fatalf("the session id itself is a key: %v", err)
	}
}

// TestStolenCodeWithoutVerifierIsRefused: an attacker who reads the
// callback URL (its code) cannot redeem it at the provider without the
// PKCE verifier, which never leaves the server; nor in a browser of their
// own, which has no login under way or another one.
func TestStolenCodeWithoutVerifierIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	victim := browser(t)
	auth := b.startLogin(t, victim)
	back, err := op.Authorize(b.ctx, victim, auth.String(), ada.Username, ada.Password)
	if err != nil {
		t.Fatal(err)
	}
	code := back.Query().Get("code")
	clientID := auth.Query().Get("client_id")

	redeem := func(verifier string) (int, string) {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {b.srv.URL + webauth.CallbackPath}}
		if verifier != "" {
			form.Set("code_verifier", verifier)
		}
		req, _ := http.NewRequest(http.MethodPost, op.Issuer()+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// Even with the client's own credentials.
		req.SetBasicAuth(clientID, "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := redeem(""); status != http.StatusBadRequest || !strings.Contains(body, "code_verifier required") {
		t.Fatalf("code redeemed without a verifier: %d %s", status, body)
	}
	if status, body := redeem(strings.Repeat("a", 43)); status != http.StatusBadRequest || !strings.Contains(body, "invalid_grant") {
		t.Fatalf("code redeemed with a guessed verifier: %d %s", status, body)
	}

	attacker := browser(t)
	wantStatus(t, get(t, attacker, back.String()), http.StatusBadRequest, "no login is under way in this browser")
	b.startLogin(t, attacker)
	wantStatus(t, get(t, attacker, back.String()), http.StatusForbidden, "state is not the one this browser began")
	if w := b.who(t, attacker, ""); w.SignedIn {
		t.Fatal("the attacker is signed in")
	}

	// The victim's own callback still works: the server sends its verifier.
	resp := get(t, victim, back.String())
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("victim's callback: %s", resp.Status)
	}
	if w := b.who(t, victim, ""); w.Subject != "sub-ada" {
		t.Fatalf("victim not signed in: %+v", w)
	}
	// And only once.
	wantStatus(t, get(t, victim, back.String()), http.StatusBadRequest, "no login is under way")
}

// TestForgedStateIsRefused: login CSRF. The attacker completes a login of
// their own and sends the victim its callback URL; the victim's browser
// has another state under way, and the callback is refused.
func TestForgedStateIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	attacker := browser(t)
	auth := b.startLogin(t, attacker)
	back, err := op.Authorize(b.ctx, attacker, auth.String(), mallory.Username, mallory.Password)
	if err != nil {
		t.Fatal(err)
	}
	victim := browser(t)
	b.startLogin(t, victim)
	wantStatus(t, get(t, victim, back.String()), http.StatusForbidden, "state is not the one this browser began")
	if w := b.who(t, victim, ""); w.SignedIn {
		t.Fatalf("the victim was signed in as the attacker: %+v", w)
	}
	// A state the server never made, with a cookie to match, is no login.
	forged := browser(t)
	u, _ := url.Parse(b.srv.URL)
	forged.Jar.SetCookies(u, []*http.Cookie{{Name: "deltaci-login", Value: "forged", Path: "/"}})
	wantStatus(t, get(t, forged, b.srv.URL+webauth.CallbackPath+"?state=forged&code="+url.QueryEscape(back.Query().Get("code"))),
		http.StatusBadRequest, "already used or has expired")
}

// TestForgedNonceIsRefused: an authorization request whose nonce was
// changed on its way to the provider yields an ID token that names
// another nonce; the callback refuses it though state and PKCE match.
func TestForgedNonceIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := browser(t)
	auth := b.startLogin(t, c)
	q := auth.Query()
	q.Set("nonce", "attackers-nonce")
	auth.RawQuery = q.Encode()
	back, err := op.Authorize(b.ctx, c, auth.String(), ada.Username, ada.Password)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, get(t, c, back.String()), http.StatusForbidden, "nonce is not this login")
	if w := b.who(t, c, ""); w.SignedIn {
		t.Fatal("signed in with another login's nonce")
	}
}

func TestProviderRefusalIsShown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := browser(t)
	auth := b.startLogin(t, c)
	resp := get(t, c, b.srv.URL+webauth.CallbackPath+"?state="+auth.Query().Get("state")+"&error=access_denied&error_description=no+%3Cb%3E")
	wantStatus(t, resp, http.StatusForbidden, "refused the login: access_denied no &lt;b&gt;")
}

func TestLoginNextOnlySameSite(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := browser(t)
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "evil", "/a\r\nSet-Cookie: x=1"} {
		wantStatus(t, get(t, c, b.srv.URL+"/login?next="+url.QueryEscape(next)), http.StatusBadRequest, "next:")
	}
	resp, err := op.LogIn(b.ctx, c, b.srv.URL+"/login?next="+url.QueryEscape("/whoami?project=x&y=1"), ada.Username, ada.Password)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Request.URL.Path != "/whoami" || resp.Request.URL.RawQuery != "project=x&y=1" {
		t.Fatalf("landed on %s", resp.Request.URL)
	}
	decode(t, resp)
}

func TestCSRFIsRequired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := browser(t)
	w := b.signIn(t, c, ada)
	post := func(form url.Values, header map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/act", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := noFollow(c).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	wantStatus(t, post(nil, nil), http.StatusForbidden, "no CSRF token")
	wantStatus(t, post(url.Values{"csrf": {w.CSRF + "x"}}, nil), http.StatusForbidden, "not this session's")
	wantStatus(t, post(url.Values{"csrf": {w.CSRF}}, map[string]string{"Origin": "https://evil.example"}), http.StatusForbidden, `origin "https://evil.example"`)
	wantStatus(t, post(url.Values{"csrf": {w.CSRF}}, map[string]string{"Origin": "null"}), http.StatusForbidden, `origin "null"`)
	wantStatus(t, post(url.Values{"csrf": {w.CSRF}}, map[string]string{"Sec-Fetch-Site": "cross-site"}), http.StatusForbidden, "cross-site request")
	wantStatus(t, post(url.Values{"csrf": {w.CSRF}}, map[string]string{"Sec-Fetch-Site": "same-site"}), http.StatusForbidden, "same-site request")
	wantStatus(t, post(url.Values{"csrf": {w.CSRF}}, map[string]string{"Origin": b.srv.URL, "Sec-Fetch-Site": "same-origin"}), http.StatusOK, "done")
	wantStatus(t, post(nil, map[string]string{"X-CSRF-Token": w.CSRF}), http.StatusOK, "done")

	// Another session's token is not this one's.
	other := browser(t)
	ow := b.signIn(t, other, carol)
	wantStatus(t, post(url.Values{"csrf": {ow.CSRF}}, nil), http.StatusForbidden, "not this session's")
	// Without a session nothing passes.
	anon := browser(t)
	req, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/act", strings.NewReader("csrf="+w.CSRF))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := anon.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, http.StatusForbidden, "not signed in")
}

func TestLogoutNeedsCSRFAndEndsTheSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := browser(t)
	w := b.signIn(t, c, ada)
	id := cookieOf(c, b.srv.URL, "deltaci-session")
	resp, err := noFollow(c).PostForm(b.srv.URL+"/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, http.StatusForbidden, "no CSRF token")
	if !b.who(t, c, "").SignedIn {
		t.Fatal("a logout without the CSRF token ended the session")
	}
	resp, err = noFollow(c).PostForm(b.srv.URL+"/logout", url.Values{"csrf": {w.CSRF}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %s", resp.Status)
	}
	if b.who(t, c, "").SignedIn {
		t.Fatal("still signed in after logout")
	}
	// The old cookie, replayed, is no session.
	replay := browser(t)
	u, _ := url.Parse(b.srv.URL)
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: "deltaci-session", Value: id, Path: "/"}})
	if b.who(t, replay, "").SignedIn {
		t.Fatal("a logged-out session id still works")
	}
}

func TestSessionRotatedOnLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := browser(t)
	b.signIn(t, c, ada)
	first := cookieOf(c, b.srv.URL, "deltaci-session")
	b.signIn(t, c, carol)
	second := cookieOf(c, b.srv.URL, "deltaci-session")
	if first == "" || first == second {
		t.Fatalf("the session id was not replaced: %q then %q", first, second)
	}
	if _, err := b.st.WebSession(b.ctx, hash(first)); core.KindOf(err) != core.KindNotFound {
		t.Fatalf("the replaced session is still stored: %v", err)
	}
	// A session id planted before login (fixation) is not the one after.
	planted := browser(t)
	u, _ := url.Parse(b.srv.URL)
	planted.Jar.SetCookies(u, []*http.Cookie{{Name: "deltaci-session", Value: "planted-by-attacker", Path: "/"}})
	b.signIn(t, planted, ada)
	if got := cookieOf(planted, b.srv.URL, "deltaci-session"); got == "planted-by-attacker" {
		t.Fatal("the planted session id was kept")
	}
}

func TestExpiredSessionIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := browser(t)
	b.signIn(t, c, ada)
	id := cookieOf(c, b.srv.URL, "deltaci-session")

	// Idle: nothing for longer than IdleTimeout (1h).
	b.clock.advance(time.Hour + time.Second)
	if w := b.who(t, c, ""); w.SignedIn {
		t.Fatalf("an idle session still works: %+v", w)
	}
	if _, err := b.st.WebSession(b.ctx, hash(id)); core.KindOf(err) != core.KindNotFound {
		t.Fatalf("the idle session is still stored: %v", err)
	}

	// Absolute: used every 50 minutes, it still ends at MaxAge (3h).
	b.signIn(t, c, ada)
	for range 3 {
		b.clock.advance(50 * time.Minute)
		if !b.who(t, c, "").SignedIn {
			t.Fatal("a session in use ended before its maximum age")
		}
	}
	b.clock.advance(31 * time.Minute)
	if b.who(t, c, "").SignedIn {
		t.Fatal("a session outlived its maximum age")
	}
}

func TestRolesPerProject(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, p := range []core.Project{{Name: "private", RepoURL: "/srv/private"}, {Name: "open", RepoURL: "/srv/open", Public: true}} {
		if _, err := b.st.CreateProject(b.ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []struct{ project, principal, role string }{
		{"private", "ada@example.com", "maintainer"},
		{"private", "group:ops", "viewer"},
		{"private", "group:release", "maintainer"},
		{"open", "sub:sub-carol", "admin"},
		{"open", "group:ops", "viewer"},
	} {
		if _, err := b.st.SetProjectRole(b.ctx, g.project, g.principal, g.role); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]map[string]string{
		// The highest of her e-mail's and her group's bindings.
		"ada": {"private": "maintainer", "open": "viewer", "gone": ""},
		// Her e-mail is ada's, unverified: it matches nothing.
		"mallory": {"private": "", "open": "viewer", "gone": ""},
		// By group on one, by subject on the other.
		"carol": {"private": "maintainer", "open": "admin", "gone": ""},
		// A server admin, named by e-mail in another case.
		"root": {"private": "admin", "open": "admin", "gone": ""},
		"":     {"private": "", "open": "viewer", "gone": ""},
	}
	for _, u := range []oidctest.User{ada, mallory, carol, root, {}} {
		c := browser(t)
		if u.Username != "" {
			b.signIn(t, c, u)
		}
		for project, role := range want[u.Username] {
			if got := b.who(t, c, project).Role; got != role {
				t.Errorf("%q on %s: role %q, want %q", u.Username, project, got, role)
			}
		}
	}
}

func TestSecureCookiesOffLoopback(t *testing.T) {
	t.Parallel()
	drv, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(drv)
	t.Cleanup(func() { st.Close() })
	a, err := webauth.New(context.Background(), webauth.Config{
		Issuer: op.Issuer(), ClientID: "ci", ClientSecret: "s", RedirectURL: "https://ci.example.com" + webauth.CallbackPath,
	}, st)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Routes(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://ci.example.com/login", nil))
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusFound || len(cookies) != 1 {
		t.Fatalf("/login: %d, cookies %v", rec.Code, cookies)
	}
	if k := cookies[0]; k.Name != "__Host-deltaci-login" || !k.Secure || !k.HttpOnly || k.Path != "/" || k.Domain != "" || k.SameSite != http.SameSiteLaxMode {
		t.Fatalf("login cookie %+v: want __Host- prefixed, Secure, HttpOnly, Path=/, SameSite=Lax", k)
	}
	// CheckCSRF compares Origin with the external URL, not the request's host.
	req := httptest.NewRequest(http.MethodPost, "https://ci.example.com/logout", nil)
	req.Header.Set("Origin", "http://ci.example.com")
	if err := a.CheckCSRF(req); err == nil || !strings.Contains(err.Error(), "https://ci.example.com") {
		t.Fatalf("CheckCSRF of an http Origin: %v", err)
	}
}

func TestBadConfigIsRefused(t *testing.T) {
	t.Parallel()
	ok := webauth.Config{Issuer: op.Issuer(), ClientID: "ci", RedirectURL: "https://ci.example.com/auth/callback"}
	for _, tc := range []struct {
		name   string
		change func(*webauth.Config)
		kind   core.Kind
		says   string
	}{
		{"ErrNoIssuer", func(c *webauth.Config) { c.Issuer = "" }, core.KindInvalid, "--oidc-issuer"},
		{"ErrNoClientID", func(c *webauth.Config) { c.ClientID = "" }, core.KindInvalid, "--oidc-client-id"},
		{"ErrPlainHTTPOffLoopback", func(c *webauth.Config) { c.RedirectURL = "http://ci.example.com/auth/callback" }, core.KindInvalid, "use https"},
		{"ErrOtherCallbackPath", func(c *webauth.Config) { c.RedirectURL = "https://ci.example.com/cb" }, core.KindInvalid, "must be /auth/callback"},
		{"ErrRelativeRedirect", func(c *webauth.Config) { c.RedirectURL = "/auth/callback" }, core.KindInvalid, "absolute URL"},
		{"ErrGroupAdmin", func(c *webauth.Config) { c.Admins = []string{"group:ops"} }, core.KindInvalid, "not a group"},
		{"ErrBadAdmin", func(c *webauth.Config) { c.Admins = []string{"root"} }, core.KindInvalid, `admin "root"`},
		{"ErrUnreachableIssuer", func(c *webauth.Config) { c.Issuer = "http://127.0.0.1:1" }, core.KindUnavailable, "OpenID discovery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.change(&cfg)
			_, err := webauth.New(context.Background(), cfg, nil)
			if core.KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("New: %v; want %s saying %q", err, tc.kind, tc.says)
			}
		})
	}
}
