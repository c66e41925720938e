package api_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/forge"
	"github.com/deltaci/deltaci/internal/forge/forgetest"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/secret"
)

const (
	// forgeTokenSecret names the server's secret that holds the forge's
	// token.
	forgeTokenSecret = "FORGE_TOKEN"
	// forgeExternalURL is the server's URL as the forge links to it.
	forgeExternalURL = "https://ci.example.com"
	// forgeDeadline bounds every wait: generous, for -race on a busy
	// machine; a passing test waits far less.
	forgeDeadline = 30 * time.Second
	// forgeTestdata holds the forges' published webhook examples.
	forgeTestdata = "../forge/testdata"
)

// forgeOptions say how to build a forgeEnv.
type forgeOptions struct {
	engine string
	kind   forge.Kind
	// files are the repository's first commit on main.
	files          map[string]string
	keepSuperseded bool
	// retryMax is the server's StatusRetryMax (its default when 0).
	retryMax time.Duration
	// tracer is the server's tracer provider (tracing off when nil).
	tracer trace.TracerProvider
}

// forgeEnv is a server in this process whose one project lives on a
// recording forge: webhooks go in through the validating client, and
// commit statuses come out to the forge.
type forgeEnv struct {
	*contractEnv
	kind    forge.Kind
	forge   *forgetest.Server
	project string
	repo    string
	// secret is the project's webhook secret, read from GET
	// /projects/{name}/hooks.
	secret string
	// user is the admin's client, through the validating transport.
	user   *protocol.Client
	runner *forgeRunner
}

func newForgeEnv(t *testing.T, o forgeOptions) *forgeEnv {
	t.Helper()
	ctx := t.Context()
	fs := forgetest.New(t, o.kind)
	client := fs.Client()
	client.Timeout = 10 * time.Second
	e := newContractEnv(t, contractOptions{engine: o.engine, apiToken: contractAPIToken, edit: func(c *api.Config) {
		c.ExternalURL, c.ForgeClient = forgeExternalURL, client
		c.StatusPoll, c.StatusRetryMax = 20*time.Millisecond, o.retryMax
		c.Tracer = o.tracer
		c.Secrets = secret.NewEnv([]string{secret.EnvPrefix + forgeTokenSecret + "=" + fs.Token})
	}})
	f := &forgeEnv{
		contractEnv: e, kind: o.kind, forge: fs, project: "forge-" + string(o.kind), repo: gittest.Repo(t, o.files),
		user: &protocol.Client{BaseURL: e.url, HTTP: e.http, Token: func(context.Context) (string, error) { return contractAPIToken, nil }},
	}
	if _, err := f.user.AddProject(ctx, protocol.Project{
		Name: f.project, RepoURL: f.repo, DefaultBranch: "main", ProtectedBranches: []string{"main"},
		Secrets: []string{}, Labels: []string{},
		Forge: &protocol.ProjectForge{Kind: string(o.kind), APIURL: fs.APIURL(), Repo: fs.Repo, TokenSecret: forgeTokenSecret, KeepSuperseded: o.keepSuperseded},
	}); err != nil {
		t.Fatalf("adding the project: %v", err)
	}
	h := f.hooks(t)
	if h.URL != forgeExternalURL+"/api/v1/hooks/"+string(o.kind)+"/"+f.project || h.ContentType != "application/json" || h.Secret == "" || len(h.Deliveries) != 0 {
		t.Fatalf("the project's webhook = %+v", h)
	}
	f.secret = h.Secret
	f.runner = newForgeRunner(t, e)
	return f
}

// hooks reads GET /projects/{name}/hooks.
func (f *forgeEnv) hooks(t *testing.T) protocol.ProjectHooks {
	t.Helper()
	h, err := f.user.ProjectHooks(t.Context(), f.project)
	if err != nil {
		t.Fatalf("GET hooks: %v", err)
	}
	return h
}

