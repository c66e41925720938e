package main_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/giteatest"
	"github.com/deltaci/deltaci/internal/protocol"
)

// giteaPipeline has a job per kind of decision: app runs when app/
// changes, docs is reused when docs/ does not, release is skipped off
// release branches, and gate, once gate/wait.txt exists, waits for the
// gate file (%q), so that a run can be held running.
const giteaPipeline = `version: 1
jobs:
  app:
    inputs: ["app/**"]
    run: grep -q ok app/main.txt
  docs:
    inputs: ["docs/**"]
    run: test -f docs/index.md
  release:
    branches: ["release/*"]
    run: echo releasing
  gate:
    inputs: ["gate/**"]
    run: while [ -f gate/wait.txt ] && [ ! -f %q ]; do sleep 0.05; done
`

// TestGiteaWebhooksAndStatuses: pushes to a real Gitea reach the server by
// webhook and make runs on a real runner; every job's status, reused and
// skipped ones included, shows on the commit through Gitea's own API. A
// pull request from a fork runs untrusted, and a second push to it
// cancels the first run.
func TestGiteaWebhooksAndStatuses(t *testing.T) {
	t.Parallel()
	g := giteatest.Start(t)
	repo := g.CreateRepo(t, "mono")
	gate := newGate(t)
	srv := startServer(t, serverOpts{
		env:       []string{"DELTACI_SECRET_GITEA_TOKEN=" + g.Token},
		extraArgs: []string{"--external-url", "https://ci.example.test"},
	})
	const name = "mono"
	mustCLI(t, srv, "projects", "add", name, "--repo", repo.CloneURL, "--protected", "main", "--forge", "gitea",
		"--forge-repo", repo.Owner+"/"+repo.Name, "--forge-api", g.APIURL, "--forge-token-secret", "GITEA_TOKEN")
	hooks, err := srv.api.ProjectHooks(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://ci.example.test/api/v1/hooks/gitea/" + name; hooks.URL != want {
		t.Errorf("hook URL = %s, want %s", hooks.URL, want)
	}
	// Gitea posts to where the server listens; the URL above is what a
	// forge that reaches it by its external name would use.
	g.AddWebhook(t, repo, srv.url()+"/api/v1/hooks/gitea/"+name, hooks.Secret, []string{"push", "pull_request"})
	srv.startRunner(t, runnerOpts{})

	dir := repo1(t, gate)
	first := head(t, dir)
	g.Push(t, dir, repo, "main")
	run1 := srv.waitRunOf(t, first)
	if run1.State != string(core.RunSucceeded) || run1.Event != core.EventPush || !run1.Trusted {
		t.Fatalf("first run: %s", describeRun(&run1))
	}
	waitStatuses(t, g, repo, first, map[string]string{
		"deltaci": "success", "deltaci/app": "success", "deltaci/docs": "success", "deltaci/gate": "success", "deltaci/release": "success",
	})

	// Only app/ changes: docs is reused from the first run, release is
	// skipped, and both say so on the commit.
	write(t, dir, "app/main.txt", "ok again\n")
	git(t, dir, "commit", "-qam", "app: again")
	second := head(t, dir)
	g.Push(t, dir, repo, "main")
	run2 := srv.waitRunOf(t, second)
	if run2.State != string(core.RunSucceeded) || job(t, run2, "docs").State != string(core.JobReused) {
		t.Fatalf("second run: %s", describeRun(&run2))
	}
	got := waitStatuses(t, g, repo, second, map[string]string{
		"deltaci": "success", "deltaci/app": "success", "deltaci/docs": "success", "deltaci/gate": "success", "deltaci/release": "success",
	})
	if d := got["deltaci/docs"].Description; d != "reused: same inputs as run "+run1.ID {
		t.Errorf("deltaci/docs says %q, want it reused from run %s", d, run1.ID)
	}
	if d := got["deltaci/release"].Description; !strings.HasPrefix(d, "skipped: ") {
		t.Errorf("deltaci/release says %q, want skipped with its reason", d)
	}
	if u := got["deltaci"].TargetURL; u != "https://ci.example.test/runs/"+run2.ID {
		t.Errorf("deltaci links to %q", u)
	}

	// A pull request from bob's fork changes gate/, so its run holds in
	// gate; a second push to it cancels that run.
	_, bobToken := g.CreateUser(t, "bob")
	fork := g.Fork(t, repo, "bob", bobToken)
	git(t, dir, "checkout", "-qb", "feature")
	write(t, dir, "gate/wait.txt", "1\n")
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-qm", "gate: wait")
	prHead := head(t, dir)
	g.Push(t, dir, fork, "feature")
	g.CreatePullRequest(t, repo, "bob:feature", "main", "Wait at the gate", bobToken)
	pr1 := srv.waitRunWhere(t, "the pull request's run is running gate", func(r protocol.Run) bool {
		return r.Commit == prHead && job(t, r, "gate").State == string(core.JobRunning)
	})
	if pr1.Event != core.EventPullRequest || pr1.Trusted || !strings.Contains(pr1.TrustReason, "fork") || !strings.HasPrefix(pr1.Ref, "refs/pull/") {
		t.Fatalf("pull request run: %s (ref %s, trust %q)", describeRun(&pr1), pr1.Ref, pr1.TrustReason)
	}
	waitStatuses(t, g, repo, prHead, map[string]string{"deltaci/gate": "pending"})

	write(t, dir, "gate/wait.txt", "2\n")
	git(t, dir, "commit", "-qam", "gate: wait again")
	prHead2 := head(t, dir)
	g.Push(t, dir, fork, "feature")
	ended := srv.waitRunEnds(t, pr1.ID)
	if ended.State != string(core.RunCanceled) {
		t.Fatalf("the superseded run ended %s, want canceled", ended.State)
	}
	waitStatuses(t, g, repo, prHead, map[string]string{"deltaci": "error", "deltaci/gate": "error"})
	gate.open(t)
	pr2 := srv.waitRunOf(t, prHead2)
	if pr2.State != string(core.RunSucceeded) || pr2.Event != core.EventPullRequest {
		t.Fatalf("second pull request run: %s", describeRun(&pr2))
	}
	waitStatuses(t, g, repo, prHead2, map[string]string{"deltaci": "success", "deltaci/gate": "success"})
}

