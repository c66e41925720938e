package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/openapitest"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

const (
	contractDocPath  = "../../api/openapi.yaml"
	contractRegToken = "reg-token"
	contractAPIToken = "api-token"
	// contractTTL is long enough that no lease expires during a test: the
	// reaper must not move what the test is looking at.
	contractTTL = 5 * time.Minute
)

// contractDoc is the OpenAPI document, loaded and validated once.
var contractDoc = sync.OnceValues(func() (*openapi3.T, error) {
	// The followed log is validated as the list of its events.
	openapi3filter.RegisterBodyDecoder("text/event-stream", decodeEventStream)
	doc, err := openapi3.NewLoader().LoadFromFile(contractDocPath)
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(context.Background())
})

// contractOptions configure one server.
type contractOptions struct {
	// engine is apitest.Options.Engine: SQLite when empty.
	engine   string
	apiToken string
	logCap   int64
	cov      *contractCoverage
	// edit changes the server's configuration last.
	edit func(*api.Config)
}

// contractEnv is a server in this process and a client whose every
// exchange under /api/v1 (and the root probes) is validated against the
// OpenAPI document.
type contractEnv struct {
	t    *testing.T
	url  string
	srv  *api.Server
	st   *store.Store
	keys *auth.Keyset
	// skew moves the keyset's clock, to issue tokens that are expired.
	skew *atomic.Int64
	http *http.Client
}

func newContractEnv(t *testing.T, o contractOptions) *contractEnv {
	t.Helper()
	var opts []store.Option
	if o.logCap > 0 {
		opts = append(opts, store.WithLogCap(o.logCap))
	}
	skew := &atomic.Int64{}
	keys, err := auth.NewKeyset(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.Start(t, apitest.Options{Engine: o.engine, StoreOptions: opts, Edit: func(c *api.Config) {
		c.Keys, c.RegistrationToken, c.APIToken = keys, contractRegToken, o.apiToken
		c.TTL, c.MaxLeaseWait = contractTTL, 100*time.Millisecond
		if o.edit != nil {
			o.edit(c)
		}
	}})
	return &contractEnv{
		t: t, url: srv.URL, srv: srv.API, st: srv.Store, keys: keys, skew: skew,
		http: &http.Client{Transport: newContractValidator(t, srv.HTTP.Client().Transport, o.cov)},
	}
}

// on is e reporting to t, the test or subtest running on this goroutine.
func (e *contractEnv) on(t *testing.T) *contractEnv {
	c := *e
	c.t = t
	return &c
}

// contractCoverage and contractUnchecked are the shared contract-test pieces.
type contractCoverage = openapitest.Coverage

var contractUnchecked = openapitest.Unchecked

// newContractValidator checks the traffic to next against the server's
// document; the artifact store under /store has its own.
func newContractValidator(t testing.TB, next http.RoundTripper, cov *contractCoverage) *openapitest.Validator {
	t.Helper()
	doc, err := contractDoc()
	if err != nil {
		t.Fatalf("load %s: %v", contractDocPath, err)
	}
	v := openapitest.NewValidator(t, doc, next, cov)
	v.Pass = func(req *http.Request) bool { return strings.HasPrefix(req.URL.Path, api.StorePrefix+"/") }
	v.Answer = func(t testing.TB, what, op string, _ *http.Request, resp *http.Response, rb []byte) {
		// A draining server's readyz answers its probe body, not an error.
		if resp.StatusCode >= 400 && op != "readyz" {
			var eb protocol.ErrorBody
			if resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(rb, &eb) != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Errorf("contract: %s answered %d without a JSON error body: %q", what, resp.StatusCode, rb)
			}
		}
		if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != `Bearer realm="deltaci"` {
			t.Errorf("contract: %s answered 401 with WWW-Authenticate %q", what, resp.Header.Get("WWW-Authenticate"))
		}
	}
	return v
}

// contractEvent is one Server-Sent Event: its name, id and data.
type contractEvent struct {
	name, id string
	data     []byte
}

// parseEvents splits an event stream into its events; comments are
// dropped.
func parseEvents(r io.Reader) ([]contractEvent, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var out []contractEvent
	var cur contractEvent
	seen := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if seen {
				out = append(out, cur)
			}
			cur, seen = contractEvent{}, false
		case strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			seen = true
			switch field {
			case "event":
				cur.name = value
			case "id":
				cur.id = value
			case "data":
				if cur.data != nil {
					cur.data = append(cur.data, '\n')
				}
				cur.data = append(cur.data, value...)
			default:
				return nil, errors.New("unknown event stream field " + field)
			}
		}
	}
	if seen {
		return nil, errors.New("the event stream ends inside an event")
	}
	return out, sc.Err()
}

// decodeEventStream is the body decoder of text/event-stream: the list of
// events as {event, id, data}, data decoded as JSON.
func decodeEventStream(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	events, err := parseEvents(body)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(events))
	for _, ev := range events {
		var data any
		if err := json.Unmarshal(ev.data, &data); err != nil {
			return nil, errors.New("event " + ev.name + ": data is not JSON")
		}
		m := map[string]any{"event": ev.name, "data": data}
		if ev.id != "" {
			m["id"] = ev.id
		}
		out = append(out, m)
	}
	return out, nil
}

