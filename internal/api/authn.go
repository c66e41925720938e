package api

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"

	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/core"
)

// bearer returns the request's bearer token, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// runner checks the runner session token of r and returns its claims:
// Subject is the runner id, Labels its labels.
func (s *Server) runner(r *http.Request) (auth.Claims, error) {
	tok := bearer(r)
	if tok == "" {
		return auth.Claims{}, core.E(core.KindUnauthorized, "runner session", "send the runner session token as Authorization: Bearer")
	}
	return s.verify(r.Context(), tok, auth.AudienceRunner)
}

// isAPIToken reports whether tok is the configured API token.
func (s *Server) isAPIToken(tok string) bool {
	return s.cfg.APIToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.APIToken)) == 1
}

// principal is who a request of the run API acts for: its actor is what
// events and the artifact store's audit trail record.
type principal struct {
	actor string
	role  string
}

// user authenticates a caller of the run API by its API token: the
// configured one, or one the server made (stored hashed). Without a token
// it is refused, unless the server runs with InsecureNoAuth.
func (s *Server) user(r *http.Request) (principal, error) {
	tok := bearer(r)
	switch {
	case tok == "" && s.cfg.InsecureNoAuth:
		return principal{actor: "anonymous", role: auth.RoleAdmin}, nil
	case tok == "":
		return principal{}, s.authFailed(r, "api", core.E(core.KindUnauthorized, "api token",
			"send an API token as Authorization: Bearer (the server printed its first admin token when it first started)"))
	case s.isAPIToken(tok):
		return principal{actor: "token:configured", role: auth.RoleAdmin}, nil
	case strings.HasPrefix(tok, auth.APITokenPrefix):
		t, err := s.st.APITokenByHash(r.Context(), auth.HashCredential(tok))
		if err == nil {
			return principal{actor: "token:" + t.Name, role: t.Role}, nil
		}
		if core.KindOf(err) != core.KindNotFound {
			return principal{}, err
		}
	}
	// A bad token is refused even where none is needed.
	return principal{}, s.authFailed(r, "api", core.E(core.KindUnauthorized, "api token", "this API token is not known to the server"))
}

// admin authenticates a caller who must be an administrator.
func (s *Server) admin(r *http.Request) (principal, error) {
	p, err := s.user(r)
	if err == nil && p.role != auth.RoleAdmin {
		err = &forbidden{msg: "this needs an admin API token"}
	}
	return p, err
}

// runStarter authenticates a caller who may start and cancel runs.
func (s *Server) runStarter(r *http.Request) (principal, error) {
	p, err := s.user(r)
	if err == nil && !auth.MayRun(p.role) {
		err = &forbidden{msg: "starting and canceling runs needs a maintainer or admin API token"}
	}
	return p, err
}

// authFailed counts and logs a refused credential, with the address it
// came from, and returns err. Registration and sessions are rate-limited,
// so their failures are WARN lines; the API's are not, and a flood of them
// must not flood the log: DEBUG, and the metric counts them.
func (s *Server) authFailed(r *http.Request, endpoint string, err error) error {
	s.metrics.AuthFailures.WithLabelValues(endpoint).Inc()
	level := slog.LevelDebug
	if endpoint == "register" || endpoint == "session" {
		level = slog.LevelWarn
	}
	s.log.Log(r.Context(), level, "authentication failed", "endpoint", endpoint, "remote_addr", sourceAddr(r),
		"method", r.Method, "path", r.URL.Path, "err", err)
	return err
}

// attemptReader admits a reader of one attempt's log: a user, the runner
// holding it (session) or its job token.
func (s *Server) attemptReader(r *http.Request, attemptID string) error {
	tok := bearer(r)
	if !isJWT(tok) || s.isAPIToken(tok) {
		_, err := s.user(r)
		return err
	}
	if c, err := s.cfg.Keys.VerifyJob(tok, attemptID); err == nil && s.checkRunner(r.Context(), c.Subject) == nil {
		return nil
	}
	if c, err := s.verify(r.Context(), tok, auth.AudienceRunner); err == nil {
		// A runner reads the logs of its own attempts only.
		if a, err := s.st.Attempt(r.Context(), attemptID); err == nil && a.RunnerID == c.Subject {
			return nil
		}
		return &forbidden{msg: "a runner may read only the logs of attempts leased to it"}
	}
	return core.E(core.KindUnauthorized, "read log", "send an API token, or the runner's session or job token")
}

