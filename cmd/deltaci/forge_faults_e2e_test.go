package main_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/forge"
	"github.com/deltaci/deltaci/internal/forge/forgetest"
	"github.com/deltaci/deltaci/internal/protocol"
)

// Fault injection around the forges: a real server and runner, a
// recording GitHub (forgetest) that the test slows down or takes down,
// and webhook deliveries the test signs as GitHub does.

// leaseArgs shorten the claims on the outbox and the inbox, for the tests
// that kill a server holding some: the restarted server takes them over
// once they pass (a minute, and six, by default).
var leaseArgs = []string{"--status-lease", "3s", "--inbox-lease", "3s"}

// forgeSetup is a server whose project reports to a recording GitHub.
type forgeSetup struct {
	forge *forgetest.Server
	srv   *server
	dir   string // the project's repository
	name  string // the project
}

// newForgeSetup starts a recording GitHub and a server that posts to it
// with its token, and registers a repository holding pipeline as a
// project of that forge. o holds more of the server's settings.
func newForgeSetup(t *testing.T, database, pipeline string, o serverOpts) *forgeSetup {
	t.Helper()
	f := &forgeSetup{forge: forgetest.New(t, forge.GitHub)}
	o.database = database
	o.env = append(o.env, "DELTACI_SECRET_GH_TOKEN="+f.forge.Token)
	o.extraArgs = append([]string{"--external-url", "https://ci.example.test"}, o.extraArgs...)
	f.srv = startServer(t, o)
	f.dir = repo(t, map[string]string{".deltaci.yml": pipeline})
	f.name = f.srv.project(t, f.dir, "--forge", "github", "--forge-repo", f.forge.Repo,
		"--forge-api", f.forge.APIURL(), "--forge-token-secret", "GH_TOKEN")
	return f
}

// shown is a status as the forge shows it: its state and description.
type shown struct{ state, description string }

// latest is the last status of each context the forge took on commit.
func (f *forgeSetup) latest(commit string) map[string]forge.Status {
	out := map[string]forge.Status{}
	for _, st := range f.forge.Statuses(commit) {
		out[st.Context] = st
	}
	return out
}

// waitShown waits until every context of want shows its state (and its
// description, when want has one) on commit.
func (f *forgeSetup) waitShown(t *testing.T, commit string, want map[string]shown) {
	t.Helper()
	holds := func() bool {
		got := f.latest(commit)
		for c, w := range want {
			st, ok := got[c]
			if !ok || string(st.State) != w.state || (w.description != "" && st.Description != w.description) {
				return false
			}
		}
		return true
	}
	f.forge.Wait(t, func([]forgetest.Request) bool { return holds() }, 2*waitLong)
}

// finalStates are the states a context ends in on GitHub.
var finalStates = map[forge.State]bool{forge.Success: true, forge.Failure: true, forge.Error: true}

// assertNoRegression checks, in the order the forge took them, that no
// context of commit went back from a final state: a user who saw a check
// pass must never see it pending again.
func (f *forgeSetup) assertNoRegression(t *testing.T, commit string) {
	t.Helper()
	final := map[string]forge.Status{}
	for i, st := range f.forge.Statuses(commit) {
		if was, ok := final[st.Context]; ok && st != was {
			t.Errorf("status %d: %s went from %s %q back to %s %q", i, st.Context, was.State, was.Description, st.State, st.Description)
		}
		if finalStates[st.State] {
			final[st.Context] = st
		}
	}
}

// faultContexts are the contexts of faultPipeline's run.
var faultContexts = []string{"deltaci", "deltaci/left", "deltaci/right", "deltaci/join"}

// allPassed is what the forge shows once faultPipeline's run passed.
func allPassed() map[string]shown {
	want := map[string]shown{"deltaci": {"success", "3 jobs passed"}}
	for _, c := range faultContexts[1:] {
		want[c] = shown{state: "success"}
	}
	return want
}

// runningOnForge waits until the forge shows left and right running.
func (f *forgeSetup) runningOnForge(t *testing.T, commit string) {
	t.Helper()
	// GitHub has no running state: it shows pending, with our words.
	f.waitShown(t, commit, map[string]shown{
		"deltaci/left": {"pending", "running"}, "deltaci/right": {"pending", "running"}, "deltaci/join": {"pending", "waiting for left, right"},
	})
}

