package forgetest

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// gitea plays a Gitea or Forgejo instance's /api/v1.
type gitea struct{}

func (*gitea) root() string { return "/api/v1" }
func (*gitea) repo() string { return "owner/repo" }

// The states Gitea's API takes (CommitStatusState).
var giteaStates = []string{"pending", "success", "error", "failure", "warning"}

func (*gitea) errorBody(code int, message string) any {
	return map[string]any{"message": message, "url": "/api/swagger"}
}

func (g *gitea) serve(s *Server, in *incoming, fail *failure) answer {
	t, r, rec := s.t, in.r, in.rec
	what := r.Method + " " + rec.Path
	segs, ok := apiPath(r, g.root())
	routed := ok && len(segs) == 5 && segs[0] == "repos" && segs[3] == "statuses" && r.Method == http.MethodPost
	if !routed {
		t.Errorf("forgetest: Gitea request %s is not POST /repos/{owner}/{repo}/statuses/{sha}", what)
	}
	state, _ := rec.Body["state"].(string)
	if !slices.Contains(giteaStates, state) {
		t.Errorf("forgetest: Gitea request %s has state %q, not one of %v", what, state, giteaStates)
	}
	if fail != nil {
		return s.fail(fail, http.StatusText(fail.code))
	}
	if !routed {
		return answer{code: http.StatusNotFound, body: g.errorBody(404, "not found")}
	}
	if !s.authorized(r.Header, false, "token", "Bearer") {
		return answer{code: http.StatusUnauthorized, body: g.errorBody(401, "user does not exist")}
	}
	if !strings.EqualFold(segs[1]+"/"+segs[2], s.Repo) {
		return answer{code: http.StatusNotFound, body: g.errorBody(404, "The target couldn't be found.")}
	}
	sha := segs[4]
	if !isHex(sha) {
		return answer{code: http.StatusUnprocessableEntity, body: g.errorBody(422, "invalid sha")}
	}
	if !slices.Contains(giteaStates, state) {
		return answer{code: http.StatusUnprocessableEntity, body: g.errorBody(422, "invalid state")}
	}
	st := fourStateStatus(rec.Body)
	id := s.id()
	now := time.Now().UTC().Format(time.RFC3339)
	body := map[string]any{
		"id":          id,
		"status":      state,
		"target_url":  st.TargetURL,
		"description": st.Description,
		"url":         s.APIURL() + "/repos/" + s.Repo + "/statuses/" + sha,
		"context":     st.Context,
		"creator":     map[string]any{"id": 1, "login": "deltaci", "full_name": "", "email": "deltaci@noreply.localhost"},
		"created_at":  now,
		"updated_at":  now,
	}
	return answer{code: http.StatusCreated, body: body, commit: sha, status: &st}
}