// delivery finds a stored delivery by the server's id.
func (f *forgeEnv) delivery(t *testing.T, id string) protocol.HookDelivery {
	t.Helper()
	for _, d := range f.hooks(t).Deliveries {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("GET hooks lists no delivery %s", id)
	return protocol.HookDelivery{}
}

// hookHeader is what the forge sends with a delivery of event: its event
// name, delivery id and signature (GitLab: the secret itself).
func hookHeader(kind forge.Kind, secret, event, id string, body []byte) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	switch kind {
	case forge.GitHub:
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		h.Set("User-Agent", "GitHub-Hookshot/044aadd")
		h.Set("X-GitHub-Event", event)
		h.Set("X-GitHub-Delivery", id)
		h.Set("X-GitHub-Hook-ID", "292430182")
		h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	case forge.GitLab:
		h.Set("User-Agent", "GitLab/17.3.0")
		h.Set("X-Gitlab-Event", event)
		h.Set("X-Gitlab-Event-UUID", id)
		h.Set("X-Gitlab-Token", secret)
	}
	return h
}

// post sends a delivery with header h to the hook URL of kind and project
// and fails the test unless the answer is want.
func (f *forgeEnv) post(ctx context.Context, t *testing.T, want int, kind forge.Kind, project string, h http.Header, body []byte) contractResponse {
	t.Helper()
	return f.on(t).expect(ctx, want, "POST", "/api/v1/hooks/"+string(kind)+"/"+project, h, body)
}

// deliver sends body as the forge would, as event with delivery id id,
// and returns the answer, which must have status want.
func (f *forgeEnv) deliver(t *testing.T, want int, event, id string, body []byte) protocol.HookAnswer {
	t.Helper()
	r := f.post(t.Context(), t, want, f.kind, f.project, hookHeader(f.kind, f.secret, event, id, body), body)
	var a protocol.HookAnswer
	r.decode(t, &a)
	return a
}

// newDeliveryID is a forge's delivery id: a UUID, as GitHub and GitLab
// send.
func newDeliveryID() string { return uuid.NewString() }

// hookPayload reads a forge's example delivery below the forge package's
// testdata.
func hookPayload(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(forgeTestdata, filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// setField changes the field at a dotted path of an example
// ("pull_request.head.sha", "commits.0.id"); every step but the last must
// exist.
func setField(t *testing.T, m map[string]any, path string, v any) {
	t.Helper()
	keys := strings.Split(path, ".")
	var cur any = m
	for i, k := range keys {
		last := i == len(keys)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[k] = v
				return
			}
			cur = c[k]
		case []any:
			n, err := strconv.Atoi(k)
			if err != nil || n < 0 || n >= len(c) {
				t.Fatalf("set %s: %q is no index of a list of %d", path, k, len(c))
			}
			if last {
				c[n] = v
				return
			}
			cur = c[n]
		default:
			t.Fatalf("set %s: %s is not an object or a list", path, strings.Join(keys[:i], "."))
		}
	}
}

