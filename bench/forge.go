package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/protocol"
)

// The forge the harness's project reports to: a GitHub-shaped status
// endpoint on loopback, its repository and the token it takes.
const (
	forgeRepo        = "bench/forge"
	forgeTokenSecret = "FORGE_TOKEN"
	forgeToken       = "bench-forge-token"
)

// benchForge measures the Status Reporter of a `deltaci server` (SQLite)
// with a `deltaci runner` process and a recording forge: over single-job
// runs made one after another by signed GitHub push deliveries, the time
// from sending the delivery to the first status of its commit arriving at
// the forge, and from the job's process exiting to the job's final status
// arriving. The baseline is a status POST from the harness to the same
// recorder: what the network and the recorder cost.
func benchForge(ctx context.Context, h *harness) ([]Result, error) {
	n := 50
	if h.quick {
		n = 5
	}
	rec := newRecorder()
	defer rec.srv.Close()
	hc := httpClient()
	rtts, err := rec.roundTrips(ctx, hc, n)
	if err != nil {
		return nil, err
	}

	secrets := filepath.Join(h.dir, "forge-secrets")
	if err := os.WriteFile(secrets, []byte(forgeTokenSecret+"="+forgeToken+"\n"), 0o600); err != nil {
		return nil, err
	}
	srv, err := h.startDeltaci(ctx, "forge", "--secrets-file", secrets)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	base := "http://" + srv.addr
	lines := make(chan string, 1024)
	runner, err := h.startShellRunner(ctx, base, "forge-runner", lines)
	if err != nil {
		return nil, err
	}
	defer runner.stop()

	// The job outlasts a poll of the outbox, so that the run's first
	// status is pending, as it is for any job longer than a moment.
	repo, err := h.gitRepo(ctx, "forge-repo", map[string]string{".deltaci.yml": jobsFile(1, "sleep 0.5")})
	if err != nil {
		return nil, err
	}
	user := &protocol.Client{BaseURL: base, HTTP: hc, Token: apiToken}
	name := filepath.Base(repo)
	_, err = user.AddProject(ctx, protocol.Project{Name: name, RepoURL: repo, ProtectedBranches: []string{"main"},
		Forge: &protocol.ProjectForge{Kind: "github", APIURL: rec.srv.URL, Repo: forgeRepo, TokenSecret: forgeTokenSecret}})
	if err != nil {
		return nil, fmt.Errorf("registering %s as a project: %w", repo, err)
	}
	hooks, err := user.ProjectHooks(ctx, name)
	if err != nil {
		return nil, err
	}
	before, err := gitHead(ctx, repo)
	if err != nil {
		return nil, err
	}
	var s forgeSamples
	for i := 0; i < n; i++ {
		after, err := gitCommitCounter(ctx, repo, i)
		if err != nil {
			return nil, err
		}
		d := delivery{url: base + "/api/v1/hooks/github/" + name, secret: hooks.Secret,
			id: fmt.Sprintf("forge-bench-%04d", i), before: before, after: after}
		if err := forgeOnce(ctx, hc, rec, user, name, d, lines, &s); err != nil {
			return nil, err
		}
		before = after
	}
	return s.results(n, rtts), nil
}

// forgeSamples are the times taken over the deliveries.
type forgeSamples struct {
	firstStatus []time.Duration // delivery sent → first status of its commit at the forge
	answered    []time.Duration // delivery sent → the server's 202
	created     []time.Duration // delivery sent → the run's created_at
	firstAfter  []time.Duration // the run's created_at → first status
	final       []time.Duration // job's process exit → its final status at the forge
	completed   []time.Duration // job's process exit → the attempt's finished_at
	finalAfter  []time.Duration // the attempt's finished_at → its final status
	firstStates map[string]int  // the state of the first status, counted
}

// delivery is one signed GitHub push delivery of a commit on main.
type delivery struct {
	url, secret, id, before, after string
}

// send posts the delivery and returns when it was sent and the answer.
func (d delivery) send(ctx context.Context, hc *http.Client) (time.Time, protocol.HookAnswer, error) {
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": d.before, "after": d.after,
		"head_commit": map[string]any{"id": d.after, "message": "bench " + d.id},
		"repository":  map[string]any{"id": 1, "full_name": forgeRepo},
		"sender":      map[string]any{"login": "bench"},
	})
	if err != nil {
		return time.Time{}, protocol.HookAnswer{}, err
	}
	mac := hmac.New(sha256.New, []byte(d.secret))
	mac.Write(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return time.Time{}, protocol.HookAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", d.id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	sent := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return sent, protocol.HookAnswer{}, err
	}
	defer resp.Body.Close()
	var a protocol.HookAnswer
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &a) != nil || a.Result != "queued" {
		return sent, a, fmt.Errorf("delivery %s answered %s: %s", d.id, resp.Status, raw)
	}
	return sent, a, nil
}

