package forgetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/deltaci/deltaci/internal/forge"
)

// gitlabDoc is GitLab's documentation of "Set the pipeline status of a
// commit": its parameters and its example answer.
type gitlabDoc struct {
	attrs   map[string]gitlabAttr
	example map[string]any
}

type gitlabAttr struct {
	Name      string   `json:"name"`
	In        string   `json:"in"`
	Type      string   `json:"type"`
	Required  bool     `json:"required"`
	Values    []string `json:"values"`
	MaxLength int      `json:"maxLength"`
}

var (
	gitlabOnce sync.Once
	gitlabData *gitlabDoc
	gitlabErr  error
)

func loadGitLab(t testing.TB) *gitlabDoc {
	t.Helper()
	params := testdata(t, "gitlab-status", "parameters.json")
	example := testdata(t, "gitlab-status", "example-response.json")
	gitlabOnce.Do(func() { gitlabData, gitlabErr = loadGitLabDoc(params, example) })
	if gitlabErr != nil {
		t.Fatalf("forgetest: %v", gitlabErr)
	}
	return gitlabData
}

func loadGitLabDoc(params, example string) (*gitlabDoc, error) {
	var p struct {
		Attributes []gitlabAttr `json:"attributes"`
	}
	if err := readJSON(params, &p); err != nil {
		return nil, err
	}
	d := &gitlabDoc{attrs: map[string]gitlabAttr{}}
	for _, a := range p.Attributes {
		d.attrs[a.Name] = a
	}
	if _, ok := d.attrs["state"]; !ok {
		return nil, fmt.Errorf("%s documents no state", params)
	}
	if err := readJSON(example, &d.example); err != nil {
		return nil, err
	}
	return d, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// check returns the documented parameter set's objections to body, with
// GitLab's answer to the first: 400 with Grape's {"error"} for a missing or
// unknown state, with the model's {"message": {field: [...]}} for a value
// too long.
func (d *gitlabDoc) check(body map[string]any) (problems []string, code int, answer any) {
	for k, v := range body {
		a, ok := d.attrs[k]
		switch {
		case !ok || a.In == "path":
			problems = append(problems, fmt.Sprintf("parameter %q is not documented", k))
		case a.Type == "string":
			if _, ok := v.(string); !ok {
				problems = append(problems, fmt.Sprintf("parameter %q is %T, not a string", k, v))
			}
		case a.Type == "float" || a.Type == "integer":
			if !isNumber(v, a.Type == "integer") {
				problems = append(problems, fmt.Sprintf("parameter %q is not an %s", k, a.Type))
			}
		}
	}
	for _, a := range d.attrs {
		if a.In == "path" {
			continue
		}
		v, present := body[a.Name]
		s, _ := v.(string)
		switch {
		case a.Required && !present:
			problems = append(problems, fmt.Sprintf("%s is missing", a.Name))
			if code == 0 {
				code, answer = 400, map[string]any{"error": a.Name + " is missing"}
			}
		case present && len(a.Values) > 0 && !slices.Contains(a.Values, s):
			problems = append(problems, fmt.Sprintf("%s %q is not one of %v", a.Name, s, a.Values))
			if code == 0 {
				code, answer = 400, map[string]any{"error": a.Name + " does not have a valid value"}
			}
		case a.MaxLength > 0 && utf8.RuneCountInString(s) > a.MaxLength:
			problems = append(problems, fmt.Sprintf("%s has %d characters; GitLab takes %d", a.Name, utf8.RuneCountInString(s), a.MaxLength))
			if code == 0 {
				code, answer = 400, map[string]any{"message": map[string]any{
					a.Name: []string{fmt.Sprintf("is too long (maximum is %d characters)", a.MaxLength)},
				}}
			}
		}
	}
	slices.Sort(problems)
	return problems, code, answer
}

func isNumber(v any, integer bool) bool {
	switch n := v.(type) {
	case float64:
		return !integer || n == float64(int64(n))
	case string: // a form value
		if integer {
			_, err := strconv.ParseInt(n, 10, 64)
			return err == nil
		}
		_, err := strconv.ParseFloat(n, 64)
		return err == nil
	}
	return false
}

// gitlab plays a GitLab instance's /api/v4.
type gitlab struct{ doc *gitlabDoc }

func (*gitlab) root() string { return "/api/v4" }
func (*gitlab) repo() string { return "group/subgroup/project" }

func (*gitlab) errorBody(code int, message string) any {
	return map[string]any{"message": fmt.Sprintf("%d %s", code, message)}
}

func (g *gitlab) serve(s *Server, in *incoming, fail *failure) answer {
	t, r, rec := s.t, in.r, in.rec
	what := r.Method + " " + rec.Path
	segs, ok := apiPath(r, g.root())
	// projects / <id or path, one segment> / statuses / <sha>
	routed := ok && len(segs) == 4 && segs[0] == "projects" && segs[2] == "statuses" && r.Method == http.MethodPost
	if !routed {
		t.Errorf("forgetest: GitLab request %s is not POST /projects/:id/statuses/:sha with :id one URL-encoded segment", what)
	}
	problems, code, refusal := g.doc.check(rec.Body)
	for _, p := range problems {
		t.Errorf("forgetest: GitLab request %s: %s (GitLab's documented parameters)", what, p)
	}
	if fail != nil {
		return s.fail(fail, http.StatusText(fail.code))
	}
	if !routed {
		return answer{code: http.StatusNotFound, body: map[string]any{"error": "404 Not Found"}}
	}
	// GitLab takes a personal, project or group access token in
	// PRIVATE-TOKEN, or as an OAuth bearer token.
	if !s.authorized(r.Header, true, "Bearer") {
		return answer{code: http.StatusUnauthorized, body: map[string]any{"message": "401 Unauthorized"}}
	}
	project, sha := segs[1], segs[3]
	if project != s.Repo {
		return answer{code: http.StatusNotFound, body: map[string]any{"message": "404 Project Not Found"}}
	}
	if code != 0 {
		return answer{code: code, body: refusal}
	}
	if !isHex(sha) {
		return answer{code: http.StatusNotFound, body: map[string]any{"message": "404 Commit Not Found"}}
	}
	str := func(k string) string { v, _ := rec.Body[k].(string); return v }
	name := str("name")
	if name == "" {
		name = str("context")
	}
	if name == "" {
		name = "default"
	}
	state := str("state")
	if msg := s.transition(sha, name, state); msg != "" {
		return answer{code: http.StatusBadRequest, body: map[string]any{"message": msg}}
	}
	st := forge.Status{Context: name, State: gitlabState(state), Description: str("description"), TargetURL: str("target_url")}
	body := copyJSON(g.doc.example)
	now := stamp(time.Now())
	body["id"] = s.id()
	body["sha"] = sha
	body["name"] = name
	body["status"] = state
	body["description"] = nullable(st.Description)
	body["target_url"] = nullable(st.TargetURL)
	body["ref"] = nullable(str("ref"))
	body["coverage"] = nil
	body["created_at"] = now
	body["started_at"], body["finished_at"] = nil, nil
	switch state {
	case "running":
		body["started_at"] = now
	case "success", "failed", "canceled", "skipped":
		body["finished_at"] = now
	}
	return answer{code: http.StatusCreated, body: body, commit: sha, status: &st}
}

// transition moves the job that shows name on sha as GitLab's state
// machine does, or returns GitLab's refusal. GitLab reuses the pending or
// running job of that name, and starts a new one otherwise.
func (s *Server) transition(sha, name, state string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := sha + "\x00" + name
	cur := s.jobs[key]
	if cur != "pending" && cur != "running" {
		cur = "created"
	}
	event := map[string]string{
		"pending": "enqueue", "running": "run", "success": "success",
		"failed": "drop", "canceled": "cancel", "skipped": "skip",
	}[state]
	allowed := map[string][]string{
		"enqueue": {"created"},
		"run":     {"created", "pending"}, // a new job is enqueued first
		"success": {"created", "pending", "running"},
		"drop":    {"created", "pending", "running"},
		"cancel":  {"created", "pending", "running"},
		"skip":    {"created", "pending"},
	}[event]
	if !slices.Contains(allowed, cur) {
		return fmt.Sprintf("Cannot transition status via :%s from :%s (Reason(s): Status cannot transition via %q)", event, cur, event)
	}
	s.jobs[key] = state
	return ""
}

// gitlabState maps GitLab's word back to Delta CI's state.
func gitlabState(s string) forge.State {
	if s == "failed" {
		return forge.Failure
	}
	return forge.State(s)
}
