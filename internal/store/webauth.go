package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// RoleBinding gives a principal a role on one project. Principal is an
// e-mail address, "sub:" and an OpenID subject, or "group:" and a group
// name; Role is admin, maintainer or viewer.
type RoleBinding struct {
	Project, Principal, Role string
	CreatedAt                time.Time
}

// WebSession is a signed-in user of the web UI. IDHash is the SHA-256 of
// the id the browser's cookie holds; the id itself is never stored.
type WebSession struct {
	IDHash        string
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	CreatedAt     time.Time
	SeenAt        time.Time // the last request, for the idle expiry
	ExpiresAt     time.Time // the absolute expiry
}

// WebLogin is a login under way, between the redirect to the OpenID
// provider and its callback. StateHash is the SHA-256 of the state.
type WebLogin struct {
	StateHash string
	Nonce     string
	Verifier  string // the PKCE code verifier
	Next      string // the path to return to
	ExpiresAt time.Time
}

// webRoles are the roles a binding may give.
var webRoles = map[string]bool{"admin": true, "maintainer": true, "viewer": true}

// SetProjectRole gives principal role on project, replacing the role it
// had. It returns core.KindInvalid for an empty principal or a role other
// than admin, maintainer or viewer, and core.KindNotFound when there is no
// such project.
func (s *Store) SetProjectRole(ctx context.Context, project, principal, role string) (RoleBinding, error) {
	if principal == "" {
		return RoleBinding{}, core.E(core.KindInvalid, "set project role", "a principal is required")
	}
	if !webRoles[role] {
		return RoleBinding{}, core.E(core.KindInvalid, "set project role", "role %q: use admin, maintainer or viewer", role)
	}
	b := RoleBinding{Project: project, Principal: principal, Role: role, CreatedAt: s.Now()}
	err := s.drv.Write(ctx, func(q Queries) error {
		if _, err := q.GetProject(ctx, project); err != nil {
			if core.KindOf(err) == core.KindNotFound {
				return core.E(core.KindNotFound, "set project role", "no project %q", project)
			}
			return err
		}
		return q.UpsertProjectRole(ctx, b)
	})
	if err != nil {
		return RoleBinding{}, err
	}
	return b, nil
}

// RemoveProjectRole takes principal's role on project away. It returns
// core.KindNotFound when the principal had none there.
func (s *Store) RemoveProjectRole(ctx context.Context, project, principal string) error {
	var ok bool
	err := s.drv.Write(ctx, func(q Queries) error {
		var err error
		ok, err = q.DeleteProjectRole(ctx, project, principal)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove project role: %w", err)
	}
	if !ok {
		return core.E(core.KindNotFound, "remove project role", "%s has no role on project %q", principal, project)
	}
	return nil
}

// ProjectRoles returns a project's role bindings by principal, an empty
// slice when it has none (or there is no such project).
func (s *Store) ProjectRoles(ctx context.Context, project string) ([]RoleBinding, error) {
	return s.drv.Read().ListProjectRoles(ctx, project)
}

// CreateWebSession records a new session. It returns core.KindInvalid
// without an IDHash or a Subject, and core.KindConflict when the hash is
// taken.
func (s *Store) CreateWebSession(ctx context.Context, ws WebSession) error {
	if ws.IDHash == "" || ws.Subject == "" {
		return core.E(core.KindInvalid, "create web session", "a session needs an id hash and a subject")
	}
	if ws.Groups == nil {
		ws.Groups = []string{}
	}
	return s.drv.Write(ctx, func(q Queries) error { return q.InsertWebSession(ctx, ws) })
}

// WebSession returns the session whose id hashes to idHash, or a
// core.KindNotFound error. It does not check expiry: the caller does.
func (s *Store) WebSession(ctx context.Context, idHash string) (WebSession, error) {
	ws, err := s.drv.Read().GetWebSession(ctx, idHash)
	if core.KindOf(err) == core.KindNotFound {
		// The hash stands in for a credential: not repeated in errors.
		return WebSession{}, core.E(core.KindNotFound, "web session", "no such session")
	}
	return ws, err
}

// TouchWebSession moves a session's last request to at, unless it is
// later already.
func (s *Store) TouchWebSession(ctx context.Context, idHash string, at time.Time) error {
	return s.drv.Write(ctx, func(q Queries) error { return q.TouchWebSession(ctx, idHash, at) })
}

// DeleteWebSession forgets a session; an unknown one is no error, as
// signing out twice is signing out.
func (s *Store) DeleteWebSession(ctx context.Context, idHash string) error {
	return s.drv.Write(ctx, func(q Queries) error { return q.DeleteWebSession(ctx, idHash) })
}

// PruneWebAuth deletes sessions past their absolute expiry at now or idle
// since before idleBefore, and logins past their expiry, and says how many
// of each went.
func (s *Store) PruneWebAuth(ctx context.Context, now, idleBefore time.Time) (sessions, logins int64, err error) {
	err = s.drv.Write(ctx, func(q Queries) error {
		var err error
		if sessions, err = q.PruneWebSessions(ctx, now, idleBefore); err != nil {
			return err
		}
		logins, err = q.PruneWebLogins(ctx, now)
		return err
	})
	return sessions, logins, err
}

// CreateWebLogin records a login under way. It returns core.KindInvalid
// without a StateHash, Nonce or Verifier.
func (s *Store) CreateWebLogin(ctx context.Context, l WebLogin) error {
	if l.StateHash == "" || l.Nonce == "" || l.Verifier == "" {
		return core.E(core.KindInvalid, "create web login", "a login needs a state hash, a nonce and a verifier")
	}
	return s.drv.Write(ctx, func(q Queries) error { return q.InsertWebLogin(ctx, l) })
}

// TakeWebLogin removes and returns the login whose state hashes to
// stateHash, so that each is used once, or returns core.KindNotFound. It
// does not check expiry: the caller does.
func (s *Store) TakeWebLogin(ctx context.Context, stateHash string) (WebLogin, error) {
	var l WebLogin
	err := s.drv.Write(ctx, func(q Queries) error {
		var err error
		l, err = q.TakeWebLogin(ctx, stateHash)
		return err
	})
	if core.KindOf(err) == core.KindNotFound {
		return WebLogin{}, core.E(core.KindNotFound, "web login", "no such login under way")
	}
	return l, err
}

// EncodeGroups is the stored form of a session's groups: a JSON array.
func EncodeGroups(groups []string) string {
	if groups == nil {
		groups = []string{}
	}
	b, _ := json.Marshal(groups) // a []string always encodes
	return string(b)
}

// DecodeGroups reads back what EncodeGroups wrote.
func DecodeGroups(s string) ([]string, error) {
	var g []string
	if err := json.Unmarshal([]byte(s), &g); err != nil {
		return nil, core.Wrap(core.KindInternal, "decode web session groups", err)
	}
	if g == nil {
		g = []string{}
	}
	return g, nil
}