// forgeOnce sends one delivery and waits until the run it makes has
// posted its final statuses, so that the next one starts on an idle
// server; it adds the delivery's times to s.
func forgeOnce(ctx context.Context, hc *http.Client, rec *recorder, user *protocol.Client, project string,
	d delivery, lines <-chan string, s *forgeSamples) error {
	const job = "deltaci/j0000"
	// The reporter polls on a ticker, and the previous delivery ended
	// just after one of its posts: a delivery sent at once would always
	// come at the same point of the ticker's period. Forges send them at
	// any point.
	select {
	case <-time.After(rand.N(api.DefaultStatusPoll)):
	case <-ctx.Done():
		return ctx.Err()
	}
	sent, _, err := d.send(ctx, hc)
	if err != nil {
		return err
	}
	answered := time.Now()
	first, err := rec.wait(ctx, d.after, func(posted) bool { return true })
	if err != nil {
		return err
	}
	final, err := rec.wait(ctx, d.after, func(p posted) bool { return p.context == job && p.final() })
	if err != nil {
		return err
	}
	if _, err := rec.wait(ctx, d.after, func(p posted) bool { return p.context == "deltaci" && p.final() }); err != nil {
		return err
	}
	if final.state != "success" {
		return fmt.Errorf("commit %s: %s posted %s %q", d.after, job, final.state, final.description)
	}
	runID, err := deliveredRun(ctx, user, project, d.id)
	if err != nil {
		return err
	}
	run, err := user.Run(ctx, runID)
	if err != nil {
		return err
	}
	if len(run.Jobs) != 1 || len(run.Jobs[0].Attempts) != 1 || run.Jobs[0].Attempts[0].FinishedAt == nil {
		return fmt.Errorf("run %s did not run its one job once: %+v", run.ID, run.Jobs)
	}
	exited, err := jobEnded(lines, runID)
	if err != nil {
		return err
	}
	finished := *run.Jobs[0].Attempts[0].FinishedAt
	s.firstStatus = append(s.firstStatus, first.at.Sub(sent))
	s.answered = append(s.answered, answered.Sub(sent))
	s.created = append(s.created, run.CreatedAt.Sub(sent))
	s.firstAfter = append(s.firstAfter, first.at.Sub(run.CreatedAt))
	s.final = append(s.final, final.at.Sub(exited))
	s.completed = append(s.completed, finished.Sub(exited))
	s.finalAfter = append(s.finalAfter, final.at.Sub(finished))
	if s.firstStates == nil {
		s.firstStates = map[string]int{}
	}
	s.firstStates[first.context+" "+first.state]++
	return nil
}

// results are the four figures, each against the recorder's round trip
// at the same quantile.
func (s *forgeSamples) results(n int, rtts []time.Duration) []Result {
	med := func(xs []time.Duration) float64 { return percentile(xs, 0.5) }
	var firsts []string
	for k, c := range s.firstStates {
		firsts = append(firsts, fmt.Sprintf("%s ×%d", k, c))
	}
	slices.Sort(firsts)
	poll := fmt.Sprintf("the server looks for statuses to post every %d ms (its StatusPoll default); p99 is the nearest rank, of %d samples the largest",
		api.DefaultStatusPoll.Milliseconds(), n)
	hookNote := fmt.Sprintf("%s; medians: sent → 202 %.1f ms, sent → run created_at %.1f ms, created_at → first status %.1f ms; first statuses: %s; times from the server are to the millisecond",
		poll, med(s.answered), med(s.created), med(s.firstAfter), strings.Join(firsts, ", "))
	jobNote := fmt.Sprintf("%s; exit is the time of the runner's \"job ended\" log line, written as the job's process returns; medians: exit → attempt finished_at %.1f ms, finished_at → final status %.1f ms",
		poll, med(s.completed), med(s.finalAfter))
	figure := func(what string, xs []time.Duration, q float64, goal float64, note string) Result {
		v, base := percentile(xs, q), percentile(rtts, q)
		quant := fmt.Sprintf("p%.0f", q*100)
		return Result{
			Name: fmt.Sprintf("%s %s (%d pushes, SQLite)", what, quant, n), Value: v, Unit: "ms",
			Baseline: "status POST to the same forge, round trip " + quant + " ms", BaselineValue: base, Ratio: v / base,
			Goal: fmt.Sprintf("<= %.0f ms", goal), Met: v <= goal, Note: note,
		}
	}
	const hook, job = "webhook sent → its commit's first status posted", "job's process exit → its final status posted"
	return []Result{
		figure(hook, s.firstStatus, 0.5, 300, hookNote),
		figure(hook, s.firstStatus, 0.99, 500, ""),
		figure(job, s.final, 0.5, 300, jobNote),
		figure(job, s.final, 0.99, 500, ""),
	}
}

// deliveredRun is the run the server made of a delivery.
func deliveredRun(ctx context.Context, user *protocol.Client, project, id string) (string, error) {
	hooks, err := user.ProjectHooks(ctx, project)
	if err != nil {
		return "", err
	}
	for _, d := range hooks.Deliveries {
		if d.Delivery == id {
			if d.RunID == "" {
				return "", fmt.Errorf("delivery %s is %s with no run: %s", id, d.State, d.Message)
			}
			return d.RunID, nil
		}
	}
	return "", fmt.Errorf("the server lists no delivery %s", id)
}

