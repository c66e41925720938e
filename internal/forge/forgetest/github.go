package forgetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/deltaci/deltaci/internal/forge"
)

// githubSpecPath is the slice of GitHub's REST API description the server
// checks requests against, below the forge package's testdata folder.
var githubSpecPath = []string{"github-openapi", "statuses.json"}

// githubSpec is the loaded description, shared by every GitHub Server.
type githubSpec struct {
	doc     *openapi3.T
	router  routers.Router
	example map[string]any // the 201 answer's example
}

var (
	githubOnce sync.Once
	githubDoc  *githubSpec
	githubErr  error
)

// loadGitHub loads the description once per test binary.
func loadGitHub(t testing.TB) *githubSpec {
	t.Helper()
	path := testdata(t, githubSpecPath...)
	githubOnce.Do(func() { githubDoc, githubErr = loadGitHubSpec(path) })
	if githubErr != nil {
		t.Fatalf("forgetest: %v", githubErr)
	}
	return githubDoc
}

// loadGitHubSpec loads and validates the GitHub description at path, and
// makes a router of it that matches paths on any host (the description's
// server is api.github.com).
func loadGitHubSpec(path string) (*githubSpec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("%s is not a valid OpenAPI document: %w", path, err)
	}
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", path, err)
	}
	spec := &githubSpec{doc: doc, router: router}
	if ex := doc.Components.Examples["status"]; ex != nil && ex.Value != nil {
		spec.example, _ = ex.Value.Value.(map[string]any)
	}
	if spec.example == nil {
		return nil, fmt.Errorf("%s has no example status answer", path)
	}
	return spec, nil
}

// validate checks r against the description: an error says what GitHub's
// contract refuses. The input is nil when no operation matches r.
func (g *githubSpec) validate(r *http.Request) (*openapi3filter.RequestValidationInput, error) {
	route, params, err := g.router.FindRoute(r)
	if err != nil {
		return nil, fmt.Errorf("no operation for %s %s: %w", r.Method, r.URL.EscapedPath(), err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	return in, openapi3filter.ValidateRequest(r.Context(), in)
}

// github plays api.github.com.
type github struct{ spec *githubSpec }

func (*github) root() string { return "" }
func (*github) repo() string { return "octo-org/hello-world" }

// GitHub's limit on a description; its OpenAPI description does not say
// it, its answer does.
const githubMaxDescription = 140

func (*github) errorBody(code int, message string) any {
	return map[string]any{
		"message":           message,
		"documentation_url": "https://docs.github.com/rest/commits/statuses#create-a-commit-status",
		"status":            fmt.Sprint(code),
	}
}

func (g *github) serve(s *Server, in *incoming, fail *failure) answer {
	t, r, rec := s.t, in.r, in.rec
	what := r.Method + " " + rec.Path
	vin, err := g.spec.validate(in.request())
	if err != nil {
		t.Errorf("forgetest: GitHub request %s does not match GitHub's OpenAPI description: %v", what, err)
	}
	if r.UserAgent() == "" {
		t.Errorf("forgetest: GitHub request %s has no User-Agent, which GitHub refuses", what)
	}
	if fail != nil {
		return s.fail(fail, http.StatusText(fail.code))
	}
	if r.UserAgent() == "" {
		return answer{code: http.StatusForbidden, body: g.errorBody(403, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header")}
	}
	if vin == nil {
		return answer{code: http.StatusNotFound, body: g.errorBody(404, "Not Found")}
	}
	if !s.authorized(r.Header, false, "Bearer", "token") {
		return answer{code: http.StatusUnauthorized, body: g.errorBody(401, "Bad credentials")}
	}
	owner, repo, sha := vin.PathParams["owner"], vin.PathParams["repo"], vin.PathParams["sha"]
	owner, _ = url.PathUnescape(owner)
	repo, _ = url.PathUnescape(repo)
	if !strings.EqualFold(owner+"/"+repo, s.Repo) {
		return answer{code: http.StatusNotFound, body: g.errorBody(404, "Not Found")}
	}
	if err != nil {
		return answer{code: http.StatusUnprocessableEntity, body: g.errorBody(422, "Invalid request.\n\n"+err.Error())}
	}
	if !isHex(sha) {
		return answer{code: http.StatusUnprocessableEntity, body: g.errorBody(422, "No commit found for SHA: "+sha)}
	}
	st := fourStateStatus(rec.Body)
	if n := utf8.RuneCountInString(st.Description); n > githubMaxDescription {
		t.Errorf("forgetest: GitHub request %s has a description of %d characters; GitHub takes %d", what, n, githubMaxDescription)
		body := g.errorBody(422, "Validation Failed").(map[string]any)
		body["errors"] = []any{map[string]any{
			"resource": "Status", "code": "custom", "field": "description",
			"message": fmt.Sprintf("description is too long (maximum is %d characters)", githubMaxDescription),
		}}
		return answer{code: http.StatusUnprocessableEntity, body: body}
	}
	if st.Context == "" {
		st.Context = "default"
	}
	return g.created(s, vin, sha, st)
}

// created answers 201 with the description's example, filled in, and
// checks that answer against the description too.
func (g *github) created(s *Server, vin *openapi3filter.RequestValidationInput, sha string, st forge.Status) answer {
	body := copyJSON(g.spec.example)
	id := s.id()
	now := stamp(time.Now())
	self := s.APIURL() + "/repos/" + s.Repo + "/statuses/" + sha
	body["id"] = id
	body["node_id"] = fmt.Sprintf("SC_forgetest%d", id)
	body["url"] = self
	body["state"] = string(st.State)
	body["description"] = nullable(st.Description)
	body["target_url"] = nullable(st.TargetURL)
	body["context"] = st.Context
	body["created_at"], body["updated_at"] = now, now
	h := http.Header{"Location": {self}}

	data, _ := json.Marshal(body)
	rin := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: vin, Status: http.StatusCreated, Header: http.Header{"Content-Type": {"application/json"}},
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	rin.SetBodyBytes(data)
	if err := openapi3filter.ValidateResponse(context.Background(), rin); err != nil {
		s.t.Errorf("forgetest: the GitHub answer does not match GitHub's OpenAPI description: %v", err)
	}
	return answer{code: http.StatusCreated, header: h, body: body, commit: sha, status: &st}
}

// fourStateStatus reads GitHub's and Gitea's request body.
func fourStateStatus(body map[string]any) forge.Status {
	str := func(k string) string { v, _ := body[k].(string); return v }
	return forge.Status{
		Context:     str("context"),
		State:       forge.State(str("state")),
		Description: str("description"),
		TargetURL:   str("target_url"),
	}
}

// nullable is nil for an empty string, as the forges answer an unset field.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func copyJSON(m map[string]any) map[string]any {
	data, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return out
}
