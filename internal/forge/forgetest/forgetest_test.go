package forgetest

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deltaci/deltaci/internal/forge"
)

// A Server leaves no goroutine behind: not its own, not its clients'.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const sha = "18f3e63d05582537db6d183d9d557be09e1f90c8"

// breaches is a testing.TB that keeps the contract breaches a Server
// reports instead of failing the test.
type breaches struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (b *breaches) Errorf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, format)
}

func (b *breaches) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.errs)
}

// send posts body to path on s with the server's token, and returns the
// answer's code and JSON.
func send(t *testing.T, s *Server, path string, body any, header map[string]string) (int, map[string]any) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, s.APIURL()+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "forgetest")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	return resp.StatusCode, answer
}

func TestGitHubSliceLoads(t *testing.T) {
	start := time.Now()
	spec, err := loadGitHubSpec(testdata(t, githubSpecPath...))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the GitHub slice loads, validates and routes in %v", time.Since(start))
	op := spec.doc.Paths.Value("/repos/{owner}/{repo}/statuses/{sha}").Post
	if op == nil || op.OperationID != "repos/create-commit-status" {
		t.Fatalf("the slice lacks repos/create-commit-status: %+v", op)
	}
}

// The slice must still refuse what GitHub refuses, or the check is empty.
func TestGitHubSliceValidates(t *testing.T) {
	t.Parallel()
	spec := loadGitHub(t)
	cases := []struct {
		name string
		path string
		body string
		ok   bool
	}{
		{"Good", "/repos/o/r/statuses/" + sha, `{"state":"success","target_url":"https://ci.example.com/1","description":"ok","context":"deltaci"}`, true},
		{"OnlyState", "/repos/o/r/statuses/" + sha, `{"state":"pending"}`, true},
		{"NullLink", "/repos/o/r/statuses/" + sha, `{"state":"error","target_url":null,"description":null}`, true},
		{"UnknownState", "/repos/o/r/statuses/" + sha, `{"state":"running"}`, false},
		{"GitLabState", "/repos/o/r/statuses/" + sha, `{"state":"failed"}`, false},
		{"MissingState", "/repos/o/r/statuses/" + sha, `{"description":"no state"}`, false},
		{"StateNotString", "/repos/o/r/statuses/" + sha, `{"state":1}`, false},
		{"ContextNotString", "/repos/o/r/statuses/" + sha, `{"state":"success","context":["a"]}`, false},
		{"NotJSON", "/repos/o/r/statuses/" + sha, `state=success`, false},
		{"NoBody", "/repos/o/r/statuses/" + sha, ``, false},
		{"OtherPath", "/repos/o/r/status/" + sha, `{"state":"success"}`, false},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1"+c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		_, err := spec.validate(req)
		if (err == nil) != c.ok {
			t.Errorf("%s: validation error %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestGitLabDocumentedParameters(t *testing.T) {
	t.Parallel()
	doc := loadGitLab(t)
	cases := []struct {
		name string
		body map[string]any
		code int // GitLab's answer; 0 for taken
		ok   bool
	}{
		{"Good", map[string]any{"state": "running", "name": "deltaci", "target_url": "https://x", "description": "d"}, 0, true},
		{"Context", map[string]any{"state": "success", "context": "deltaci", "ref": "main", "coverage": 99.5, "pipeline_id": 7.0}, 0, true},
		{"Form", map[string]any{"state": "failed", "coverage": "12.5", "pipeline_id": "3"}, 0, true},
		{"MissingState", map[string]any{"name": "deltaci"}, 400, false},
		{"GitHubState", map[string]any{"state": "failure"}, 400, false},
		{"Unknown", map[string]any{"state": "success", "colour": "green"}, 0, false},
		{"LongDescription", map[string]any{"state": "success", "description": strings.Repeat("x", 256)}, 400, false},
		{"PipelineNotInteger", map[string]any{"state": "success", "pipeline_id": 1.5}, 0, false},
	}
	for _, c := range cases {
		problems, code, _ := doc.check(c.body)
		if (len(problems) == 0) != c.ok || code != c.code {
			t.Errorf("%s: problems %v, answer %d; want ok=%v, answer %d", c.name, problems, code, c.ok, c.code)
		}
	}
}

// A request the forge's contract refuses fails the test that sent it, and
// is answered as the forge answers it.
func TestContractBreachesFailTheTest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kind forge.Kind
		body map[string]any
		code int
	}{
		{forge.GitHub, map[string]any{"state": "running"}, http.StatusUnprocessableEntity},
		{forge.GitHub, map[string]any{"context": "deltaci"}, http.StatusUnprocessableEntity},
		{forge.GitHub, map[string]any{"state": "success", "description": strings.Repeat("x", 141)}, http.StatusUnprocessableEntity},
		{forge.GitLab, map[string]any{"state": "failure"}, http.StatusBadRequest},
		{forge.GitLab, map[string]any{"name": "deltaci"}, http.StatusBadRequest},
		{forge.GitLab, map[string]any{"state": "success", "context": "a", "colour": "green"}, http.StatusCreated},
		{forge.Gitea, map[string]any{"state": "running"}, http.StatusUnprocessableEntity},
	}
	for _, c := range cases {
		b := &breaches{TB: t}
		s := New(b, c.kind)
		path := map[forge.Kind]string{
			forge.GitHub: "/repos/" + s.Repo + "/statuses/" + sha,
			forge.GitLab: "/projects/group%2Fsubgroup%2Fproject/statuses/" + sha,
			forge.Gitea:  "/repos/" + s.Repo + "/statuses/" + sha,
		}[c.kind]
		code, _ := send(t, s, path, c.body, map[string]string{"Authorization": "Bearer " + s.Token})
		if code != c.code {
			t.Errorf("%s %v: answered %d, want %d", c.kind, c.body, code, c.code)
		}
		if b.count() == 0 {
			t.Errorf("%s %v: the breach was not reported", c.kind, c.body)
		}
	}
}

func TestServerAnswersLikeTheForge(t *testing.T) {
	t.Parallel()
	t.Run("GitHub", func(t *testing.T) {
		t.Parallel()
		s := New(t, forge.GitHub)
		code, a := send(t, s, "/repos/"+s.Repo+"/statuses/"+sha, map[string]any{"state": "success"}, map[string]string{"Authorization": "Bearer " + s.Token})
		// The answer was checked against the description's 201 schema.
		if code != http.StatusCreated || a["state"] != "success" || a["context"] != "default" || a["creator"] == nil {
			t.Errorf("answered %d %v", code, a)
		}
		code, a = send(t, s, "/repos/"+s.Repo+"/statuses/"+sha, map[string]any{"state": "success"}, map[string]string{"Authorization": "Bearer nope"})
		if code != http.StatusUnauthorized || a["message"] != "Bad credentials" {
			t.Errorf("a wrong token: answered %d %v", code, a)
		}
		code, _ = send(t, s, "/repos/someone/else/statuses/"+sha, map[string]any{"state": "success"}, map[string]string{"Authorization": "Bearer " + s.Token})
		if code != http.StatusNotFound {
			t.Errorf("another repository: answered %d", code)
		}
	})
	t.Run("GitLab", func(t *testing.T) {
		t.Parallel()
		s := New(t, forge.GitLab)
		path := "/projects/group%2Fsubgroup%2Fproject/statuses/" + sha
		code, a := send(t, s, path, map[string]any{"state": "running", "name": "deltaci"}, map[string]string{"Private-Token": s.Token})
		if code != http.StatusCreated || a["status"] != "running" || a["name"] != "deltaci" || a["author"] == nil || a["started_at"] == nil {
			t.Errorf("answered %d %v", code, a)
		}
		code, a = send(t, s, path, map[string]any{"state": "running", "name": "deltaci"}, map[string]string{"Private-Token": s.Token})
		if want := `Cannot transition status via :run from :running (Reason(s): Status cannot transition via "run")`; code != http.StatusBadRequest || a["message"] != want {
			t.Errorf("running twice: answered %d %v, want 400 %s", code, a, want)
		}
		code, _ = send(t, s, path, map[string]any{"state": "success"}, map[string]string{"Authorization": "Bearer " + s.Token})
		if code != http.StatusCreated {
			t.Errorf("an OAuth-style token: answered %d", code)
		}
		code, _ = send(t, s, path, map[string]any{"state": "success"}, map[string]string{"Private-Token": "nope"})
		if code != http.StatusUnauthorized {
			t.Errorf("a wrong token: answered %d", code)
		}
	})
}

func TestServerRecordsWithoutTheToken(t *testing.T) {
	t.Parallel()
	s := New(t, forge.Gitea)
	send(t, s, "/repos/"+s.Repo+"/statuses/"+sha, map[string]any{"state": "success", "context": "c"}, map[string]string{"Authorization": "token " + s.Token})
	send(t, s, "/repos/"+s.Repo+"/statuses/"+sha, map[string]any{"state": "success"}, map[string]string{"Authorization": "token guessed"})
	reqs := s.Requests()
	if len(reqs) != 2 {
		t.Fatalf("recorded %d requests, want 2", len(reqs))
	}
	if got := reqs[0].Header.Get("Authorization"); got != "token <token>" {
		t.Errorf("recorded Authorization %q, want %q", got, "token <token>")
	}
	if got := reqs[1].Header.Get("Authorization"); got != "token <wrong token>" || reqs[1].Code != http.StatusUnauthorized {
		t.Errorf("a wrong token: recorded %q, answered %d", got, reqs[1].Code)
	}
	if reqs[0].Body["context"] != "c" || reqs[0].Time.IsZero() || reqs[0].Time.After(reqs[1].Time) {
		t.Errorf("recorded %+v", reqs[0])
	}
	if got := s.Statuses(sha); len(got) != 1 || got[0].Context != "c" {
		t.Errorf("statuses %+v, want the one taken", got)
	}
}

func TestDownRefusesConnectionsAndUpReopensThePort(t *testing.T) {
	t.Parallel()
	s := New(t, forge.GitHub)
	addr := strings.TrimPrefix(s.URL(), "http://")
	s.Down()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("a connection was taken while the server was down")
	}
	s.Up()
	if s.URL() != "http://"+addr {
		t.Fatalf("the server came back on %s, not %s", s.URL(), addr)
	}
	code, _ := send(t, s, "/repos/"+s.Repo+"/statuses/"+sha, map[string]any{"state": "success"}, map[string]string{"Authorization": "Bearer " + s.Token})
	if code != http.StatusCreated {
		t.Errorf("after Up: answered %d", code)
	}
}