// jobEnded reads the runner's log lines up to its "job ended" line for
// the run's job and returns that line's time.
func jobEnded(lines <-chan string, runID string) (time.Time, error) {
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line := <-lines:
			var l struct {
				Time  time.Time
				Msg   string
				RunID string `json:"run_id"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "job ended" && l.RunID == runID {
				return l.Time, nil
			}
		case <-timeout:
			return time.Time{}, fmt.Errorf("the runner logged no \"job ended\" line for run %s", runID)
		}
	}
}

// gitHead is the commit a repository's HEAD names.
func gitHead(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "HEAD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git rev-parse HEAD: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// gitCommitCounter commits a file holding i on the repository's branch
// and returns the new commit.
func gitCommitCounter(ctx context.Context, dir string, i int) (string, error) {
	if err := os.WriteFile(filepath.Join(dir, "counter"), []byte(strconv.Itoa(i)+"\n"), 0o644); err != nil {
		return "", err
	}
	for _, args := range [][]string{{"add", "counter"}, {"commit", "-q", "-m", "counter " + strconv.Itoa(i)}} {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "commit.gpgsign=false",
			"-c", "user.name=bench", "-c", "user.email=bench@example.com"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("git %v: %w\n%s", args, err, out)
		}
	}
	return gitHead(ctx, dir)
}

// posted is one status the recorder took.
type posted struct {
	sha, context, state, description string
	at                               time.Time
}

// final reports whether the status is one GitHub shows as ended.
func (p posted) final() bool { return p.state != "pending" }

// recorder is a GitHub-shaped commit status endpoint that records when
// each status arrived: POST /repos/{owner}/{repo}/statuses/{sha} with
// the bearer token forgeToken answers 201.
type recorder struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []posted
	refused []string
	changed chan struct{} // closed and replaced on every request
}

func newRecorder() *recorder {
	r := &recorder{changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /repos/{owner}/{repo}/statuses/{sha}", r.status)
	r.srv = httptest.NewServer(mux)
	return r
}

func (r *recorder) status(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	var body struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
		Context     string `json:"context"`
	}
	err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&body)
	code, why := http.StatusCreated, ""
	switch {
	case req.Header.Get("Authorization") != "Bearer "+forgeToken:
		code, why = http.StatusUnauthorized, "wrong token"
	case req.PathValue("owner")+"/"+req.PathValue("repo") != forgeRepo:
		code, why = http.StatusNotFound, "no repository "+req.PathValue("owner")+"/"+req.PathValue("repo")
	case err != nil:
		code, why = http.StatusBadRequest, err.Error()
	case !strings.Contains(" pending success failure error ", " "+body.State+" "):
		code, why = http.StatusUnprocessableEntity, "state "+body.State
	}
	r.mu.Lock()
	if why == "" {
		r.got = append(r.got, posted{sha: req.PathValue("sha"), context: body.Context, state: body.State, description: body.Description, at: at})
	} else {
		r.refused = append(r.refused, why)
	}
	close(r.changed)
	r.changed = make(chan struct{})
	id := len(r.got)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if why != "" {
		json.NewEncoder(w).Encode(map[string]string{"message": why})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"id": id, "state": body.State, "description": body.Description,
		"target_url": body.TargetURL, "context": body.Context, "created_at": at.UTC().Format(time.RFC3339)})
}

// wait returns the first status of sha that match accepts, waiting for it
// up to 30 seconds.
func (r *recorder) wait(ctx context.Context, sha string, match func(posted) bool) (posted, error) {
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		for _, p := range r.got {
			if p.sha == sha && match(p) {
				r.mu.Unlock()
				return p, nil
			}
		}
		changed, refused, seen := r.changed, r.refused, r.shown(sha)
		r.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return posted{}, ctx.Err()
		case <-deadline:
			return posted{}, fmt.Errorf("commit %s: the awaited status did not arrive in 30 s; arrived: %s; refused: %q", sha, seen, refused)
		}
	}
}

// shown lists the statuses of sha taken so far; r.mu is held.
func (r *recorder) shown(sha string) string {
	var s []string
	for _, p := range r.got {
		if p.sha == sha {
			s = append(s, p.context+" "+p.state+" "+strconv.Quote(p.description))
		}
	}
	return strings.Join(s, ", ")
}

// roundTrips posts n statuses of a commit no run has to the recorder, as
// the server would post them, after 10 that open the connection, and
// returns their round trips.
func (r *recorder) roundTrips(ctx context.Context, hc *http.Client, n int) ([]time.Duration, error) {
	body := []byte(`{"state":"pending","description":"queued","context":"deltaci"}`)
	url := r.srv.URL + "/repos/" + forgeRepo + "/statuses/" + strings.Repeat("0", 40)
	out := make([]time.Duration, 0, n)
	for i := 0; i < n+10; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+forgeToken)
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return nil, fmt.Errorf("the recorder answered %s", resp.Status)
		}
		if i >= 10 {
			out = append(out, time.Since(start))
		}
	}
	return out, nil
}