// encodePayload encodes an example as the forge sends it.
func encodePayload(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// commitFiles writes files into repo's work tree on its current branch,
// commits them with msg and returns the commit's id.
func commitFiles(t *testing.T, repo, msg string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(repo, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gittest.Git(t, repo, "add", "-A")
	gittest.Git(t, repo, "commit", "-q", "-m", msg)
	return revParse(t, repo, "HEAD")
}

func revParse(t *testing.T, repo, rev string) string {
	t.Helper()
	return strings.TrimSpace(gittest.Git(t, repo, "rev-parse", "--verify", rev+"^{commit}"))
}

// runsOf lists the project's runs of commit, newest first.
func (f *forgeEnv) runsOf(t *testing.T, commit string) []protocol.RunSummary {
	t.Helper()
	var list protocol.RunList
	f.on(t).json(t.Context(), http.StatusOK, "GET", "/api/v1/runs?project="+url.QueryEscape(f.project)+"&limit=100", contractAPIToken, nil).decode(t, &list)
	var out []protocol.RunSummary
	for _, r := range list.Runs {
		if r.Commit == commit {
			out = append(out, r)
		}
	}
	return out
}

// waitRunOf waits for a run of commit, planned from the inbox and
// started (its first jobs queued, the others pending, skipped or reused),
// and returns it.
func (f *forgeEnv) waitRunOf(t *testing.T, commit string) protocol.Run {
	t.Helper()
	deadline := time.Now().Add(forgeDeadline)
	for {
		if runs := f.runsOf(t, commit); len(runs) > 0 && runs[0].State != string(core.RunQueued) {
			return f.on(t).run(t.Context(), runs[0].ID)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no run of commit %s after %v; deliveries: %+v", commit, forgeDeadline, f.hooks(t).Deliveries)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRunState waits until run id is in state, and returns it.
func (f *forgeEnv) waitRunState(t *testing.T, id string, state core.RunState) protocol.Run {
	t.Helper()
	deadline := time.Now().Add(forgeDeadline)
	for {
		run := f.on(t).run(t.Context(), id)
		if run.State == string(state) {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is %s after %v, want %s", id, run.State, forgeDeadline, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// forgeRunner plays a shell runner through the runner protocol by hand,
// so that a test decides when each job starts and ends.
type forgeRunner struct {
	c *protocol.Client
	// held are the leases taken and not yet used, by run id and job.
	held map[string]protocol.Lease
}

func newForgeRunner(t *testing.T, e *contractEnv) *forgeRunner {
	t.Helper()
	ctx := t.Context()
	c := &protocol.Client{BaseURL: e.url, HTTP: e.http}
	reg, err := c.Register(ctx, contractRegToken, protocol.RegisterRequest{Name: "forge-runner", Labels: []string{api.ExecutorLabel("shell")}, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.Session(ctx, protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	c.Token = func(context.Context) (string, error) { return sess.Token, nil }
	return &forgeRunner{c: c, held: map[string]protocol.Lease{}}
}

// take leases attempts until it holds the one of job in run, and returns
// it; the others leased meanwhile are held for later.
func (r *forgeRunner) take(t *testing.T, runID, job string) protocol.Lease {
	t.Helper()
	deadline := time.Now().Add(forgeDeadline)
	for {
		if l, ok := r.held[runID+"/"+job]; ok {
			delete(r.held, runID+"/"+job)
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s of run %s was not leased within %v", job, runID, forgeDeadline)
		}
		l, err := r.c.Lease(t.Context(), time.Second) // the server caps the wait
		if err != nil {
			t.Fatalf("lease: %v", err)
		}
		if l != nil {
			r.held[l.RunID+"/"+l.Job] = *l
		}
	}
}

// start takes the job's attempt and starts it.
func (r *forgeRunner) start(t *testing.T, runID, job string) protocol.Lease {
	t.Helper()
	l := r.take(t, runID, job)
	if err := r.c.Start(t.Context(), l.AttemptID, l.LeaseToken); err != nil {
		t.Fatalf("start %s: %v", job, err)
	}
	return l
}

// end completes a started attempt as state.
func (r *forgeRunner) end(t *testing.T, l protocol.Lease, state core.AttemptState) {
	t.Helper()
	req := protocol.CompleteRequest{LeaseToken: l.LeaseToken, State: state, ExitCode: new(int)}
	switch state {
	case core.AttemptFailed:
		one := 1
		req.Reason, req.ExitCode = core.ReasonExitCode, &one
	case core.AttemptCanceled:
		req.Reason, req.ExitCode = core.ReasonCanceled, nil
	}
	if _, err := r.c.Complete(t.Context(), l.AttemptID, req); err != nil {
		t.Fatalf("complete %s as %s: %v", l.Job, state, err)
	}
}

// pass runs jobs of run to success, one after the other.
func (r *forgeRunner) pass(t *testing.T, runID string, jobs ...string) {
	t.Helper()
	for _, j := range jobs {
		r.end(t, r.start(t, runID, j), core.AttemptSucceeded)
	}
}

// acceptedOn is the statuses the forge took on sha, in arrival order.
func acceptedOn(reqs []forgetest.Request, sha string) []forge.Status {
	var out []forge.Status
	for _, r := range reqs {
		if r.Status != nil && strings.EqualFold(r.Commit, sha) {
			out = append(out, *r.Status)
		}
	}
	return out
}

// latestByContext is each context's last status.
func latestByContext(sts []forge.Status) map[string]forge.Status {
	out := map[string]forge.Status{}
	for _, s := range sts {
		out[s.Context] = s
	}
	return out
}

// isFinal reports whether a state is one a context ends in.
func isFinal(s forge.State) bool {
	return s != forge.Pending && s != forge.Running
}

// waitStatuses waits until the statuses shown on sha, each context's
// latest, satisfy ok, and returns them; what says what is awaited.
func (f *forgeEnv) waitStatuses(t *testing.T, sha, what string, ok func(map[string]forge.Status) bool) map[string]forge.Status {
	t.Helper()
	var out map[string]forge.Status
	done := false
	defer func() {
		if !done { // Wait failed the test and is ending it
			t.Logf("awaited on %.12s: %s; shown:%s", sha, what, describeStatuses(out))
		}
	}()
	f.forge.Wait(t, func(reqs []forgetest.Request) bool {
		out = latestByContext(acceptedOn(reqs, sha))
		return ok(out)
	}, forgeDeadline)
	done = true
	return out
}

// waitShown waits until context shows state with a description starting
// with prefix on sha.
func (f *forgeEnv) waitShown(t *testing.T, sha, context string, state forge.State, prefix string) forge.Status {
	t.Helper()
	got := f.waitStatuses(t, sha, context+" "+string(state), func(m map[string]forge.Status) bool {
		s, ok := m[context]
		return ok && s.State == state && strings.HasPrefix(s.Description, prefix)
	})
	return got[context]
}

// waitFinal waits until every one of contexts shows a final state on sha,
// then until the outbox is empty, and returns each context's latest
// status.
func (f *forgeEnv) waitFinal(t *testing.T, sha string, contexts ...string) map[string]forge.Status {
	t.Helper()
	f.waitStatuses(t, sha, "the final statuses of "+strings.Join(contexts, ", "), func(m map[string]forge.Status) bool {
		for _, c := range contexts {
			if s, ok := m[c]; !ok || !isFinal(s.State) {
				return false
			}
		}
		return true
	})
	f.waitDrained(t)
	return latestByContext(f.forge.Statuses(sha))
}

// waitDrained waits until the outbox holds nothing the forge lacks.
func (f *forgeEnv) waitDrained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(forgeDeadline)
	for {
		n, _, err := f.st.StatusBacklog(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the status outbox still holds %d after %v", n, forgeDeadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stateRank orders a context's states as they may follow each other:
// waiting, running, ended.
func stateRank(s forge.State) int {
	switch s {
	case forge.Pending:
		return 0
	case forge.Running:
		return 1
	}
	return 2
}

// checkNoRegress fails t when a context's statuses on sha, in arrival
// order, go backwards: a running or ended context shown waiting again, or
// an ended one shown anything else.
func checkNoRegress(t *testing.T, sha string, sts []forge.Status) {
	t.Helper()
	seen := map[string]forge.Status{}
	for i, s := range sts {
		prev, ok := seen[s.Context]
		seen[s.Context] = s
		if !ok {
			continue
		}
		if stateRank(s.State) < stateRank(prev.State) || isFinal(prev.State) && s != prev {
			t.Errorf("status %d of %s on %.12s went back: %s %q after %s %q", i, s.Context, sha, s.State, s.Description, prev.State, prev.Description)
		}
	}
}

// metricValue reads one series of the server's metrics ("name" or
// "name{labels}" as exposed), 0 when it is absent.
func (f *forgeEnv) metricValue(t *testing.T, series string) float64 {
	t.Helper()
	b := f.on(t).expect(t.Context(), http.StatusOK, "GET", "/metrics", nil, nil).body
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("metric %s = %q", series, m[1])
	}
	return v
}

// waitMetric waits until a series' value satisfies ok, and returns it.
func (f *forgeEnv) waitMetric(t *testing.T, series string, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(forgeDeadline)
	for {
		v := f.metricValue(t, series)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v after %v", series, v, forgeDeadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// atLeast is a condition of waitMetric.
func atLeast(min float64) func(float64) bool { return func(v float64) bool { return v >= min } }

// jobURL is the link a job's status carries.
func jobURL(runID, job string) string {
	u := forgeExternalURL + "/runs/" + runID
	if job != "" {
		u += "/jobs/" + job
	}
	return u
}

// describeStatuses renders statuses for a failure message.
func describeStatuses(m map[string]forge.Status) string {
	var b strings.Builder
	for c, s := range m {
		fmt.Fprintf(&b, "\n  %s: %s %q %s", c, s.State, s.Description, s.TargetURL)
	}
	return b.String()
}

// describeRequests renders forge requests for a failure message.
func describeRequests(reqs []forgetest.Request) string {
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "\n  %s %s → %d %v", r.Method, r.Path, r.Code, r.Body)
	}
	return b.String()
}

// showed reports whether context showed state among sts.
func showed(sts []forge.Status, context string, state forge.State) bool {
	for _, s := range sts {
		if s.Context == context && s.State == state {
			return true
		}
	}
	return false
}
