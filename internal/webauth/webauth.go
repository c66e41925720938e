// Package webauth signs people in to the web UI with OpenID Connect and
// decides what they may do there.
//
// A login is the authorization code flow with PKCE (S256), a state bound
// to the browser by a cookie and a nonce checked in the ID token. A
// signed-in browser holds a random session id in a cookie (HttpOnly,
// SameSite=Lax, Secure and "__Host-" prefixed unless the UI is plain http on
// loopback); the database keeps only the id's SHA-256, with an idle and an
// absolute expiry. Every login makes a new id. State-changing requests
// carry a CSRF token tied to the session and must come from the UI's own
// origin (CheckCSRF).
//
// Roles are per project: admin, maintainer or viewer, from the project's
// role bindings (a user's e-mail or subject, or a group of the provider's
// group claim) and the server's admins. Anonymous visitors are viewers of
// public projects and nothing else.
package webauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// Default lifetimes.
const (
	// DefaultIdleTimeout ends a session no request has used for this long.
	DefaultIdleTimeout = 12 * time.Hour
	// DefaultMaxAge ends every session this long after its login.
	DefaultMaxAge = 7 * 24 * time.Hour
	// loginTTL is how long a login may take at the provider.
	loginTTL = 10 * time.Minute
	// touchEvery bounds the writes a busy session makes for its idle clock.
	touchEvery = time.Minute
	// CallbackPath is where the provider sends the browser back; the
	// RedirectURL must end in it.
	CallbackPath = "/auth/callback"
)

// The roles a binding gives, from the most to the least allowed.
const (
	RoleAdmin      = "admin"
	RoleMaintainer = "maintainer"
	RoleViewer     = "viewer"
)

// ErrCSRF is what every error of CheckCSRF wraps: answer it 403.
var ErrCSRF = errors.New("request refused")

// Config is how the server talks to its OpenID provider.
type Config struct {
	// Issuer is the provider's issuer URL; its discovery document is read
	// at Issuer + "/.well-known/openid-configuration".
	Issuer string
	// ClientID and ClientSecret are the UI's client at the provider.
	ClientID, ClientSecret string
	// RedirectURL is the UI's external URL + CallbackPath, as registered
	// at the provider. It must be https, or http on a loopback host.
	RedirectURL string
	// Scopes to ask for; "openid" is always asked. Default: openid, email,
	// profile. Dex needs "groups" for its groups claim.
	Scopes []string
	// RoleClaim, when set, names the ID token (or userinfo) claim that
	// holds the user's groups, such as "groups"; a dotted name reaches
	// into objects ("realm_access.roles"). Bindings "group:NAME" match it.
	RoleClaim string
	// Admins are the server's admins: e-mail addresses (matched only when
	// the provider says the address is verified) or "sub:SUBJECT". They
	// are admins of every project.
	Admins []string
	// IdleTimeout and MaxAge bound a session; zero means the defaults.
	IdleTimeout, MaxAge time.Duration
}

// Store is what webauth keeps in the database; *store.Store is one.
type Store interface {
	Project(ctx context.Context, name string) (core.Project, error)
	ProjectRoles(ctx context.Context, project string) ([]store.RoleBinding, error)
	CreateWebSession(ctx context.Context, ws store.WebSession) error
	WebSession(ctx context.Context, idHash string) (store.WebSession, error)
	TouchWebSession(ctx context.Context, idHash string, at time.Time) error
	DeleteWebSession(ctx context.Context, idHash string) error
	PruneWebAuth(ctx context.Context, now, idleBefore time.Time) (sessions, logins int64, err error)
	CreateWebLogin(ctx context.Context, l store.WebLogin) error
	TakeWebLogin(ctx context.Context, stateHash string) (store.WebLogin, error)
}

// Option changes how an Auth works, for tests and embedding.
type Option func(*Auth)

// WithClock replaces time.Now, for tests of expiry.
func WithClock(now func() time.Time) Option { return func(a *Auth) { a.now = now } }

// WithLogger sets the logger of refused logins and store failures.
func WithLogger(l *slog.Logger) Option { return func(a *Auth) { a.log = l } }

// WithHTTPClient sets the client that talks to the provider.
func WithHTTPClient(c *http.Client) Option { return func(a *Auth) { a.client = c } }

// User is who signed in, as the provider said.
type User struct {
	Subject string
	Email   string
	// EmailVerified is the provider's email_verified claim; an unverified
	// address matches no binding and no admin.
	EmailVerified bool
	Name          string
	Groups        []string
}

// Session is a signed-in browser's session.
type Session struct {
	User User
	// CSRF is the token state-changing forms send back (field "csrf",
	// or header X-CSRF-Token).
	CSRF      string
	ExpiresAt time.Time
	idHash    string
}

// Auth signs people in to the web UI. It is safe for concurrent use.
type Auth struct {
	cfg       Config
	st        Store
	oauth     oauth2.Config
	verifier  *oidc.IDTokenVerifier
	provider  *oidc.Provider
	client    *http.Client
	log       *slog.Logger
	now       func() time.Time
	secure    bool
	origin    string // scheme://host[:port] of the UI
	admins    map[string]bool
	lastPrune atomic.Int64
}