func TestWaitSeesRequestsAsTheyArrive(t *testing.T) {
	t.Parallel()
	s := New(t, forge.GitLab)
	done := make(chan error, 1)
	go func() {
		var err error
		for _, st := range []forge.State{forge.Pending, forge.Running, forge.Success} {
			if err = forge.Post(context.Background(), s.Client(), s.Target(sha), forge.Status{Context: "deltaci", State: st}); err != nil {
				break
			}
		}
		done <- err
	}()
	reqs := s.Wait(t, func(rs []Request) bool {
		return len(rs) > 0 && rs[len(rs)-1].Status != nil && rs[len(rs)-1].Status.State == forge.Success
	}, time.Minute)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 3 {
		t.Errorf("waited for %d requests, want 3", len(reqs))
	}
}

func TestStallHoldsRequestsAndServesThemWhenReleased(t *testing.T) {
	t.Parallel()
	s := New(t, forge.GitHub)
	s.Stall()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- forge.Post(ctx, s.Client(), s.Target(sha), forge.Status{Context: "deltaci", State: forge.Pending})
	}()
	deadline := time.Now().Add(time.Minute)
	for s.Stalled() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the post was not held")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.Requests(); len(got) != 0 {
		t.Fatalf("a held request was recorded: %+v", got)
	}
	// The client gives up; the forge still applies what it was sent.
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a held post returned without error")
	}
	if n := s.InFlight(); n != 1 {
		t.Errorf("%d requests in flight, want the held one", n)
	}
	s.Release()
	reqs := s.Wait(t, func(rs []Request) bool { return len(rs) == 1 }, time.Minute)
	if reqs[0].Status == nil || reqs[0].Status.State != forge.Pending || s.Stalled() != 0 {
		t.Errorf("released: %+v, %d still held", reqs[0], s.Stalled())
	}
	if err := forge.Post(context.Background(), s.Client(), s.Target(sha), forge.Status{Context: "deltaci", State: forge.Success}); err != nil {
		t.Errorf("a post after Release: %v", err)
	}
}

func TestStopReleasesHeldRequests(t *testing.T) {
	t.Parallel()
	var s *Server
	t.Run("held", func(t *testing.T) {
		s = New(t, forge.GitHub)
		s.Stall()
		go func() {
			_ = forge.Post(context.Background(), s.Client(), s.Target(sha), forge.Status{Context: "deltaci", State: forge.Pending})
		}()
		deadline := time.Now().Add(time.Minute)
		for s.Stalled() != 1 {
			if time.Now().After(deadline) {
				t.Fatal("the post was not held")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	// The subtest's cleanup returned: the held request was let go without
	// being recorded for a finished test.
	if n, got := s.Stalled(), s.Requests(); n != 0 || len(got) != 0 {
		t.Errorf("after the test: %d held, %d recorded", n, len(got))
	}
}
