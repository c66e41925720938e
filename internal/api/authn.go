package api

import (
	"crypto/subtle"
	"net/http"
	"strings"

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

// user admits a caller of the run API: anybody when no API token is
// configured, else only its holder.
func (s *Server) user(r *http.Request) error {
	if s.cfg.APIToken == "" || s.isAPIToken(bearer(r)) {
		return nil
	}
	return core.E(core.KindUnauthorized, "api token", "this server requires its API token as Authorization: Bearer")
}

// attemptReader admits a reader of one attempt's log: a user, the runner
// holding it (session) or its job token.
func (s *Server) attemptReader(r *http.Request, attemptID string) error {
	if s.user(r) == nil {
		return nil
	}
	tok := bearer(r)
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
// itself, when the attempt completes.
func (s *Server) storeScope(next http.Handler) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		tok := bearer(r)
		if s.user(r) == nil && (s.cfg.APIToken != "" || tok == "") {
			next.ServeHTTP(w, r)
			return nil
		}
		var subject string
		if c, err := s.verify(r.Context(), tok, auth.AudienceJob); err == nil {
			subject = c.Subject
		} else if c, err := s.verify(r.Context(), tok, auth.AudienceRunner); err == nil {
			subject = c.Subject
		} else if s.cfg.APIToken != "" {
			return core.E(core.KindUnauthorized, "artifact store", "send an API token, or a runner's session or job token")
		} else {
			return err // a bad token is refused even where none is needed
		}
		if !runnerMayStore(r) {
			return &forbidden{msg: "runner tokens may read the store, upload blobs and put manifests, not " + r.Method + " " + r.URL.Path}
		}
		r.Header.Set("X-Actor", "runner:"+subject)
		next.ServeHTTP(w, r)
		return nil
	})
}

func runnerMayStore(r *http.Request) bool {
	p := strings.TrimPrefix(r.URL.Path, "/api/v1/")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPost:
		return p == "blobs/uploads" || p == "blobs/find-missing"
	case http.MethodPatch, http.MethodPut, http.MethodDelete:
		return strings.HasPrefix(p, "blobs/uploads/") || (r.Method == http.MethodPut && strings.HasPrefix(p, "manifests/"))
	}
	return false
}
