// Package forgetest plays the commit status endpoint of a forge for tests:
// New starts a server on the loopback that answers like GitHub, GitLab,
// Gitea or Forgejo, records every request in order, and fails the test on a
// request the forge's published contract refuses (GitHub's OpenAPI
// description, GitLab's documented parameters). It can be told to fail the
// next requests, to hold requests unanswered, or to go down and come back
// up on the same port.
package forgetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/forge"
)

// Request is one request the server received.
type Request struct {
	Method string
	// Path is the path as sent, escaped: a GitLab project's path stays
	// one %2F-encoded segment.
	Path string
	// Header is the request's header with the token's value replaced by
	// "<token>" when it is the server's token, "<wrong token>" otherwise
	// (the scheme before it, "Bearer" or "token", stays).
	Header http.Header
	// Body is the parsed JSON object, or the form and query values
	// (GitLab takes those too), one string per key.
	Body map[string]any
	// Time is when the request arrived.
	Time time.Time
	// Code is the HTTP status the server answered.
	Code int
	// Commit is the commit the path names.
	Commit string
	// Status is the status the forge accepted, for a 2xx answer; its State
	// is mapped back to Delta CI's (GitLab's "failed" is forge.Failure;
	// GitHub's "error" is forge.Error).
	Status *forge.Status
}

// Server is a forge's status endpoint on the loopback. Its exported
// fields are set by New and only read after.
type Server struct {
	// Kind is the forge the server plays.
	Kind forge.Kind
	// Repo is the one repository (GitLab: project path) the server knows;
	// others answer 404.
	Repo string
	// Token is the one token the server takes; others answer 401.
	Token string

	t      testing.TB
	player player
	addr   string // host:port, kept across Down and Up

	mu       sync.Mutex
	http     *http.Server
	served   chan struct{} // closed when the current Serve returns
	active   int           // handlers running
	idle     *sync.Cond    // signalled when active drops to 0
	stopped  bool          // the test is over: handlers must not report
	requests []Request
	changed  chan struct{} // closed and replaced at each request
	failN    int
	failCode int
	failHdr  http.Header
	stall    chan struct{} // while not nil, requests wait for it to close
	held     int           // requests waiting on stall
	nextID   int
	jobs     map[string]string // GitLab: sha and name → the job's state
	clients  []*http.Client
}

// player is one forge's dialect of the status endpoint.
type player interface {
	// root is the API root's path below the server's URL.
	root() string
	// repo is the repository a Server of this kind knows by default.
	repo() string
	// serve checks in against the forge's contract (failing the test on a
	// breach), then answers it as the forge would: fail, when not nil, is
	// the failure the test asked for, answered in place of an acceptance.
	serve(s *Server, in *incoming, fail *failure) answer
	// errorBody is the forge's error answer carrying message.
	errorBody(code int, message string) any
}

// incoming is a request read whole.
type incoming struct {
	r    *http.Request
	body []byte
	rec  *Request
}

// request returns a copy of the request with its body readable again.
func (in *incoming) request() *http.Request {
	r := in.r.Clone(in.r.Context())
	r.Body = io.NopCloser(bytes.NewReader(in.body))
	return r
}

// answer is what the server sends back.
type answer struct {
	code   int
	header http.Header
	body   any
	commit string
	status *forge.Status
}

// failure is a failure the test asked for.
type failure struct {
	code   int
	header http.Header
}

// Option changes a Server before it starts.
type Option func(*Server)

// WithRepo makes the server know repo (GitLab: the project's path with
// its namespace) instead of its kind's default.
func WithRepo(repo string) Option { return func(s *Server) { s.Repo = repo } }

