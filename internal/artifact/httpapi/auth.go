package httpapi

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// Principal is who a request acts for: the actor its writes record in the
// event log, and what it may do.
type Principal struct {
	// Name is the actor: "token:<name>", "token:configured" or "anonymous".
	Name string
	// Scopes are the namespaces and roles it may act in.
	Scopes eventlog.Scopes
}

// allScopes is every right: an admin on every namespace.
var allScopes = eventlog.Scopes{{Namespace: eventlog.AllNamespaces, Role: eventlog.RoleAdmin}}

// Anonymous is the principal of requests a server without authentication
// serves: a development server started with AllowAnonymous, or this API
// mounted behind a server that authenticates requests itself and did not
// name the caller.
var Anonymous = Principal{Name: "anonymous", Scopes: allScopes}

// Authenticator turns a request's credential into its principal.
type Authenticator interface {
	// Authenticate returns the principal of r. A missing, unknown or
	// revoked credential is core.KindUnauthorized (401); a failure to
	// check one, such as the database being down, keeps its own kind.
	Authenticate(r *http.Request) (Principal, error)
}

// TokenAuth authenticates the bearer tokens of a standalone store: the
// tokens it keeps (hashed, each with its scopes, see eventlog.Token) and
// an optional configured admin token.
type TokenAuth struct {
	// Meta holds the tokens.
	Meta *eventlog.Store
	// Configured, when set, is accepted as an admin token on every
	// namespace (the principal "token:configured"). It is compared in
	// constant time and never stored.
	Configured string
	// AllowAnonymous serves a request without a token as Anonymous, an
	// admin on every namespace. A token that is sent is still checked.
	// For development, on a loopback address only.
	AllowAnonymous bool
}

// Authenticate implements Authenticator.
func (a *TokenAuth) Authenticate(r *http.Request) (Principal, error) {
	tok := bearer(r)
	switch {
	case tok == "" && a.AllowAnonymous:
		return Anonymous, nil
	case tok == "":
		return Principal{}, core.E(core.KindUnauthorized, "api token",
			"send an API token as Authorization: Bearer (the server printed its first admin token when it first started; make others with `artifactstore tokens create`)")
	case a.Configured != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.Configured)) == 1:
		return Principal{Name: "token:" + eventlog.ConfiguredTokenName, Scopes: allScopes}, nil
	}
	t, err := a.Meta.Authenticate(r.Context(), tok)
	if err != nil {
		return Principal{}, err
	}
	return Principal{Name: t.Principal(), Scopes: t.Scopes}, nil
}

// bearer returns the request's bearer token, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// principalKey keys a request's principal in its context.
type principalKey struct{}

// WithActor returns r carrying actor as who performs it, with every right:
// a server that mounts this API behind its own authentication and
// authorization (deltaci server) names its caller so. The request is then
// neither authenticated nor authorized again here.
func WithActor(r *http.Request, actor string) *http.Request {
	return withPrincipal(r, Principal{Name: actor, Scopes: allScopes})
}

func withPrincipal(r *http.Request, p Principal) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
}

func principalOf(r *http.Request) (Principal, bool) {
	p, ok := r.Context().Value(principalKey{}).(Principal)
	return p, ok
}

// actor returns who performs a write: the request's principal. Only the
// credential decides it; an X-Actor header is ignored.
func actor(r *http.Request) (string, error) {
	if p, ok := principalOf(r); ok {
		return p.Name, nil
	}
	return Anonymous.Name, nil
}

// access says what a route asks of the caller: a role in a namespace.
// The namespace is "" when any namespace will do (blobs and manifests
// belong to none), or eventlog.AllNamespaces for what spans them all.
type access func(r *http.Request) (namespace string, role eventlog.Role)

// public marks the routes anyone may call: health, metrics and the
// OpenAPI document.
var public access

// anyNamespace asks for role in some namespace.
func anyNamespace(role eventlog.Role) access {
	return func(*http.Request) (string, eventlog.Role) { return "", role }
}

// everyNamespace asks for role on "*".
func everyNamespace(role eventlog.Role) access {
	return func(*http.Request) (string, eventlog.Role) { return eventlog.AllNamespaces, role }
}

// pathNamespace asks for role in the namespace of the path.
func pathNamespace(role eventlog.Role) access {
	return func(r *http.Request) (string, eventlog.Role) { return r.PathValue("namespace"), role }
}

// queryNamespace asks for role in ?namespace=, or on "*" without it.
func queryNamespace(role eventlog.Role) access {
	return func(r *http.Request) (string, eventlog.Role) {
		if ns := r.URL.Query().Get("namespace"); ns != "" {
			return ns, role
		}
		return eventlog.AllNamespaces, role
	}
}

// retentionApply asks for admin, or only read for a dry run, which
// changes nothing.
func retentionApply(r *http.Request) (string, eventlog.Role) {
	role := eventlog.RoleAdmin
	if dry, err := strconv.ParseBool(r.URL.Query().Get("dry_run")); err == nil && dry {
		role = eventlog.RoleRead
	}
	return queryNamespace(role)(r)
}

// admit authenticates r and checks that its principal may do what need
// asks. A request a mounting server named (WithActor) is admitted as it
// is; without an Authenticator every request is Anonymous.
func (s *server) admit(r *http.Request, need access) (*http.Request, error) {
	if need == nil {
		return r, nil
	}
	if _, ok := principalOf(r); ok {
		return r, nil
	}
	if s.auth == nil {
		return withPrincipal(r, Anonymous), nil
	}
	p, err := s.auth.Authenticate(r)
	if err != nil {
		if core.KindOf(err) == core.KindUnauthorized {
			s.metrics.authFailed("unauthorized")
		}
		return nil, err
	}
	ns, role := need(r)
	ok := p.Scopes.Allows(ns, role)
	if ns == "" {
		ok = p.Scopes.AllowsAny(role)
	}
	if !ok {
		s.metrics.authFailed("forbidden")
		return nil, &ForbiddenError{Principal: p.Name, Namespace: ns, Role: role, Scopes: p.Scopes}
	}
	return withPrincipal(r, p), nil
}

// ForbiddenError is a request whose credential is valid but whose scopes
// do not allow it: 403 with the code forbidden. It is a
// core.KindUnauthorized error; the Client rebuilds it from the details.
type ForbiddenError struct {
	Principal string
	// Namespace is what the request needed Role in: "" for any namespace,
	// eventlog.AllNamespaces for every one.
	Namespace string
	Role      eventlog.Role
	// Scopes are the ones the principal has.
	Scopes eventlog.Scopes
}

func (e *ForbiddenError) Error() string {
	var need string
	switch e.Namespace {
	case "":
		need = fmt.Sprintf("%s on some namespace", e.Role)
	case eventlog.AllNamespaces:
		need = fmt.Sprintf("%s on every namespace (%s)", e.Role, eventlog.Scope{Namespace: e.Namespace, Role: e.Role})
	default:
		need = fmt.Sprintf("%s on namespace %q (%s)", e.Role, e.Namespace, eventlog.Scope{Namespace: e.Namespace, Role: e.Role})
	}
	return fmt.Sprintf("%s may not do this: it needs %s, and its scopes are %s", e.Principal, need, e.Scopes)
}

// Unwrap classifies the error as unauthorized.
func (e *ForbiddenError) Unwrap() error { return &core.Error{Kind: core.KindUnauthorized} }
