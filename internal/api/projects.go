package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/protocol"
)

func projectBody(p core.Project) protocol.Project {
	orEmpty := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	out := protocol.Project{
		Name: p.Name, RepoURL: p.RepoURL, DefaultBranch: p.DefaultBranch,
		ProtectedBranches: orEmpty(p.Protected), Secrets: orEmpty(p.Secrets),
		UntrustedNetwork: p.UntrustedNetwork, Labels: orEmpty(p.Labels), Public: p.Public,
		CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
	}
	if f := p.Forge; f.Kind != "" {
		out.Forge = &protocol.ProjectForge{
			Kind: f.Kind, APIURL: f.APIURL, Repo: f.Repo, TokenSecret: f.TokenSecret, KeepSuperseded: f.KeepSuperseded,
		}
	}
	return out
}

// withForge sets p's forge from the API's form. The webhook secret stays
// while the forge kind does; a new kind gets a new one.
func withForge(p core.Project, f *protocol.ProjectForge) (core.Project, error) {
	if f == nil || f.Kind == "" {
		if f != nil && *f != (protocol.ProjectForge{}) {
			return p, core.E(core.KindInvalid, "project", "forge settings need a forge kind (one of %s)", strings.Join(core.ForgeKinds, ", "))
		}
		p.Forge = core.ProjectForge{}
		return p, nil
	}
	secret := p.Forge.HookSecret
	if p.Forge.Kind != f.Kind || secret == "" {
		var err error
		if secret, err = newHookSecret(); err != nil {
			return p, err
		}
	}
	p.Forge = core.ProjectForge{
		Kind: f.Kind, APIURL: f.APIURL, Repo: f.Repo, TokenSecret: f.TokenSecret, HookSecret: secret, KeepSuperseded: f.KeepSuperseded,
	}
	return p, nil
}

// newHookSecret makes a webhook secret: 32 random bytes in hex.
func newHookSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", core.Wrap(core.KindInternal, "make webhook secret", err)
	}
	return hex.EncodeToString(b), nil
}

// checkRepoURL refuses a clone URL the server would not fetch: a transport
// git must not use (remote helpers such as ext:: or fd::), or a relative
// path, which would depend on the server's working directory.
func checkRepoURL(url string) error {
	_, err := gitx.Transport(url)
	return err
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.user(r); err != nil {
		return err
	}
	ps, err := s.st.Projects(r.Context())
	if err != nil {
		return err
	}
	out := protocol.ProjectList{Projects: make([]protocol.Project, 0, len(ps))}
	for _, p := range ps {
		out.Projects = append(out.Projects, projectBody(p))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.user(r); err != nil {
		return err
	}
	p, err := s.st.Project(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, projectBody(p))
	return nil
}

func (s *Server) addProject(w http.ResponseWriter, r *http.Request) error {
	who, err := s.admin(r)
	if err != nil {
		return err
	}
	var req protocol.Project
	if err := decodeJSON(w, r, false, &req); err != nil {
		return err
	}
	if !req.CreatedAt.IsZero() || !req.UpdatedAt.IsZero() {
		return core.E(core.KindInvalid, "add project", "created_at and updated_at are set by the server")
	}
	if err := checkRepoURL(req.RepoURL); err != nil {
		return err
	}
	p, err := withForge(core.Project{
		Name: req.Name, RepoURL: req.RepoURL, DefaultBranch: req.DefaultBranch, Protected: req.ProtectedBranches,
		Secrets: req.Secrets, UntrustedNetwork: req.UntrustedNetwork, Labels: req.Labels, Public: req.Public,
	}, req.Forge)
	if err != nil {
		return err
	}
	if p, err = s.st.CreateProject(r.Context(), p); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "project added", "project", p.Name, "repo", p.RepoURL, "actor", who.actor)
	writeJSON(w, http.StatusCreated, projectBody(p))
	return nil
}

func (s *Server) updateProject(w http.ResponseWriter, r *http.Request) error {
	who, err := s.admin(r)
	if err != nil {
		return err
	}
	var patch protocol.ProjectPatch
	if err := decodeJSON(w, r, false, &patch); err != nil {
		return err
	}
	// A patch is read, changed and written: one at a time.
	s.editMu.Lock()
	defer s.editMu.Unlock()
	p, err := s.st.Project(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if patch.RepoURL != nil {
		if err := checkRepoURL(*patch.RepoURL); err != nil {
			return err
		}
		p.RepoURL = *patch.RepoURL
	}
	if patch.DefaultBranch != nil {
		p.DefaultBranch = *patch.DefaultBranch
	}
	if patch.ProtectedBranches != nil {
		p.Protected = *patch.ProtectedBranches
	}
	if patch.Secrets != nil {
		p.Secrets = *patch.Secrets
	}
	if patch.UntrustedNetwork != nil {
		p.UntrustedNetwork = *patch.UntrustedNetwork
	}
	if patch.Labels != nil {
		p.Labels = *patch.Labels
	}
	if patch.Public != nil {
		p.Public = *patch.Public
	}
	if patch.Forge != nil {
		if p, err = withForge(p, patch.Forge); err != nil {
			return err
		}
	}
	if p, err = s.st.UpdateProject(r.Context(), p); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "project changed", "project", p.Name, "actor", who.actor)
	writeJSON(w, http.StatusOK, projectBody(p))
	return nil
}

func (s *Server) removeProject(w http.ResponseWriter, r *http.Request) error {
	who, err := s.admin(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := s.st.RemoveProject(r.Context(), name); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "project removed", "project", name, "actor", who.actor)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// keyedMutex is a mutex per key (a project's name): planning one project
// never waits on another's fetch.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int           // holders and waiters; the entry goes at zero
}

// lock takes key's mutex, or gives up when ctx ends, and returns its
// unlock.
func (k *keyedMutex) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