// New reads the provider's discovery document and returns an Auth. It
// returns a core.KindInvalid error naming a bad setting, and
// core.KindUnavailable when the provider cannot be reached.
func New(ctx context.Context, cfg Config, st Store, opts ...Option) (*Auth, error) {
	a := &Auth{cfg: cfg, st: st, client: http.DefaultClient, now: time.Now,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(a)
	}
	if err := a.configure(); err != nil {
		return nil, err
	}
	p, err := oidc.NewProvider(a.clientContext(ctx), cfg.Issuer)
	if err != nil {
		return nil, core.Wrap(core.KindUnavailable, "OpenID discovery at "+cfg.Issuer, err)
	}
	a.provider = p
	// Tokens expire by the provider's clock, the real one, not WithClock's.
	a.verifier = p.Verifier(&oidc.Config{ClientID: cfg.ClientID})
	a.oauth = oauth2.Config{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: a.cfg.Scopes,
	}
	return a, nil
}

// configure checks cfg and fills in its defaults.
func (a *Auth) configure() error {
	const op = "web login"
	cfg := &a.cfg
	if cfg.Issuer == "" {
		return core.E(core.KindInvalid, op, "the OpenID issuer URL is required (--oidc-issuer)")
	}
	if cfg.ClientID == "" {
		return core.E(core.KindInvalid, op, "the OpenID client id is required (--oidc-client-id)")
	}
	u, err := url.Parse(cfg.RedirectURL)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return core.E(core.KindInvalid, op, "redirect URL %q: give an absolute URL such as https://ci.example.com%s", cfg.RedirectURL, CallbackPath)
	}
	if u.Path != CallbackPath {
		return core.E(core.KindInvalid, op, "redirect URL %q: its path must be %s", cfg.RedirectURL, CallbackPath)
	}
	switch {
	case u.Scheme == "https":
		a.secure = true
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		// Browsers keep Secure cookies from plain http; loopback is
		// the one place that is not sent over a network.
	default:
		return core.E(core.KindInvalid, op, "redirect URL %q: use https (plain http only on a loopback host)", cfg.RedirectURL)
	}
	a.origin = u.Scheme + "://" + u.Host
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		if len(cfg.Scopes) == 0 {
			cfg.Scopes = []string{"email", "profile"}
		}
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	a.admins = map[string]bool{}
	for _, s := range cfg.Admins {
		p, err := ParsePrincipal(s)
		if err != nil {
			return core.E(core.KindInvalid, op, "admin %q: %v", s, err)
		}
		if strings.HasPrefix(p, groupPrefix) {
			return core.E(core.KindInvalid, op, "admin %q: name an e-mail address or sub:SUBJECT, not a group", s)
		}
		a.admins[p] = true
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a *Auth) clientContext(ctx context.Context) context.Context {
	return context.WithValue(oidc.ClientContext(ctx, a.client), oauth2.HTTPClient, a.client)
}

// Routes adds the login's routes to mux: GET /login (with an optional
// next, a path of this site), GET /auth/callback and POST /logout.
func (a *Auth) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET "+CallbackPath, a.callback)
	mux.HandleFunc("POST /logout", a.logout)
}

// LoginURL is the path that signs in and comes back to next (a path of
// this site; anything else comes back to "/").
func (a *Auth) LoginURL(next string) string {
	if _, err := SafeNext(next); err != nil || next == "" {
		return "/login"
	}
	return "/login?next=" + url.QueryEscape(next)
}

type ctxKey struct{}

// SessionFrom returns the request's session, put in its context by
// Middleware; false for an anonymous visitor.
func SessionFrom(ctx context.Context) (Session, bool) {
	s, ok := ctx.Value(ctxKey{}).(Session)
	return s, ok
}

// Middleware loads the browser's session, when it has a live one, into
// the request's context (SessionFrom). An expired or unknown session is
// dropped with its cookie, and the request goes on anonymous.
func (a *Auth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(a.sessionCookie())
		if err != nil || c.Value == "" {
			next.ServeHTTP(w, r)
			return
		}
		s, err := a.load(r.Context(), c.Value)
		if err != nil {
			if core.KindOf(err) != core.KindNotFound {
				a.log.WarnContext(r.Context(), "web session not loaded", "err", err)
			}
			a.clearCookie(w, a.sessionCookie())
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	})
}

// load returns the live session of a cookie's id, or an error:
// core.KindNotFound for an unknown or expired one.
func (a *Auth) load(ctx context.Context, id string) (Session, error) {
	h := hashID(id)
	ws, err := a.st.WebSession(ctx, h)
	if err != nil {
		return Session{}, err
	}
	now := a.now()
	if !now.Before(ws.ExpiresAt) || !now.Before(ws.SeenAt.Add(a.cfg.IdleTimeout)) {
		if err := a.st.DeleteWebSession(ctx, h); err != nil {
			a.log.WarnContext(ctx, "expired web session not deleted", "err", err)
		}
		return Session{}, core.E(core.KindNotFound, "web session", "the session has expired")
	}
	if now.Sub(ws.SeenAt) >= touchEvery {
		if err := a.st.TouchWebSession(ctx, h, now); err != nil {
			a.log.WarnContext(ctx, "web session not touched", "err", err)
		}
	}
	return Session{
		User: User{Subject: ws.Subject, Email: ws.Email, EmailVerified: ws.EmailVerified, Name: ws.Name, Groups: ws.Groups},
		CSRF: csrfToken(id), ExpiresAt: ws.ExpiresAt, idHash: h,
	}, nil
}

