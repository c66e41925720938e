package api

import (
	"net/http"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/webauth"
)

func roleList(bs []store.RoleBinding) protocol.RoleList {
	out := protocol.RoleList{Roles: make([]protocol.RoleBinding, 0, len(bs))}
	for _, b := range bs {
		out.Roles = append(out.Roles, protocol.RoleBinding{Principal: b.Principal, Role: b.Role, CreatedAt: b.CreatedAt.UTC()})
	}
	return out
}

// projectRoles answers who holds which role on a project in the web UI.
func (s *Server) projectRoles(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.admin(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	if _, err := s.st.Project(r.Context(), name); err != nil {
		return err
	}
	bs, err := s.st.ProjectRoles(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, roleList(bs))
	return nil
}

// updateProjectRoles revokes, then grants, roles on a project. Every
// principal and role is checked before anything is written.
func (s *Server) updateProjectRoles(w http.ResponseWriter, r *http.Request) error {
	who, err := s.admin(r)
	if err != nil {
		return err
	}
	var patch protocol.RolesPatch
	if err := decodeJSON(w, r, false, &patch); err != nil {
		return err
	}
	const op = "project roles"
	if len(patch.Grant) == 0 && len(patch.Revoke) == 0 {
		return core.E(core.KindInvalid, op, "nothing to change: give grant or revoke")
	}
	seen := map[string]bool{}
	principal := func(p string) (string, error) {
		n, err := webauth.ParsePrincipal(p)
		if err != nil {
			return "", core.E(core.KindInvalid, op, "principal %q: %v", p, err)
		}
		if seen[n] {
			return "", core.E(core.KindInvalid, op, "principal %q is named twice", p)
		}
		seen[n] = true
		return n, nil
	}
	revoke := make([]string, len(patch.Revoke))
	for i, p := range patch.Revoke {
		if revoke[i], err = principal(p); err != nil {
			return err
		}
	}
	grant := make([]protocol.RoleBinding, len(patch.Grant))
	for i, g := range patch.Grant {
		if grant[i].Principal, err = principal(g.Principal); err != nil {
			return err
		}
		if !g.CreatedAt.IsZero() {
			return core.E(core.KindInvalid, op, "created_at is set by the server")
		}
		if !webauth.MayRead(g.Role) {
			return core.E(core.KindInvalid, op, "role %q of %s: use admin, maintainer or viewer", g.Role, g.Principal)
		}
		grant[i].Role = g.Role
	}

	s.editMu.Lock()
	defer s.editMu.Unlock()
	ctx, name := r.Context(), r.PathValue("name")
	if _, err := s.st.Project(ctx, name); err != nil {
		return err
	}
	held, err := s.st.ProjectRoles(ctx, name)
	if err != nil {
		return err
	}
	bound := map[string]bool{}
	for _, b := range held {
		bound[b.Principal] = true
	}
	for _, p := range revoke {
		if !bound[p] {
			return core.E(core.KindNotFound, op, "%s has no role on project %q", p, name)
		}
	}
	for _, p := range revoke {
		if err := s.st.RemoveProjectRole(ctx, name, p); err != nil {
			return err
		}
	}
	for _, g := range grant {
		if _, err := s.st.SetProjectRole(ctx, name, g.Principal, g.Role); err != nil {
			return err
		}
	}
	s.log.InfoContext(ctx, "project roles changed", "project", name, "granted", len(grant), "revoked", len(revoke), "actor", who.actor)
	bs, err := s.st.ProjectRoles(ctx, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, roleList(bs))
	return nil
}