// New starts a server playing kind's status endpoint, stopped when the
// test ends.
func New(t testing.TB, kind forge.Kind, opts ...Option) *Server {
	t.Helper()
	var p player
	switch kind {
	case forge.GitHub:
		p = &github{spec: loadGitHub(t)}
	case forge.GitLab:
		p = &gitlab{doc: loadGitLab(t)}
	case forge.Gitea, forge.Forgejo:
		p = &gitea{}
	default:
		t.Fatalf("forgetest: no status endpoint for forge %q", kind)
	}
	s := &Server{
		Kind:    kind,
		Repo:    p.repo(),
		Token:   newToken(),
		t:       t,
		player:  p,
		changed: make(chan struct{}),
		jobs:    map[string]string{},
	}
	s.idle = sync.NewCond(&s.mu)
	for _, o := range opts {
		o(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("forgetest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.stop)
	return s
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "forgetest-" + hex.EncodeToString(b)
}

// URL is the server's address, without the API root.
func (s *Server) URL() string { return "http://" + s.addr }

// APIURL is the forge API's root, as forge.Target.APIURL takes it: the
// server itself for GitHub (as api.github.com), /api/v4 for GitLab,
// /api/v1 for Gitea and Forgejo.
func (s *Server) APIURL() string { return s.URL() + s.player.root() }

// Target is where Post sends a status on commit in the server's
// repository, with the server's token.
func (s *Server) Target(commit string) forge.Target {
	return forge.Target{Kind: s.Kind, APIURL: s.APIURL(), Repo: s.Repo, Commit: commit, Token: s.Token}
}

// Client returns an HTTP client of its own, whose idle connections are
// closed when the test ends.
func (s *Server) Client() *http.Client {
	c := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	s.mu.Lock()
	s.clients = append(s.clients, c)
	s.mu.Unlock()
	return c
}

// FailNext makes the next n requests fail with code, with the forge's
// error body and, for 429 and 503, a Retry-After of 30 seconds as GitHub
// and GitLab send. The requests are still checked and recorded.
func (s *Server) FailNext(n, code int) {
	h := http.Header{}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		h.Set("Retry-After", "30")
	}
	s.FailNextWith(n, code, h)
}

// FailNextWith is FailNext with the answers' extra headers given, such as
// GitHub's rate limit (X-RateLimit-Remaining: 0 and X-RateLimit-Reset).
func (s *Server) FailNextWith(n, code int, h http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode, s.failHdr = n, code, h.Clone()
}

// Stall makes the server hold every request from now on, read whole but
// not answered, until Release: a forge slow to answer, with posts in
// flight for as long as the test wants. A held request whose client went
// away is still served when released, as a forge applies a request it has
// even when nobody reads the answer.
func (s *Server) Stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stall == nil {
		s.stall = make(chan struct{})
	}
}

// Release serves the held requests, and the later ones at once.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stall != nil {
		close(s.stall)
		s.stall = nil
	}
}

// Stalled returns how many requests the server holds now.
func (s *Server) Stalled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// InFlight returns how many requests the server is handling now, held
// ones included: with the clients gone, 0 means every request they sent
// is recorded.
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// Down stops the server as an outage does: the port is closed, so new
// connections are refused, and open ones are cut.
func (s *Server) Down() {
	s.mu.Lock()
	hs, served := s.http, s.served
	s.http = nil
	s.mu.Unlock()
	if hs == nil {
		return
	}
	_ = hs.Close()
	<-served
}

// Up starts the server again on the port it had.
func (s *Server) Up() {
	s.t.Helper()
	s.mu.Lock()
	up := s.http != nil
	s.mu.Unlock()
	if up {
		return
	}
	// The port is free unless another process took it meanwhile, which a
	// short retry cannot fix but a busy machine's slow close can.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", s.addr)
		if err == nil {
			s.serve(ln)
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("forgetest: listen again on %s: %v", s.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) serve(ln net.Listener) {
	hs := &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	s.mu.Lock()
	s.http, s.served = hs, served
	s.mu.Unlock()
	go func() {
		defer close(served)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.t.Errorf("forgetest: serve: %v", err)
		}
	}()
}

func (s *Server) stop() {
	s.Down()
	// A handler still running would report to a finished test.
	s.mu.Lock()
	s.stopped = true
	if s.stall != nil {
		close(s.stall)
		s.stall = nil
	}
	for s.active > 0 {
		s.idle.Wait()
	}
	clients := s.clients
	s.mu.Unlock()
	for _, c := range clients {
		c.CloseIdleConnections()
	}
}

// Requests returns every request received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Statuses returns the statuses the forge accepted on commit sha, in
// arrival order.
func (s *Server) Statuses(sha string) []forge.Status {
	var out []forge.Status
	for _, r := range s.Requests() {
		if r.Status != nil && strings.EqualFold(r.Commit, sha) {
			out = append(out, *r.Status)
		}
	}
	return out
}

// Wait returns the requests received once cond holds for them, checking
// at each request; it fails the test when timeout passes first.
func (s *Server) Wait(t testing.TB, cond func([]Request) bool, timeout time.Duration) []Request {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		reqs := append([]Request(nil), s.requests...)
		changed := s.changed
		s.mu.Unlock()
		if cond(reqs) {
			return reqs
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("forgetest: condition not met within %v; %d requests: %s", timeout, len(reqs), summary(reqs))
			return nil
		}
	}
}

func summary(reqs []Request) string {
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "\n  %s %s → %d %v", r.Method, r.Path, r.Code, r.Body)
	}
	return b.String()
}