// TestForgeStatusesSurviveServerKilledMidPost: the forge is slow, a post
// is in flight when the server is killed and the jobs end meanwhile.
// After a restart every context's final state reaches the forge, and none
// ever goes from passed back to pending.
func TestForgeStatusesSurviveServerKilledMidPost(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, func(t *testing.T, database string) {
		g, doneDir := newGate(t), t.TempDir()
		f := newForgeSetup(t, database, faultPipeline(g, doneDir), serverOpts{extraArgs: leaseArgs})
		f.srv.startRunner(t, runnerOpts{capacity: 2})
		run := f.srv.createRun(t, f.dir, "main")
		f.runningOnForge(t, run.Commit)

		f.forge.Stall()
		g.open(t)
		eventually(t, "the forge holds a status post", func() bool { return f.forge.Stalled() > 0 })
		f.srv.kill(t)
		before := len(f.forge.Requests())
		// The forge applies the posts their sender died waiting for, before
		// the server is back, as a forge that is slow (not lost) does.
		f.forge.Release()
		eventually(t, "the forge has applied the posts it held", func() bool { return f.forge.InFlight() == 0 })
		released := f.forge.Requests()[before:]
		if len(released) == 0 {
			t.Fatal("the forge applied no post after the kill")
		}
		for _, r := range released {
			if r.Status == nil {
				t.Fatalf("a post in flight at the kill was refused: %d %v", r.Code, r.Body)
			}
			t.Logf("in flight at the kill: %s %s %q", r.Status.Context, r.Status.State, r.Status.Description)
		}
		f.srv.restart(t)

		ended := f.srv.waitRunEnds(t, run.ID)
		if ended.State != string(core.RunSucceeded) {
			t.Fatalf("the run did not survive the kill: %s\n%s", describeRun(&ended), f.srv.logsOf(t, ended))
		}
		f.waitShown(t, run.Commit, allPassed())
		f.assertNoRegression(t, run.Commit)
	})
}

// TestForgeStatusesAfterForgeOutage: the forge is down while a run on a
// real runner ends. The server keeps trying, no more than
// --status-retry-max apart, and once the forge is back every context shows
// its final state, none regressed.
func TestForgeStatusesAfterForgeOutage(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, func(t *testing.T, database string) {
		const retryMax = time.Second
		g, doneDir := newGate(t), t.TempDir()
		f := newForgeSetup(t, database, faultPipeline(g, doneDir), serverOpts{extraArgs: []string{"--status-retry-max", retryMax.String()}})
		f.srv.startRunner(t, runnerOpts{capacity: 2})
		run := f.srv.createRun(t, f.dir, "main")
		f.runningOnForge(t, run.Commit)

		f.forge.Down()
		g.open(t)
		ended := f.srv.waitRunEnds(t, run.ID)
		if ended.State != string(core.RunSucceeded) {
			t.Fatalf("run: %s\n%s", describeRun(&ended), f.srv.logsOf(t, ended))
		}
		// Tried again and again while the forge is away.
		f.srv.waitRecord(t, "commit status will be posted again", 3)
		f.forge.Up()

		f.waitShown(t, run.Commit, allPassed())
		f.assertNoRegression(t, run.Commit)
		for _, rec := range f.srv.records() {
			if rec["msg"] != "commit status will be posted again" {
				continue
			}
			if wait, _ := rec["wait"].(float64); time.Duration(wait) > retryMax {
				t.Errorf("a retry waited %s, over --status-retry-max %s: %v", time.Duration(wait), retryMax, rec)
			}
		}
		eventually(t, "the outbox is empty and the retries counted", func() bool {
			m := f.srv.metrics(t)
			return m["deltaci_status_outbox_depth"] == 0 && m[`deltaci_status_failures_total{forge="github",outcome="retry"}`] >= 4
		})
	})
}

