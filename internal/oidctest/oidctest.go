// Package oidctest runs a real OpenID provider on loopback for tests: the
// provider package of github.com/zitadel/oidc/v3 (discovery, the
// authorization code flow with PKCE, signed ID tokens, userinfo, keys)
// over an in-memory store of clients and users, with a login page a
// browser, or LogIn for an HTTP client, can submit.
package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// ScopeGroups asks for the "groups" claim, as Dex does.
const ScopeGroups = "groups"

// LoginPath is the provider's login page; its form posts username,
// password and authRequestID back to it.
const LoginPath = "/signin"

// User is someone who can sign in at the provider.
type User struct {
	Username, Password string
	Subject            string // "" means the username
	Email              string
	EmailVerified      bool
	Name               string
	Groups             []string // the "groups" claim, given for the groups scope
}

// Provider is a running OpenID provider.
type Provider struct {
	st     *storage
	srv    *http.Server
	ln     net.Listener
	done   chan struct{}
	issuer string
	mu     sync.Mutex
	closed bool
}

// Start runs a provider on a loopback port until Close. Its issuer is
// http://127.0.0.1:PORT.
func Start() (*Provider, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("oidctest: listen: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("oidctest: signing key: %w", err)
	}
	issuer := "http://" + ln.Addr().String()
	st := &storage{
		issuer: issuer, key: key, keyID: randomID(),
		clients: map[string]*client{}, users: map[string]User{},
		requests: map[string]*authRequest{}, codes: map[string]string{}, tokens: map[string]accessToken{},
	}
	cfg := &op.Config{CodeMethodS256: true, AuthMethodPost: true}
	if _, err := rand.Read(cfg.CryptoKey[:]); err != nil {
		ln.Close()
		return nil, fmt.Errorf("oidctest: crypto key: %w", err)
	}
	prov, err := op.NewProvider(cfg, st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("oidctest: provider: %w", err)
	}
	p := &Provider{st: st, ln: ln, done: make(chan struct{}), issuer: issuer}
	callback := func(id string) string {
		return op.AuthCallbackURL(prov)(op.ContextWithIssuer(context.Background(), issuer), id)
	}
	mux := http.NewServeMux()
	mux.Handle("/", prov)
	mux.HandleFunc(LoginPath, func(w http.ResponseWriter, r *http.Request) { p.loginPage(w, r, callback) })
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// Close stops the provider and waits for it.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.srv.Close()
	<-p.done
	return err
}

// AddClient registers a confidential web client (client_secret_basic)
// that may be sent back to redirectURIs, and returns its secret.
func (p *Provider) AddClient(id string, redirectURIs ...string) (secret string) {
	secret = randomID()
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.clients[id] = &client{id: id, secret: secret, redirectURIs: redirectURIs,
		loginURL: func(rid string) string { return p.issuer + LoginPath + "?authRequestID=" + url.QueryEscape(rid) }}
	return secret
}

// AddUser lets u sign in; a user of the same username is replaced.
func (p *Provider) AddUser(u User) {
	if u.Subject == "" {
		u.Subject = u.Username
	}
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.users[u.Username] = u
}

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · test provider</title></head>
<body><main><h1>Sign in</h1>
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<p><label for="username">Username</label> <input id="username" name="username" autocomplete="username" required></p>
<p><label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button type="submit" id="submit">Sign in</button></p>
</form></main></body></html>
`))

// loginPage shows the login form (GET) and checks it (POST): a known user
// with the right password finishes the authorization request, and the
// browser goes on to the provider's callback, which sends the code.
func (p *Provider) loginPage(w http.ResponseWriter, r *http.Request, callback func(string) string) {
	show := func(status int, id, msg string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_ = loginTemplate.Execute(w, map[string]string{"Action": LoginPath, "ID": id, "Error": msg})
	}
	switch r.Method {
	case http.MethodGet:
		id := r.URL.Query().Get("authRequestID")
		if _, err := p.st.AuthRequestByID(r.Context(), id); err != nil {
			http.Error(w, "unknown authorization request", http.StatusBadRequest)
			return
		}
		show(http.StatusOK, id, "")
	case http.MethodPost:
		id := r.PostFormValue("authRequestID")
		p.st.mu.Lock()
		a, ok := p.st.requests[id]
		u, known := p.st.users[r.PostFormValue("username")]
		good := ok && known && u.Password != "" && u.Password == r.PostFormValue("password")
		if good {
			a.subject, a.authTime, a.done = u.Subject, time.Now(), true
		}
		p.st.mu.Unlock()
		switch {
		case !ok:
			http.Error(w, "unknown authorization request", http.StatusBadRequest)
		case !good:
			show(http.StatusUnauthorized, id, "Wrong username or password.")
		default:
			http.Redirect(w, r, callback(id), http.StatusFound)
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
	}
}

// Authorize signs username in at the provider for an authorization URL
// (the provider's /authorize with its query), the way a browser would,
// and returns where the provider then sends the browser: the client's
// redirect URI with the code and state (or an error). c's cookie jar, if
// any, is used; its redirect policy is not.
func (p *Provider) Authorize(ctx context.Context, c *http.Client, authURL, username, password string) (*url.URL, error) {
	nc := noFollow(c)
	loc, err := url.Parse(authURL)
	if err != nil {
		return nil, err
	}
	var resp *http.Response
	for range 10 {
		if !p.owns(loc) {
			return loc, nil
		}
		if loc.Path == LoginPath {
			form := url.Values{"authRequestID": {loc.Query().Get("authRequestID")}, "username": {username}, "password": {password}}
			resp, err = send(ctx, nc, http.MethodPost, p.issuer+LoginPath, form)
		} else {
			resp, err = send(ctx, nc, http.MethodGet, loc.String(), nil)
		}
		if err != nil {
			return nil, err
		}
		next := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || next == "" {
			return nil, fmt.Errorf("oidctest: %s answered %s: %s", loc.Path, resp.Status, body(resp))
		}
		resp.Body.Close()
		if loc, err = loc.Parse(next); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("oidctest: too many redirects")
}

// LogIn signs username in to a client of this provider with an HTTP client
// that keeps cookies: it opens startURL (such as the UI's /login), which
// must send it to the provider, signs in there, and follows the provider's
// redirect back with c, returning the last answer.
func (p *Provider) LogIn(ctx context.Context, c *http.Client, startURL, username, password string) (*http.Response, error) {
	resp, err := send(ctx, noFollow(c), http.MethodGet, startURL, nil)
	if err != nil {
		return nil, err
	}
	authURL := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || authURL == "" {
		return nil, fmt.Errorf("oidctest: %s answered %s, not a redirect to the provider: %s", startURL, resp.Status, body(resp))
	}
	resp.Body.Close()
	back, err := p.Authorize(ctx, c, authURL, username, password)
	if err != nil {
		return nil, err
	}
	return send(ctx, c, http.MethodGet, back.String(), nil)
}

func (p *Provider) owns(u *url.URL) bool { return "http://"+u.Host == p.issuer }

// noFollow is c, not following redirects.
func noFollow(c *http.Client) *http.Client {
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &nc
}

func send(ctx context.Context, c *http.Client, method, u string, form url.Values) (*http.Response, error) {
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return c.Do(req)
}

func body(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	return strings.TrimSpace(string(b))
}

func randomID() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}

var _ op.Storage = (*storage)(nil)
var _ op.CanSetUserinfoFromRequest = (*storage)(nil)