// maxRequest bounds a request body: a status is a few hundred bytes.
const maxRequest = 1 << 20

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.active++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.active--; s.active == 0 {
			s.idle.Broadcast()
		}
		s.mu.Unlock()
	}()
	rec := &Request{Method: r.Method, Path: r.URL.EscapedPath(), Header: s.redact(r.Header), Time: time.Now()}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest))
	if err != nil {
		return // the client went away
	}
	if s.Token != "" && bytes.Contains(body, []byte(s.Token)) {
		s.t.Errorf("forgetest: %s %s: the token is in the request body", r.Method, rec.Path)
	}
	rec.Body = parseBody(r, body)
	in := &incoming{r: r, body: body, rec: rec}

	s.mu.Lock()
	if stall := s.stall; stall != nil {
		s.held++
		s.mu.Unlock()
		<-stall
		s.mu.Lock()
		s.held--
		if s.stopped {
			// The test is over: nobody may be told of this request.
			s.mu.Unlock()
			return
		}
	}
	var fail *failure
	if s.failN > 0 {
		s.failN--
		fail = &failure{code: s.failCode, header: s.failHdr}
	}
	s.mu.Unlock()

	a := s.player.serve(s, in, fail)
	if a.code == 0 {
		a.code = http.StatusOK
	}
	rec.Code, rec.Commit, rec.Status = a.code, a.commit, a.status
	data, err := json.Marshal(a.body)
	if err != nil {
		s.t.Errorf("forgetest: answer: %v", err)
	}
	// Recorded before the answer leaves, so a client that has it finds
	// its request in Requests.
	s.mu.Lock()
	s.requests = append(s.requests, *rec)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	for k, vs := range a.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(a.code)
	_, _ = w.Write(data)
}

// fail answers the failure the test asked for.
func (s *Server) fail(f *failure, message string) answer {
	return answer{code: f.code, header: f.header, body: s.player.errorBody(f.code, message)}
}

// redact copies h with the token's value replaced.
func (s *Server) redact(h http.Header) http.Header {
	out := h.Clone()
	for _, k := range []string{"Authorization", "Private-Token"} {
		for i, v := range out[k] {
			scheme, secret, ok := strings.Cut(v, " ")
			if !ok {
				scheme, secret = "", v
			}
			mark := "<wrong token>"
			if secret == s.Token {
				mark = "<token>"
			}
			out[k][i] = strings.TrimSpace(scheme + " " + mark)
		}
	}
	return out
}

// authorized reports whether h carries the token under one of schemes
// ("Bearer", "token") in Authorization, or, when privateToken is set, in
// GitLab's PRIVATE-TOKEN.
func (s *Server) authorized(h http.Header, privateToken bool, schemes ...string) bool {
	if privateToken && h.Get("Private-Token") != "" {
		return h.Get("Private-Token") == s.Token
	}
	scheme, secret, ok := strings.Cut(h.Get("Authorization"), " ")
	if !ok || secret != s.Token {
		return false
	}
	for _, sc := range schemes {
		if strings.EqualFold(scheme, sc) {
			return true
		}
	}
	return false
}

// parseBody reads a JSON object, or form and query values.
func parseBody(r *http.Request, body []byte) map[string]any {
	out := map[string]any{}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		if err := json.Unmarshal(body, &out); err != nil {
			return map[string]any{}
		}
	case "application/x-www-form-urlencoded":
		if form, err := url.ParseQuery(string(body)); err == nil {
			for k := range form {
				out[k] = form.Get(k)
			}
		}
	}
	for k := range r.URL.Query() {
		if _, ok := out[k]; !ok {
			out[k] = r.URL.Query().Get(k)
		}
	}
	return out
}

// id returns the next id of a created status.
func (s *Server) id() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return s.nextID
}

// isHex reports whether sha is a full SHA-1 or SHA-256 object name.
func isHex(sha string) bool {
	if len(sha) != 40 && len(sha) != 64 {
		return false
	}
	_, err := hex.DecodeString(sha)
	return err == nil
}

// apiPath cuts the API root and splits the rest of r's escaped path into
// unescaped segments, or says the path is outside the root.
func apiPath(r *http.Request, root string) ([]string, bool) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), root+"/")
	if !ok {
		return nil, false
	}
	segs := strings.Split(rest, "/")
	for i, seg := range segs {
		u, err := url.PathUnescape(seg)
		if err != nil {
			return nil, false
		}
		segs[i] = u
	}
	return segs, true
}

// stamp is a forge's time format for created_at.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