// TestForgeWebhookReplayedAndKilled: a delivery can come again (a forge's
// or an operator's redelivery), even while the first is being answered.
// The same delivery sent twice at once, and again after a restart, makes
// one run; a delivery stored just before the server is killed, while it
// is being planned, is planned after the restart, once.
func TestForgeWebhookReplayedAndKilled(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, func(t *testing.T, database string) {
		hold, held, env := heldGit(t)
		f := newForgeSetup(t, database, "version: 1\njobs:\n  build:\n    run: echo built\n", serverOpts{env: env, extraArgs: leaseArgs})
		var hooks protocol.ProjectHooks
		if err := json.Unmarshal([]byte(mustCLI(t, f.srv, "projects", "hooks", f.name, "--json")), &hooks); err != nil {
			t.Fatal(err)
		}
		first := strings.TrimSpace(git(t, f.dir, "rev-parse", "HEAD"))
		push := f.pushDelivery(t, hooks.Secret, "", first)

		// Twice at once: one is stored, the other is told it is a replay.
		answers := make([]int, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range answers {
			wg.Go(func() {
				<-start
				answers[i], _ = f.srv.sendHook(t, f.name, push)
			})
		}
		close(start)
		wg.Wait()
		if !(answers[0] == http.StatusAccepted && answers[1] == http.StatusOK || answers[0] == http.StatusOK && answers[1] == http.StatusAccepted) {
			t.Fatalf("the same delivery twice at once was answered %v, want one 202 (queued) and one 200 (duplicate)", answers)
		}
		run1, _ := f.waitDelivery(t, push.id)

		f.srv.kill(t)
		f.srv.restart(t)
		if code, ans := f.srv.sendHook(t, f.name, push); code != http.StatusOK || ans.Result != "duplicate" {
			t.Fatalf("the delivery again after a restart: %d %+v, want 200 duplicate", code, ans)
		}
		if n := f.srv.metrics(t)[`deltaci_webhook_deliveries_total{forge="github",result="duplicate"}`]; n != 1 {
			t.Errorf("the restarted server counted %v duplicate deliveries, want 1", n)
		}

		// A new commit's delivery, and the server dies after its answer,
		// while it plans the delivery: its fetch of the commit hangs.
		write(t, f.dir, "second.txt", "2\n")
		git(t, f.dir, "add", ".")
		git(t, f.dir, "commit", "-qm", "second")
		second := strings.TrimSpace(git(t, f.dir, "rev-parse", "HEAD"))
		next := f.pushDelivery(t, hooks.Secret, first, second)
		write(t, filepath.Dir(hold), filepath.Base(hold), "")
		if code, ans := f.srv.sendHook(t, f.name, next); code != http.StatusAccepted || ans.Result != "queued" {
			t.Fatalf("the second delivery: %d %+v, want 202 queued", code, ans)
		}
		eventually(t, "the server's git waits", func() bool {
			_, err := os.Stat(held)
			return err == nil
		})
		f.srv.kill(t)
		if err := os.Remove(hold); err != nil {
			t.Fatal(err)
		}
		f.srv.restart(t)
		run2, d := f.waitDelivery(t, next.id)
		if d.Tries != 2 {
			t.Errorf("the second delivery was claimed %d times, want 2 (by the killed server, then by the restarted one)", d.Tries)
		}

		if run1.Commit != first || run2.Commit != second || run1.Event != core.EventPush || run2.Event != core.EventPush {
			t.Errorf("runs: %s of %s (%s), %s of %s (%s)", run1.ID, run1.Commit, run1.Event, run2.ID, run2.Commit, run2.Event)
		}
		page, err := f.srv.api.Runs(t.Context(), protocol.RunFilter{Project: f.name})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Runs) != 2 {
			t.Errorf("the project has %d runs, want 2 (one per delivery): %+v", len(page.Runs), page.Runs)
		}
		got, err := f.srv.api.ProjectHooks(t.Context(), f.name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Deliveries) != 2 {
			t.Errorf("the server stored %d deliveries, want 2: %+v", len(got.Deliveries), got.Deliveries)
		}
		// The run planned after the restart reports to the forge too.
		f.waitShown(t, second, map[string]shown{"deltaci": {state: "pending"}})
	})
}

// heldGit puts a git first in the server's PATH that, while the file
// hold exists, marks the file held and waits before it runs the real git:
// a fetch that hangs. It returns both paths and the server's environment.
func heldGit(t *testing.T) (hold, held string, env []string) {
	t.Helper()
	real, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	bin, state := t.TempDir(), t.TempDir()
	hold, held = filepath.Join(state, "hold"), filepath.Join(state, "held")
	script := fmt.Sprintf("#!/bin/sh\nif [ -e '%[1]s' ]; then\n  touch '%[2]s'\n  while [ -e '%[1]s' ]; do sleep 0.05; done\nfi\nexec '%[3]s' \"$@\"\n", hold, held, real)
	// No fork while the script is open for writing (see gitShim).
	syscall.ForkLock.RLock()
	err = os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755)
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	return hold, held, []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}
}