// contractResponse is a whole response.
type contractResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r contractResponse) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

func (r contractResponse) errorDetail(t testing.TB) protocol.ErrorDetail {
	t.Helper()
	var eb protocol.ErrorBody
	r.decode(t, &eb)
	return eb.Error
}

// events parses a followed log's body.
func (r contractResponse) events(t testing.TB) []contractEvent {
	t.Helper()
	evs, err := parseEvents(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("event stream %q: %v", r.body, err)
	}
	return evs
}

// contractHeader is a header with tok as the bearer token (none when
// empty) and the key, value pairs kv whose value is not empty.
func contractHeader(tok string, kv ...string) http.Header {
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			h.Add(kv[i], kv[i+1])
		}
	}
	return h
}

// try makes one request through the validating client.
func (e *contractEnv) try(ctx context.Context, method, path string, h http.Header, body []byte) (contractResponse, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, rd)
	if err != nil {
		return contractResponse{}, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return contractResponse{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return contractResponse{status: resp.StatusCode, header: resp.Header, body: b}, err
}

// expect makes one request and fails the test unless it gets status want.
func (e *contractEnv) expect(ctx context.Context, want int, method, path string, h http.Header, body []byte) contractResponse {
	e.t.Helper()
	r, err := e.try(ctx, method, path, h, body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	if r.status != want {
		e.t.Errorf("%s %s = %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

// json sends v (raw when it is []byte, nothing when nil) as a JSON body
// with tok as the bearer token.
func (e *contractEnv) json(ctx context.Context, want int, method, path, tok string, v any) contractResponse {
	e.t.Helper()
	var body []byte
	switch v := v.(type) {
	case nil:
	case []byte:
		body = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			e.t.Fatal(err)
		}
		body = b
	}
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	return e.expect(ctx, want, method, path, contractHeader(tok, "Content-Type", ct), body)
}

// run reads a run back through the API.
func (e *contractEnv) run(ctx context.Context, id string) protocol.Run {
	e.t.Helper()
	var run protocol.Run
	e.json(ctx, http.StatusOK, "GET", "/api/v1/runs/"+id, contractAPIToken, nil).decode(e.t, &run)
	return run
}

// attempt finds one attempt of a run.
func (e *contractEnv) attempt(ctx context.Context, runID, attemptID string) protocol.Attempt {
	e.t.Helper()
	for _, j := range e.run(ctx, runID).Jobs {
		for _, a := range j.Attempts {
			if a.ID == attemptID {
				return a
			}
		}
	}
	e.t.Fatalf("run %s has no attempt %s", runID, attemptID)
	return protocol.Attempt{}
}

// sealed waits until an ended attempt's log is sealed (off the
// completion's path) and returns the attempt.
func (e *contractEnv) sealed(ctx context.Context, runID, attemptID string) protocol.Attempt {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := e.attempt(ctx, runID, attemptID)
		if a.LogDigest != "" {
			return a
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the log of attempt %s is not sealed after 10 s: %+v", attemptID, a)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiToken records an API token of role with the given name, as the server
// makes them, and returns it.
func (e *contractEnv) apiToken(name, role string) string {
	e.t.Helper()
	tok, hash := auth.NewAPIToken()
	if _, err := e.st.CreateAPIToken(e.t.Context(), store.APIToken{Name: name, Role: role, Hash: hash}); err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// addProject registers a project through the API with the admin token.
func (e *contractEnv) addProject(ctx context.Context, p contractProject) protocol.Project {
	e.t.Helper()
	var out protocol.Project
	e.json(ctx, http.StatusCreated, "POST", "/api/v1/projects", contractAPIToken, p).decode(e.t, &out)
	return out
}

// createRun makes a run through the API with tok.
func (e *contractEnv) createRun(ctx context.Context, tok string, req protocol.CreateRunRequest) protocol.Run {
	e.t.Helper()
	var run protocol.Run
	e.json(ctx, http.StatusCreated, "POST", "/api/v1/runs", tok, req).decode(e.t, &run)
	return run
}

// contractProject is the body of POST /projects as a client that leaves
// out what it does not set sends it (protocol.Project always sends every
// field).
type contractProject struct {
	Name              string   `json:"name,omitempty"`
	RepoURL           string   `json:"repo_url,omitempty"`
	DefaultBranch     string   `json:"default_branch,omitempty"`
	ProtectedBranches []string `json:"protected_branches,omitempty"`
	Secrets           []string `json:"secrets,omitempty"`
	UntrustedNetwork  bool     `json:"untrusted_network,omitempty"`
	Labels            []string `json:"labels,omitempty"`
}

// contractJob finds a job of a run by name.
func contractJob(t testing.TB, run protocol.Run, name string) protocol.Job {
	t.Helper()
	for _, j := range run.Jobs {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("run %s has no job %s: %+v", run.ID, name, run.Jobs)
	return protocol.Job{}
}

// contractRepo is a git repository on branch main with one commit of
// files.
func contractRepo(t *testing.T, files map[string]string) string { return gittest.Repo(t, files) }

// readContractDoc is the canonical document's bytes.
func readContractDoc(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(contractDocPath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