// sessionRunner admits a runner's session token and returns the runner's
// id; the write's fence then checks the attempt is leased to it.
func (s *Server) sessionRunner(r *http.Request) (string, error) {
	tok := bearer(r)
	if tok == "" {
		return "", core.E(core.KindUnauthorized, "attempt write", "send the runner session token as Authorization: Bearer")
	}
	c, err := s.verify(r.Context(), tok, auth.AudienceRunner)
	if err != nil {
		return "", err
	}
	return c.Subject, nil
}

// attemptWriter admits a runner write on an attempt: the runner's session
// token or, where jobToken is set, the attempt's job token. It returns the
// runner id and, when it had to read it (a session token), the attempt. A
// token for another attempt or another runner is refused; the lease token
// fences the write itself.
func (s *Server) attemptWriter(r *http.Request, attemptID string, jobToken bool) (string, *core.Attempt, error) {
	tok := bearer(r)
	if tok == "" {
		return "", nil, core.E(core.KindUnauthorized, "attempt write", "send the runner session token as Authorization: Bearer")
	}
	if jobToken {
		if c, err := s.verify(r.Context(), tok, auth.AudienceJob); err == nil {
			if subtle.ConstantTimeCompare([]byte(c.AttemptID), []byte(attemptID)) != 1 {
				return "", nil, &forbidden{msg: "this job token is for another attempt"}
			}
			return c.Subject, nil, nil
		}
	}
	c, err := s.verify(r.Context(), tok, auth.AudienceRunner)
	if err != nil {
		return "", nil, err
	}
	a, err := s.st.Attempt(r.Context(), attemptID)
	if err != nil {
		return "", nil, err
	}
	if a.RunnerID != c.Subject {
		return "", nil, core.E(core.KindLeaseLost, "attempt write", "attempt %s is not leased to runner %s", attemptID, c.Subject)
	}
	return c.Subject, &a, nil
}

// storeScope guards the artifact store API mounted at StorePrefix. Users
// may do anything. Runners (session or job token) may read, upload blobs
// and put manifests, which are content-addressed and harmless, but not
// move refs, retention or GC: the server records an attempt's outputs
// itself, when the attempt completes. The actor the store records is the
// authenticated caller; an X-Actor header is ignored.
func (s *Server) storeScope(next http.Handler) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		r.Header.Del("X-Actor")
		tok := bearer(r)
		if !isJWT(tok) || s.isAPIToken(tok) {
			p, err := s.user(r)
			if err != nil {
				return err
			}
			next.ServeHTTP(w, httpapi.WithActor(r, p.actor))
			return nil
		}
		var subject string
		if c, err := s.verify(r.Context(), tok, auth.AudienceJob); err == nil {
			subject = c.Subject
		} else if c, err := s.verify(r.Context(), tok, auth.AudienceRunner); err == nil {
			subject = c.Subject
		} else {
			return s.authFailed(r, "store", err)
		}
		if !runnerMayStore(r) {
			return &forbidden{msg: "runner tokens may read the store, upload blobs, put manifests and hold GC leases, not " + r.Method + " " + r.URL.Path}
		}
		next.ServeHTTP(w, httpapi.WithActor(r, "runner:"+subject))
		return nil
	})
}

// isJWT reports whether tok has the shape of a runner's session or job
// token (three dot-separated parts), as API tokens never do.
func isJWT(tok string) bool { return strings.Count(tok, ".") == 2 }

func runnerMayStore(r *http.Request) bool {
	p := strings.TrimPrefix(r.URL.Path, "/api/v1/")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPost:
		// gc/leases: a push keeps what it uploads from GC while it runs.
		return p == "blobs/uploads" || p == "blobs/find-missing" || p == "gc/leases"
	case http.MethodPatch, http.MethodPut, http.MethodDelete:
		return strings.HasPrefix(p, "blobs/uploads/") || (r.Method == http.MethodPut && strings.HasPrefix(p, "manifests/")) ||
			(r.Method != http.MethodPatch && strings.HasPrefix(p, "gc/leases/"))
	}
	return false
}