// head is the commit dir has checked out.
func head(t *testing.T, dir string) string {
	return strings.TrimSpace(git(t, dir, "rev-parse", "HEAD"))
}

// repo1 is the working copy the Gitea test pushes from: the pipeline and
// one file per job's inputs, committed on main.
func repo1(t *testing.T, g gate) string {
	return repo(t, map[string]string{
		".deltaci.yml":  fmt.Sprintf(giteaPipeline, string(g)),
		"app/main.txt":  "ok\n",
		"docs/index.md": "# docs\n",
		"gate/README":   "held\n",
	})
}

// waitRunOf waits for the run of commit to end and returns it.
func (s *server) waitRunOf(t *testing.T, commit string) protocol.Run {
	t.Helper()
	r := s.waitRunWhere(t, "a run of "+commit[:12], func(r protocol.Run) bool { return r.Commit == commit })
	return s.waitRunEnds(t, r.ID)
}

// waitRunWhere waits for a run, among the latest, for which cond holds.
func (s *server) waitRunWhere(t *testing.T, what string, cond func(protocol.Run) bool) protocol.Run {
	t.Helper()
	var found protocol.Run
	eventually(t, what, func() bool {
		page, err := s.api.Runs(t.Context(), protocol.RunFilter{Limit: 20})
		if err != nil {
			t.Fatal(err)
		}
		for _, sum := range page.Runs {
			r, err := s.api.Run(t.Context(), sum.ID)
			if err != nil {
				t.Fatal(err)
			}
			if cond(r) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// waitStatuses waits until each context of want shows its state on commit
// in Gitea, and returns the latest status of every context.
func waitStatuses(t *testing.T, g *giteatest.Gitea, repo giteatest.Repo, commit string, want map[string]string) map[string]giteatest.Status {
	t.Helper()
	var latest map[string]giteatest.Status
	deadline := time.Now().Add(90 * time.Second)
	for {
		latest = map[string]giteatest.Status{}
		// Newest first: the first of a context is its latest.
		for _, st := range g.Statuses(t, repo, commit) {
			if _, ok := latest[st.Context]; !ok {
				latest[st.Context] = st
			}
		}
		missing := ""
		for c, state := range want {
			if latest[c].State != state {
				missing += fmt.Sprintf(" %s=%s (has %q)", c, state, latest[c].State)
			}
		}
		if missing == "" {
			return latest
		}
		if time.Now().After(deadline) {
			t.Fatalf("statuses of %s in Gitea: want%s; have %v", commit[:12], missing, latest)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(context.Cause(t.Context()))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