// hookDelivery is a webhook delivery as GitHub sends it.
type hookDelivery struct {
	id, event string
	body      []byte
	secret    string
}

// pushDelivery is GitHub's push of after on main (before it, before; a
// new branch when before is empty), signed with secret.
func (f *forgeSetup) pushDelivery(t *testing.T, secret, before, after string) hookDelivery {
	t.Helper()
	if before == "" {
		before = strings.Repeat("0", 40)
	}
	owner, _, _ := strings.Cut(f.forge.Repo, "/")
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": before, "after": after,
		"created": before == strings.Repeat("0", 40), "deleted": false, "forced": false,
		"compare":     "https://github.com/" + f.forge.Repo + "/compare/" + before[:12] + "..." + after[:12],
		"head_commit": map[string]any{"id": after, "message": "a commit", "distinct": true},
		"commits":     []any{map[string]any{"id": after, "message": "a commit", "distinct": true}},
		"repository": map[string]any{
			"id": 1296269, "name": strings.TrimPrefix(f.forge.Repo, owner+"/"), "full_name": f.forge.Repo,
			"owner": map[string]any{"login": owner}, "default_branch": "main",
		},
		"pusher": map[string]any{"name": "octocat"},
		"sender": map[string]any{"login": "octocat", "id": 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	// GitHub's delivery ids are UUIDs; this one is made of the commit.
	id := after[:8] + "-" + after[8:12] + "-" + after[12:16] + "-" + after[16:20] + "-" + after[20:32]
	return hookDelivery{id: id, event: "push", body: body, secret: secret}
}

// sendHook posts d to the server's hook URL for project with GitHub's
// headers and signature, and returns the answer.
func (s *server) sendHook(t *testing.T, project string, d hookDelivery) (int, protocol.HookAnswer) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url()+"/api/v1/hooks/github/"+project, bytes.NewReader(d.body))
	if err != nil {
		t.Error(err)
		return 0, protocol.HookAnswer{}
	}
	mac := hmac.New(sha256.New, []byte(d.secret))
	mac.Write(d.body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/044aadd")
	req.Header.Set("X-GitHub-Event", d.event)
	req.Header.Set("X-GitHub-Delivery", d.id)
	req.Header.Set("X-GitHub-Hook-ID", "292430182")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("delivering %s: %v", d.id, err)
		return 0, protocol.HookAnswer{}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var ans protocol.HookAnswer
	if resp.StatusCode/100 != 2 {
		t.Logf("delivering %s: answered %d %s", d.id, resp.StatusCode, data)
	} else if err := json.Unmarshal(data, &ans); err != nil {
		t.Errorf("delivering %s: answer %d %q: %v", d.id, resp.StatusCode, data, err)
	}
	return resp.StatusCode, ans
}

// waitDelivery waits until the server has planned delivery id, checks it
// made a run, and returns that run and the delivery.
func (f *forgeSetup) waitDelivery(t *testing.T, id string) (protocol.Run, protocol.HookDelivery) {
	t.Helper()
	var d protocol.HookDelivery
	eventually(t, "delivery "+id+" is planned", func() bool {
		h, err := f.srv.api.ProjectHooks(t.Context(), f.name)
		if err != nil {
			if !protocol.IsTransient(err) {
				t.Fatal(err)
			}
			return false
		}
		for _, hd := range h.Deliveries {
			if hd.Delivery == id {
				d = hd
			}
		}
		return d.State != "" && d.State != "pending"
	})
	if d.State != "done" || d.RunID == "" {
		t.Fatalf("delivery %s: %+v, want done with a run", id, d)
	}
	run, err := f.srv.api.Run(t.Context(), d.RunID)
	if err != nil {
		t.Fatal(err)
	}
	return run, d
}

// metrics scrapes the server's /metrics into sample name (with labels)
// → value.
func (s *server) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get(s.url() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}
