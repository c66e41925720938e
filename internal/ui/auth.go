package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// Authorizer decides what a signed-in person may do. The web login
// (OpenID Connect sessions) satisfies it; so does APIAuth.
type Authorizer interface {
	// Role is the caller's role in project, read from the request's
	// context: "admin", "maintainer", "viewer", or "" for none.
	Role(ctx context.Context, project string) string
	// IsAdmin reports whether the caller is one of the server's admins,
	// who see the runners and the runs of no project.
	IsAdmin(ctx context.Context) bool
	// CheckCSRF refuses a state-changing request that does not carry the
	// caller's CSRF token.
	CheckCSRF(r *http.Request) error
}

// Roles, as Authorizer.Role names them.
const (
	RoleAdmin      = "admin"
	RoleMaintainer = "maintainer"
	RoleViewer     = "viewer"
)

// mayAct reports whether a role may cancel and rerun runs.
func mayAct(role string) bool { return role == RoleAdmin || role == RoleMaintainer }

// CSRFField is the form field that carries the CSRF token.
const CSRFField = "csrf"

// csrfCookie is APIAuth's double-submit cookie.
const csrfCookie = "deltaci_csrf"

// APIAuth admits the UI's callers by the API's own credentials, for a
// server without web login: Authenticate returns the actor and role of a
// request (an API token as Authorization: Bearer, or everyone as an
// anonymous admin on a server run without authentication). A request
// with a bearer token needs no CSRF token, since a browser never adds
// one to a request another site makes; any other state-changing request
// must carry the value of a cookie set for it (double submit) and come
// from this origin.
type APIAuth struct {
	Authenticate func(r *http.Request) (actor, role string, err error)
}

type principalKey struct{}

type principal struct {
	actor, role, csrf string
	bearer            bool
}

// Middleware authenticates each request and keeps who it is in its
// context; a request the API refuses gets the refusal as a page.
func (a APIAuth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor, role, err := a.Authenticate(r)
		if err != nil {
			renderPlainError(w, http.StatusUnauthorized, "Sign in needed",
				"This server has no web login set up and the request carries no API token it knows: "+err.Error())
			return
		}
		p := principal{actor: actor, role: role, bearer: strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ")}
		if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 32 {
			p.csrf = c.Value
		} else {
			b := make([]byte, 16)
			_, _ = rand.Read(b) // crypto/rand never fails on Linux
			p.csrf = hex.EncodeToString(b)
			http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: p.csrf, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func principalOf(ctx context.Context) (principal, bool) {
	p, ok := ctx.Value(principalKey{}).(principal)
	return p, ok
}

// Role is the role of the request's API token, the same in every project.
func (APIAuth) Role(ctx context.Context, _ string) string {
	p, _ := principalOf(ctx)
	return p.role
}

// IsAdmin reports whether the request's API token is an admin's.
func (APIAuth) IsAdmin(ctx context.Context) bool {
	p, _ := principalOf(ctx)
	return p.role == RoleAdmin
}

// CheckCSRF admits a request with a bearer token, or one from this
// origin whose form carries the cookie's token.
func (APIAuth) CheckCSRF(r *http.Request) error {
	p, ok := principalOf(r.Context())
	if !ok {
		return core.E(core.KindUnauthorized, "csrf", "the request was not authenticated")
	}
	if p.bearer {
		return nil
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return core.E(core.KindUnauthorized, "csrf", "the form was sent from another site (%s)", o)
		}
	}
	c, err := r.Cookie(csrfCookie)
	got := r.PostFormValue(CSRFField)
	if err != nil || got == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(got)) != 1 {
		return core.E(core.KindUnauthorized, "csrf", "the form's CSRF token is missing or wrong: reload the page and try again")
	}
	return nil
}

// Session returns the actor and CSRF token of a request APIAuth admitted.
func (APIAuth) Session(ctx context.Context) (actor, csrf string) {
	p, _ := principalOf(ctx)
	return p.actor, p.csrf
}