// Role is what the request's user may do on project: RoleAdmin,
// RoleMaintainer, RoleViewer, or "" for nothing (not even reading). A
// server admin is admin everywhere; a signed-in user has the highest role
// of the project's bindings that match their verified e-mail, their
// subject or one of their groups; anyone, signed in or not, is a viewer
// of a public project. An unknown project, and a store that fails, give "".
func (a *Auth) Role(ctx context.Context, project string) string {
	s, signedIn := SessionFrom(ctx)
	p, err := a.st.Project(ctx, project)
	if err != nil {
		if core.KindOf(err) != core.KindNotFound {
			a.log.WarnContext(ctx, "role not resolved", "project", project, "err", err)
		}
		return ""
	}
	if signedIn && a.isAdmin(s.User) {
		return RoleAdmin
	}
	best := ""
	if p.Public {
		best = RoleViewer
	}
	if !signedIn {
		return best
	}
	bindings, err := a.st.ProjectRoles(ctx, project)
	if err != nil {
		a.log.WarnContext(ctx, "role not resolved", "project", project, "err", err)
		return ""
	}
	mine := principals(s.User)
	for _, b := range bindings {
		if mine[b.Principal] && rank(b.Role) > rank(best) {
			best = b.Role
		}
	}
	return best
}

// IsAdmin reports whether the request's user is one of the server's admins.
func (a *Auth) IsAdmin(ctx context.Context) bool {
	s, ok := SessionFrom(ctx)
	return ok && a.isAdmin(s.User)
}

func (a *Auth) isAdmin(u User) bool {
	for p := range principals(u) {
		if !strings.HasPrefix(p, groupPrefix) && a.admins[p] {
			return true
		}
	}
	return false
}

// principals are the binding principals that name u.
func principals(u User) map[string]bool {
	m := map[string]bool{subPrefix + u.Subject: true}
	if u.EmailVerified && u.Email != "" {
		m[strings.ToLower(u.Email)] = true
	}
	for _, g := range u.Groups {
		m[groupPrefix+g] = true
	}
	return m
}

func rank(role string) int {
	switch role {
	case RoleAdmin:
		return 3
	case RoleMaintainer:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// MayOperate reports whether role may cancel and rerun runs.
func MayOperate(role string) bool { return rank(role) >= rank(RoleMaintainer) }

// MayRead reports whether role may see a project's runs.
func MayRead(role string) bool { return rank(role) >= rank(RoleViewer) }

// CheckCSRF refuses a state-changing request that does not come from a
// page of this UI: a cross-origin Origin or Sec-Fetch-Site, no session,
// or a CSRF token (form field "csrf", or header X-CSRF-Token) that is not
// the session's. Every error it returns wraps ErrCSRF.
func (a *Auth) CheckCSRF(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return fmt.Errorf("%w: a %s request (Sec-Fetch-Site) may not change anything", ErrCSRF, site)
	}
	if o := r.Header.Get("Origin"); o != "" && o != a.origin {
		return fmt.Errorf("%w: origin %q is not this site's (%s)", ErrCSRF, o, a.origin)
	}
	s, ok := SessionFrom(r.Context())
	if !ok {
		return fmt.Errorf("%w: not signed in (or the session expired): sign in again", ErrCSRF)
	}
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		tok = r.PostFormValue("csrf")
	}
	if tok == "" {
		return fmt.Errorf("%w: no CSRF token: send the form field csrf or the header X-CSRF-Token", ErrCSRF)
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.CSRF)) != 1 {
		return fmt.Errorf("%w: the CSRF token is not this session's: reload the page", ErrCSRF)
	}
	return nil
}

// Cookie names; "__Host-" makes the browser refuse them unless they are
// Secure, for the whole host and set by it (no Domain), so a sibling
// subdomain cannot plant one.
func (a *Auth) sessionCookie() string { return a.cookieName("deltaci-session") }
func (a *Auth) loginCookie() string   { return a.cookieName("deltaci-login") }

func (a *Auth) cookieName(n string) string {
	if a.secure {
		return "__Host-" + n
	}
	return n
}

func (a *Auth) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(maxAge / time.Second),
		Secure: a.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

func (a *Auth) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: a.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashID is the stored stand-in of a session id or a state.
func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// csrfToken derives a session's CSRF token from its id, so it is not
// stored: the database's hash of the id does not give it.
func csrfToken(id string) string {
	sum := sha256.Sum256([]byte("deltaci-csrf\x00" + id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
