package api_test

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/forge"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/protocol"
)

// Contract tests of webhooks in and commit statuses out: the forges'
// published deliveries (octokit's examples of GitHub's, GitLab's
// documented ones) rewritten to a real repository, sent to a server in
// this process through a client that checks our OpenAPI document, and the
// statuses it posts taken by a recording forge that checks GitHub's
// OpenAPI description or GitLab's documented parameters.

// forgePushPipeline has a job whose inputs a push changes, one whose
// inputs it leaves alone, and one that main's branch filter skips.
const forgePushPipeline = `version: 1
jobs:
  build:
    inputs: ["src/**"]
    run: make
  docs:
    inputs: ["docs/**"]
    run: make docs
  deploy:
    branches: ["release/*"]
    run: make deploy
`

// forgePRPipeline has a job for every branch and one for main only.
const forgePRPipeline = `version: 1
jobs:
  test:
    run: make test
  deploy:
    branches: [main]
    run: make deploy
`

// zeroID is the commit id forges send for a ref that does not exist.
const zeroID = "0000000000000000000000000000000000000000"

// githubPush is octokit's push example as a push of main from before to
// after, whose head commit says msg.
func githubPush(t *testing.T, before, after, msg string) map[string]any {
	t.Helper()
	p := hookPayload(t, "github-webhooks/push.branch-created.json")
	setField(t, p, "ref", "refs/heads/main")
	setField(t, p, "before", before)
	setField(t, p, "after", after)
	setField(t, p, "created", before == zeroID)
	setField(t, p, "head_commit.id", after)
	setField(t, p, "head_commit.message", msg)
	setField(t, p, "commits.0.id", after)
	setField(t, p, "commits.0.message", msg)
	return p
}

// githubPull is octokit's pull_request example file rewritten to pull
// request number from a fork's branch at head into main at base.
func githubPull(t *testing.T, file string, number int, branch, head, base string) map[string]any {
	t.Helper()
	p := hookPayload(t, "github-webhooks/"+file)
	setField(t, p, "number", number)
	setField(t, p, "pull_request.number", number)
	setField(t, p, "pull_request.head.ref", branch)
	setField(t, p, "pull_request.head.label", "forker:"+branch)
	setField(t, p, "pull_request.head.sha", head)
	// Another repository than the base's: a fork.
	setField(t, p, "pull_request.head.repo.id", 999001)
	setField(t, p, "pull_request.head.repo.full_name", "forker/Hello-World")
	setField(t, p, "pull_request.base.ref", "main")
	setField(t, p, "pull_request.base.sha", base)
	return p
}

// settled waits until sha's run shows running and each of jobs queued,
// and the outbox has nothing left: the next post is the next move's.
func (f *forgeEnv) settled(t *testing.T, sha string, jobs ...string) {
	t.Helper()
	running := forge.Running
	if f.kind == forge.GitHub {
		running = forge.Pending // GitHub has no running
	}
	f.waitStatuses(t, sha, "the run running and its jobs queued", func(m map[string]forge.Status) bool {
		if s := m["deltaci"]; s.State != running || !strings.HasPrefix(s.Description, "running:") {
			return false
		}
		for _, j := range jobs {
			if s := m["deltaci/"+j]; s.State != forge.Pending || s.Description != "queued" {
				return false
			}
		}
		return true
	})
	f.waitDrained(t)
}

// checkRequests fails t for a status request that did not carry the
// forge's token in the forge's header, or that the forge did not take.
func (f *forgeEnv) checkRequests(t *testing.T) {
	t.Helper()
	for _, r := range f.forge.Requests() {
		switch f.kind {
		case forge.GitHub:
			if got := r.Header.Get("Authorization"); got != "Bearer <token>" {
				t.Errorf("%s %s: Authorization %q", r.Method, r.Path, got)
			}
			if r.Code != http.StatusCreated {
				t.Errorf("%s %s answered %d: %v", r.Method, r.Path, r.Code, r.Body)
			}
		case forge.GitLab:
			if got := r.Header.Get("Private-Token"); got != "<token>" {
				t.Errorf("%s %s: PRIVATE-TOKEN %q", r.Method, r.Path, got)
			}
		}
	}
}

func TestForgeGitHubPush(t *testing.T) {
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			testForgeGitHubPush(t, engine)
		})
	}
}

// testForgeGitHubPush sends GitHub's push of a real commit and follows
// every status context to its end; then attacks and odd deliveries on the
// same hook, which make no run.
func testForgeGitHubPush(t *testing.T, engine string) {
	f := newForgeEnv(t, forgeOptions{engine: engine, kind: forge.GitHub, files: map[string]string{
		".deltaci.yml": forgePushPipeline, "src/main.c": "int main(void) { return 0; }\n", "docs/index.md": "# Docs\n",
	}})
	ctx := t.Context()
	first := revParse(t, f.repo, "HEAD")
	earlier, err := f.user.CreateRun(ctx, protocol.CreateRunRequest{Project: f.project, Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	f.runner.pass(t, earlier.ID, "build", "docs")
	earlierDocs := contractJob(t, f.waitRunState(t, earlier.ID, core.RunSucceeded), "docs")

	const msg = "Return 1 from main"
	sha := commitFiles(t, f.repo, msg, map[string]string{"src/main.c": "int main(void) { return 1; }\n"})
	push := encodePayload(t, githubPush(t, first, sha, msg))
	delivery := newDeliveryID()
	ans := f.deliver(t, http.StatusAccepted, "push", delivery, push)
	if ans.Result != "queued" || ans.Delivery == "" {
		t.Fatalf("push answered %+v, want queued", ans)
	}
	run := f.waitRunOf(t, sha)
	if run.Event != core.EventPush || run.Ref != "refs/heads/main" || !run.Trusted || run.Project != f.project {
		t.Errorf("the push's run = %+v", run)
	}
	build, docs, deploy := contractJob(t, run, "build"), contractJob(t, run, "docs"), contractJob(t, run, "deploy")
	if build.State != string(core.JobQueued) || docs.State != string(core.JobReused) || deploy.State != string(core.JobSkipped) ||
		docs.ReusedFrom != earlierDocs.Attempts[0].ID {
		t.Errorf("jobs: build %s, docs %s (from %s), deploy %s; want queued, reused from %s, skipped",
			build.State, docs.State, docs.ReusedFrom, deploy.State, earlierDocs.Attempts[0].ID)
	}
	if d := f.delivery(t, ans.Delivery); d.Delivery != delivery || d.Event != "push" || d.State != "done" || d.RunID != run.ID {
		t.Errorf("the stored delivery = %+v, want done with run %s", d, run.ID)
	}

	// build shows waiting, then running (pending on GitHub), then its end.
	f.waitShown(t, sha, "deltaci/build", forge.Pending, "queued")
	l := f.runner.start(t, run.ID, "build")
	f.waitShown(t, sha, "deltaci/build", forge.Pending, "running")
	f.runner.end(t, l, core.AttemptSucceeded)
	f.waitRunState(t, run.ID, core.RunSucceeded)
	got := f.waitFinal(t, sha, "deltaci", "deltaci/build", "deltaci/docs", "deltaci/deploy")
	for c, want := range map[string]struct {
		prefix, url string
	}{
		"deltaci":        {"3 jobs passed (1 reused, 1 skipped)", jobURL(run.ID, "")},
		"deltaci/build":  {"passed", jobURL(run.ID, "build")},
		"deltaci/docs":   {"reused: same inputs as run " + earlier.ID, jobURL(run.ID, "docs")},
		"deltaci/deploy": {"skipped: ", jobURL(run.ID, "deploy")},
	} {
		if s := got[c]; s.State != forge.Success || !strings.HasPrefix(s.Description, want.prefix) || s.TargetURL != want.url {
			t.Errorf("%s = %s %q %s, want success %q… %s", c, s.State, s.Description, s.TargetURL, want.prefix, want.url)
		}
	}
	if len(got) != 4 {
		t.Errorf("contexts on the pushed commit:%s", describeStatuses(got))
	}
	checkNoRegress(t, sha, f.forge.Statuses(sha))
	checkNoRegress(t, first, f.forge.Statuses(first))
	f.checkRequests(t)

	deliveries := len(f.hooks(t).Deliveries)
	// unchanged fails t when a refused delivery made a run or was stored.
	unchanged := func(t *testing.T) {
		t.Helper()
		if n := len(f.hooks(t).Deliveries); n != deliveries {
			t.Errorf("%d deliveries stored, want %d", n, deliveries)
		}
		if runs := f.runsOf(t, sha); len(runs) != 1 {
			t.Errorf("%d runs of %s, want 1", len(runs), sha)
		}
	}
	t.Run("ReplayedDeliveryMakesNoSecondRun", func(t *testing.T) {
		if a := f.deliver(t, http.StatusOK, "push", delivery, push); a.Result != "duplicate" {
			t.Errorf("the replay answered %+v", a)
		}
		unchanged(t)
	})
	t.Run("ForgedSignatureStoresNothing", func(t *testing.T) {
		h := hookHeader(forge.GitHub, "not-the-secret", "push", newDeliveryID(), push)
		f.post(ctx, t, http.StatusUnauthorized, forge.GitHub, f.project, h, push)
		h = hookHeader(forge.GitHub, f.secret, "push", newDeliveryID(), push)
		h.Del("X-Hub-Signature-256")
		f.post(ctx, t, http.StatusUnauthorized, forge.GitHub, f.project, h, push)
		// Signed, then changed on the way.
		tampered := bytes.Replace(push, []byte(`"refs/heads/main"`), []byte(`"refs/heads/evil"`), 1)
		f.post(ctx, t, http.StatusUnauthorized, forge.GitHub, f.project, hookHeader(forge.GitHub, f.secret, "push", newDeliveryID(), push), tampered)
		unchanged(t)
	})
	t.Run("OversizedBodyIsRefused", func(t *testing.T) {
		huge := append(append([]byte(`{"zen":"`), bytes.Repeat([]byte("a"), 30<<20)...), `"}`...)
		f.post(contractUnchecked(ctx), t, http.StatusRequestEntityTooLarge, forge.GitHub, f.project, hookHeader(forge.GitHub, f.secret, "push", newDeliveryID(), huge), huge)
		unchanged(t)
	})
	t.Run("PingIsIgnored", func(t *testing.T) {
		if a := f.deliver(t, http.StatusAccepted, "ping", newDeliveryID(), encodePayload(t, hookPayload(t, "github-webhooks/ping.json"))); a.Result != "ignored" || a.Reason == "" {
			t.Errorf("ping answered %+v", a)
		}
		unchanged(t)
	})
	t.Run("OtherEventIsIgnored", func(t *testing.T) {
		p := hookPayload(t, "github-webhooks/ping.json")
		issue := encodePayload(t, map[string]any{"action": "opened", "issue": map[string]any{"number": 1, "title": "Bug"}, "repository": p["repository"], "sender": p["sender"]})
		if a := f.deliver(t, http.StatusAccepted, "issues", newDeliveryID(), issue); a.Result != "ignored" || !strings.Contains(a.Reason, "issues") {
			t.Errorf("an issues event answered %+v", a)
		}
		unchanged(t)
	})
	t.Run("BranchDeletionMakesNoRun", func(t *testing.T) {
		p := githubPush(t, sha, zeroID, "")
		setField(t, p, "ref", "refs/heads/topic")
		setField(t, p, "deleted", true)
		setField(t, p, "head_commit", nil)
		setField(t, p, "commits", []any{})
		if a := f.deliver(t, http.StatusAccepted, "push", newDeliveryID(), encodePayload(t, p)); a.Result != "ignored" || !strings.Contains(a.Reason, "deletion") {
			t.Errorf("a branch deletion answered %+v", a)
		}
		unchanged(t)
	})
	t.Run("SkipCIMakesNoRun", func(t *testing.T) {
		const msg = "Fix a typo [skip ci]"
		skip := commitFiles(t, f.repo, msg, map[string]string{"docs/index.md": "# Documentation\n"})
		if a := f.deliver(t, http.StatusAccepted, "push", newDeliveryID(), encodePayload(t, githubPush(t, sha, skip, msg))); a.Result != "ignored" || !strings.Contains(a.Reason, "skip CI") {
			t.Errorf("[skip ci] answered %+v", a)
		}
		if runs := f.runsOf(t, skip); len(runs) != 0 {
			t.Errorf("[skip ci] made runs %+v", runs)
		}
		unchanged(t)
	})
	t.Run("UnknownProjectIs404", func(t *testing.T) {
		r := f.post(ctx, t, http.StatusNotFound, forge.GitHub, "no-such-project", hookHeader(forge.GitHub, f.secret, "push", newDeliveryID(), push), push)
		if code := r.errorDetail(t).Code; code != string(core.KindNotFound) {
			t.Errorf("an unknown project: code %q", code)
		}
		unchanged(t)
	})
	t.Run("ProjectOfAnotherForgeIs404", func(t *testing.T) {
		other, err := f.user.AddProject(ctx, protocol.Project{
			Name: "forge-elsewhere", RepoURL: gittest.Repo(t, map[string]string{".deltaci.yml": forgePRPipeline}), DefaultBranch: "main", ProtectedBranches: []string{}, Secrets: []string{}, Labels: []string{},
			Forge: &protocol.ProjectForge{Kind: string(forge.GitLab), APIURL: "https://gitlab.example.com/api/v4", Repo: "group/project"},
		})
		if err != nil {
			t.Fatal(err)
		}
		h, err := f.user.ProjectHooks(ctx, other.Name)
		if err != nil {
			t.Fatal(err)
		}
		// Signed with that project's own secret, as GitHub would sign it.
		r := f.post(ctx, t, http.StatusNotFound, forge.GitHub, other.Name, hookHeader(forge.GitHub, h.Secret, "push", newDeliveryID(), push), push)
		if code := r.errorDetail(t).Code; code != string(core.KindNotFound) {
			t.Errorf("a gitlab project on the github hook: code %q", code)
		}
		if h, err = f.user.ProjectHooks(ctx, other.Name); err != nil || len(h.Deliveries) != 0 {
			t.Errorf("the gitlab project's deliveries: %+v, %v", h.Deliveries, err)
		}
		unchanged(t)
	})
	for result, want := range map[string]float64{
		"queued": 1, "duplicate": 1, "ignored": 4, "bad_signature": 3, "too_large": 1, "unknown_project": 2,
	} {
		if got := f.metricValue(t, `deltaci_webhook_deliveries_total{forge="github",result="`+result+`"}`); got != want {
			t.Errorf("deliveries counted %s: %v, want %v", result, got, want)
		}
	}
}

func TestForgeGitHubPullRequest(t *testing.T) {
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			testForgeGitHubPullRequest(t, engine)
		})
	}
}

// testForgeGitHubPullRequest opens a pull request from a fork and pushes
// to it while its run is running: the older run is canceled and shows
// error, unless the project keeps superseded runs.
func testForgeGitHubPullRequest(t *testing.T, engine string) {
	f := newForgeEnv(t, forgeOptions{engine: engine, kind: forge.GitHub, files: map[string]string{".deltaci.yml": forgePRPipeline}})
	ctx := t.Context()
	base := revParse(t, f.repo, "HEAD")
	gittest.Git(t, f.repo, "checkout", "-q", "-b", "feature/x")
	head1 := commitFiles(t, f.repo, "Add x", map[string]string{"x.txt": "1\n"})
	gittest.Git(t, f.repo, "update-ref", "refs/pull/1/head", head1)
	f.deliver(t, http.StatusAccepted, "pull_request", newDeliveryID(), encodePayload(t, githubPull(t, "pull_request.opened.json", 1, "feature/x", head1, base)))
	run1 := f.waitRunOf(t, head1)
	if run1.Event != core.EventPullRequest || run1.Ref != "refs/pull/1/head" || run1.Trusted || !strings.Contains(run1.TrustReason, "fork") {
		t.Errorf("the pull request's run = %+v, want an untrusted pull_request run of refs/pull/1/head from a fork", run1)
	}
	// Branch filters match the pull request's source branch.
	if j := contractJob(t, run1, "deploy"); j.State != string(core.JobSkipped) {
		t.Errorf("deploy (main only) in the pull request's run is %s", j.State)
	}
	l1 := f.runner.start(t, run1.ID, "test")
	f.waitShown(t, head1, "deltaci/test", forge.Pending, "running")

	// A push to the pull request while its run runs.
	head2 := commitFiles(t, f.repo, "Fix x", map[string]string{"x.txt": "2\n"})
	gittest.Git(t, f.repo, "update-ref", "refs/pull/1/head", head2)
	sync := githubPull(t, "pull_request.synchronize.json", 1, "feature/x", head2, base)
	setField(t, sync, "before", head1)
	setField(t, sync, "after", head2)
	f.deliver(t, http.StatusAccepted, "pull_request", newDeliveryID(), encodePayload(t, sync))
	run2 := f.waitRunOf(t, head2)
	f.waitRunState(t, run1.ID, core.RunCanceling)
	hb, err := f.runner.c.Heartbeat(ctx, l1.AttemptID, l1.LeaseToken)
	if err != nil || !hb.Cancel {
		t.Fatalf("the superseded run's heartbeat = %+v, %v; want cancel", hb, err)
	}
	f.runner.end(t, l1, core.AttemptCanceled)
	f.waitRunState(t, run1.ID, core.RunCanceled)
	got := f.waitFinal(t, head1, "deltaci", "deltaci/test", "deltaci/deploy")
	// GitHub has no canceled: it shows error.
	if s := got["deltaci"]; s.State != forge.Error || s.Description != "canceled" {
		t.Errorf("deltaci on the superseded head = %s %q, want error canceled", s.State, s.Description)
	}
	if s := got["deltaci/test"]; s.State != forge.Error || s.Description != "canceled" {
		t.Errorf("deltaci/test on the superseded head = %s %q, want error canceled", s.State, s.Description)
	}
	if s := got["deltaci/deploy"]; s.State != forge.Success || !strings.HasPrefix(s.Description, "skipped: branch feature/x") {
		t.Errorf("deltaci/deploy on the pull request = %s %q", s.State, s.Description)
	}
	f.runner.pass(t, run2.ID, "test")
	if s := f.waitFinal(t, head2, "deltaci", "deltaci/test")["deltaci"]; s.State != forge.Success {
		t.Errorf("deltaci on the new head = %s %q", s.State, s.Description)
	}

	t.Run("KeepSuperseded", func(t *testing.T) {
		if _, err := f.user.UpdateProject(ctx, f.project, protocol.ProjectPatch{Forge: &protocol.ProjectForge{
			Kind: string(forge.GitHub), APIURL: f.forge.APIURL(), Repo: f.forge.Repo, TokenSecret: forgeTokenSecret, KeepSuperseded: true,
		}}); err != nil {
			t.Fatal(err)
		}
		if s := f.hooks(t).Secret; s != f.secret {
			t.Fatal("changing the forge's settings changed the webhook secret")
		}
		gittest.Git(t, f.repo, "checkout", "-q", "-b", "feature/y", base)
		head3 := commitFiles(t, f.repo, "Add y", map[string]string{"y.txt": "1\n"})
		gittest.Git(t, f.repo, "update-ref", "refs/pull/2/head", head3)
		f.deliver(t, http.StatusAccepted, "pull_request", newDeliveryID(), encodePayload(t, githubPull(t, "pull_request.opened.json", 2, "feature/y", head3, base)))
		run3 := f.waitRunOf(t, head3)
		l3 := f.runner.start(t, run3.ID, "test")
		head4 := commitFiles(t, f.repo, "Fix y", map[string]string{"y.txt": "2\n"})
		gittest.Git(t, f.repo, "update-ref", "refs/pull/2/head", head4)
		f.deliver(t, http.StatusAccepted, "pull_request", newDeliveryID(), encodePayload(t, githubPull(t, "pull_request.synchronize.json", 2, "feature/y", head4, base)))
		f.waitRunOf(t, head4)
		// The inbox plans one delivery after the other: once a later
		// delivery's run exists, the synchronize's planning is over,
		// superseding included.
		f.deliver(t, http.StatusAccepted, "push", newDeliveryID(), encodePayload(t, githubPush(t, zeroID, base, "init")))
		f.waitRunOf(t, base)
		if run := f.on(t).run(ctx, run3.ID); run.State != string(core.RunRunning) {
			t.Fatalf("the older run of pull request 2 is %s with keep_superseded", run.State)
		}
		f.runner.end(t, l3, core.AttemptSucceeded)
		f.waitRunState(t, run3.ID, core.RunSucceeded)
		if s := f.waitFinal(t, head3, "deltaci", "deltaci/test")["deltaci"]; s.State != forge.Success {
			t.Errorf("deltaci on the kept head = %s %q", s.State, s.Description)
		}
		checkNoRegress(t, head3, f.forge.Statuses(head3))
	})
	for _, sha := range []string{head1, head2} {
		checkNoRegress(t, sha, f.forge.Statuses(sha))
	}
	f.checkRequests(t)
}

func TestForgeConfigError(t *testing.T) {
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			f := newForgeEnv(t, forgeOptions{engine: engine, kind: forge.GitHub, files: map[string]string{".deltaci.yml": forgePRPipeline}})
			first := revParse(t, f.repo, "HEAD")
			const msg = "Give build a timeout"
			sha := commitFiles(t, f.repo, msg, map[string]string{".deltaci.yml": "version: 1\njobs:\n  build:\n    run: make\n    timeout: soon\n"})
			ans := f.deliver(t, http.StatusAccepted, "push", newDeliveryID(), encodePayload(t, githubPush(t, first, sha, msg)))
			run := f.waitRunOf(t, sha)
			run = f.waitRunState(t, run.ID, core.RunErrored)
			if d := f.delivery(t, ans.Delivery); d.State != "done" || d.RunID != run.ID {
				t.Errorf("the delivery of an errored run = %+v", d)
			}
			got := f.waitFinal(t, sha, "deltaci")
			where := regexp.MustCompile(`^error: \.deltaci\.yml@` + sha[:12] + `:\d+:\d+: `)
			if s := got["deltaci"]; s.State != forge.Failure || !where.MatchString(s.Description) || s.TargetURL != jobURL(run.ID, "") {
				t.Errorf("deltaci = %s %q %s, want failure %s…; the run's message: %q", s.State, s.Description, s.TargetURL, where, run.Message)
			}
			if len(got) != 1 {
				t.Errorf("contexts of an errored run:%s", describeStatuses(got))
			}
			checkNoRegress(t, sha, f.forge.Statuses(sha))
			f.checkRequests(t)
		})
	}
}

func TestForgeOutage(t *testing.T) {
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			testForgeOutage(t, engine)
		})
	}
}

// testForgeOutage takes the forge down, makes it fail once, and makes it
// refuse a status: the statuses arrive when they can, never go back, and
// the outbox empties.
func testForgeOutage(t *testing.T, engine string) {
	f := newForgeEnv(t, forgeOptions{engine: engine, kind: forge.GitHub, retryMax: 300 * time.Millisecond, files: map[string]string{
		".deltaci.yml": "version: 1\njobs:\n  a:\n    run: make a\n  b:\n    run: make b\n",
	}})
	const (
		retries = `deltaci_status_failures_total{forge="github",outcome="retry"}`
		refused = `deltaci_status_failures_total{forge="github",outcome="refused"}`
	)
	contexts := []string{"deltaci", "deltaci/a", "deltaci/b"}
	tip := revParse(t, f.repo, "HEAD")
	// push makes a commit on main, sends its push, and waits for its run
	// to settle.
	push := func(t *testing.T, msg string) (string, protocol.Run) {
		t.Helper()
		sha := commitFiles(t, f.repo, msg, map[string]string{"n.txt": msg + "\n"})
		f.deliver(t, http.StatusAccepted, "push", newDeliveryID(), encodePayload(t, githubPush(t, tip, sha, msg)))
		tip = sha
		run := f.waitRunOf(t, sha)
		f.settled(t, sha, "a", "b")
		return sha, run
	}
	allPassed := func(t *testing.T, sha string) {
		t.Helper()
		got := f.waitFinal(t, sha, contexts...)
		for _, c := range contexts {
			if s := got[c]; s.State != forge.Success {
				t.Errorf("%s ended %s %q", c, s.State, s.Description)
			}
		}
		checkNoRegress(t, sha, f.forge.Statuses(sha))
	}

	t.Run("Down", func(t *testing.T) {
		sha, run := push(t, "one")
		before := f.metricValue(t, retries)
		f.forge.Down()
		seen := len(f.forge.Requests())
		f.runner.pass(t, run.ID, "a", "b")
		f.waitRunState(t, run.ID, core.RunSucceeded)
		// Each context is tried, and refused a connection, more than once.
		f.waitMetric(t, retries, atLeast(before+2*float64(len(contexts))))
		if n := f.metricValue(t, "deltaci_status_outbox_depth"); n == 0 {
			t.Error("the outbox depth is 0 while the forge is down")
		}
		f.forge.Up()
		allPassed(t, sha)
		for _, r := range f.forge.Requests()[:seen] {
			if r.Status != nil && r.Commit == sha && isFinal(r.Status.State) {
				t.Errorf("%s ended before the outage: %+v", r.Status.Context, r.Status)
			}
		}
		f.waitMetric(t, "deltaci_status_outbox_depth", func(v float64) bool { return v == 0 })
	})

	t.Run("ServerErrorThenSuccess", func(t *testing.T) {
		sha, run := push(t, "two")
		before := f.metricValue(t, retries)
		seen := len(f.forge.Requests())
		f.forge.FailNext(1, http.StatusBadGateway)
		l := f.runner.start(t, run.ID, "a")
		f.waitShown(t, sha, "deltaci/a", forge.Pending, "running")
		// The one post of the move failed, and its retry was taken.
		reqs := f.forge.Requests()[seen:]
		if len(reqs) != 2 || reqs[0].Code != http.StatusBadGateway || reqs[1].Code != http.StatusCreated ||
			reqs[0].Body["context"] != "deltaci/a" || reqs[1].Body["context"] != "deltaci/a" {
			t.Errorf("requests after a 502 was asked for:%s", describeRequests(reqs))
		}
		if got := f.metricValue(t, retries); got != before+1 {
			t.Errorf("retries counted %v, want %v", got, before+1)
		}
		f.runner.end(t, l, core.AttemptSucceeded)
		f.runner.pass(t, run.ID, "b")
		allPassed(t, sha)
	})

	t.Run("RefusedIsNotRetried", func(t *testing.T) {
		sha, run := push(t, "three")
		before, retried := f.metricValue(t, refused), f.metricValue(t, retries)
		seen := len(f.forge.Requests())
		f.forge.FailNext(1, http.StatusUnprocessableEntity)
		l := f.runner.start(t, run.ID, "a")
		f.waitMetric(t, refused, atLeast(before+1))
		// Given up: nothing is left to post until the next move.
		f.waitDrained(t)
		reqs := f.forge.Requests()[seen:]
		if len(reqs) != 1 || reqs[0].Code != http.StatusUnprocessableEntity || reqs[0].Body["context"] != "deltaci/a" {
			t.Errorf("requests after a 422 was asked for:%s", describeRequests(reqs))
		}
		if got := f.metricValue(t, retries); got != retried {
			t.Errorf("retries counted %v after a refusal, want %v", got, retried)
		}
		f.runner.end(t, l, core.AttemptSucceeded)
		f.runner.pass(t, run.ID, "b")
		allPassed(t, sha)
	})
}

func TestForgeGitLab(t *testing.T) {
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			testForgeGitLab(t, engine)
		})
	}
}

// testForgeGitLab sends GitLab's documented push and merge request
// deliveries: GitLab shows running, failed and canceled as such.
func testForgeGitLab(t *testing.T, engine string) {
	f := newForgeEnv(t, forgeOptions{engine: engine, kind: forge.GitLab, files: map[string]string{".deltaci.yml": forgePRPipeline}})
	ctx := t.Context()
	base := revParse(t, f.repo, "HEAD")
	const msg = "Add n"
	sha := commitFiles(t, f.repo, msg, map[string]string{"n.txt": "1\n"})
	p := hookPayload(t, "gitlab/push.json")
	setField(t, p, "ref", "refs/heads/main")
	setField(t, p, "before", base)
	setField(t, p, "after", sha)
	setField(t, p, "checkout_sha", sha)
	setField(t, p, "commits.1.id", sha)
	setField(t, p, "commits.1.message", msg)
	setField(t, p, "commits", p["commits"].([]any)[1:])
	setField(t, p, "total_commits_count", 1)
	if a := f.deliver(t, http.StatusAccepted, "Push Hook", newDeliveryID(), encodePayload(t, p)); a.Result != "queued" {
		t.Fatalf("Push Hook answered %+v", a)
	}
	run := f.waitRunOf(t, sha)
	if run.Event != core.EventPush || !run.Trusted {
		t.Errorf("the push's run = %+v", run)
	}
	f.waitShown(t, sha, "deltaci/test", forge.Pending, "queued")
	l := f.runner.start(t, run.ID, "test")
	f.waitShown(t, sha, "deltaci/test", forge.Running, "running")
	f.runner.end(t, l, core.AttemptSucceeded)
	f.runner.end(t, f.runner.start(t, run.ID, "deploy"), core.AttemptFailed)
	got := f.waitFinal(t, sha, "deltaci", "deltaci/test", "deltaci/deploy")
	for c, want := range map[string]struct {
		state forge.State
		text  string
	}{
		"deltaci":        {forge.Failure, "failed: deploy"},
		"deltaci/test":   {forge.Success, "passed"},
		"deltaci/deploy": {forge.Failure, "failed: exit code 1"},
	} {
		if s := got[c]; s.State != want.state || !strings.HasPrefix(s.Description, want.text) {
			t.Errorf("%s = %s %q, want %s %q", c, s.State, s.Description, want.state, want.text)
		}
	}
	if !showed(f.forge.Statuses(sha), "deltaci", forge.Running) {
		t.Error("the run never showed running on GitLab")
	}
	for _, r := range f.forge.Requests() {
		if r.Body["name"] == "deltaci" && r.Code == http.StatusCreated && r.Status.State == forge.Failure && r.Body["state"] != "failed" {
			t.Errorf("a failed run was sent to GitLab as %v", r.Body["state"])
		}
	}

	// A merge request from a fork, updated with new code while its run
	// runs.
	gittest.Git(t, f.repo, "checkout", "-q", "-b", "feature/x", base)
	head1 := commitFiles(t, f.repo, "Add x", map[string]string{"x.txt": "1\n"})
	gittest.Git(t, f.repo, "update-ref", "refs/merge-requests/1/head", head1)
	mr := func(file, head, oldrev string) []byte {
		p := hookPayload(t, "gitlab/"+file)
		setField(t, p, "object_attributes.iid", 1)
		setField(t, p, "object_attributes.source_branch", "feature/x")
		setField(t, p, "object_attributes.target_branch", "main")
		setField(t, p, "object_attributes.source_project_id", 15) // a fork of 14
		setField(t, p, "object_attributes.last_commit.id", head)
		setField(t, p, "object_attributes.last_commit.message", "Add x")
		if oldrev != "" {
			setField(t, p, "object_attributes.oldrev", oldrev)
		}
		return encodePayload(t, p)
	}
	f.deliver(t, http.StatusAccepted, "Merge Request Hook", newDeliveryID(), mr("merge_request.open.json", head1, ""))
	run1 := f.waitRunOf(t, head1)
	if run1.Event != core.EventPullRequest || run1.Ref != "refs/merge-requests/1/head" || run1.Trusted || !strings.Contains(run1.TrustReason, "fork") {
		t.Errorf("the merge request's run = %+v", run1)
	}
	l1 := f.runner.start(t, run1.ID, "test")
	f.waitShown(t, head1, "deltaci/test", forge.Running, "running")
	head2 := commitFiles(t, f.repo, "Fix x", map[string]string{"x.txt": "2\n"})
	gittest.Git(t, f.repo, "update-ref", "refs/merge-requests/1/head", head2)
	f.deliver(t, http.StatusAccepted, "Merge Request Hook", newDeliveryID(), mr("merge_request.update-code.json", head2, head1))
	run2 := f.waitRunOf(t, head2)
	f.waitRunState(t, run1.ID, core.RunCanceling)
	if hb, err := f.runner.c.Heartbeat(ctx, l1.AttemptID, l1.LeaseToken); err != nil || !hb.Cancel {
		t.Fatalf("the superseded run's heartbeat = %+v, %v; want cancel", hb, err)
	}
	f.runner.end(t, l1, core.AttemptCanceled)
	got = f.waitFinal(t, head1, "deltaci", "deltaci/test", "deltaci/deploy")
	for _, c := range []string{"deltaci", "deltaci/test"} {
		if s := got[c]; s.State != forge.Canceled || s.Description != "canceled" {
			t.Errorf("%s on the superseded head = %s %q, want canceled", c, s.State, s.Description)
		}
	}
	f.runner.pass(t, run2.ID, "test")
	if s := f.waitFinal(t, head2, "deltaci", "deltaci/test")["deltaci"]; s.State != forge.Success {
		t.Errorf("deltaci on the new head = %s %q", s.State, s.Description)
	}
	for _, c := range []string{sha, head1, head2} {
		checkNoRegress(t, c, f.forge.Statuses(c))
	}
	if n := f.metricValue(t, `deltaci_status_failures_total{forge="gitlab",outcome="refused"}`); n != 0 {
		t.Errorf("GitLab refused %v statuses", n)
	}
	f.checkRequests(t)
}

// TestForgeDeliveriesCannotMakeTrust: what someone who can push a branch
// or open a pull request may send through a correctly signed delivery
// never makes a trusted run. A pull request from the project's own
// repository runs untrusted like one from a fork, and a push delivery
// that names main but a commit of another branch runs untrusted: trust
// comes from the server's own fetch, not from the delivery.
func TestForgeDeliveriesCannotMakeTrust(t *testing.T) {
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			f := newForgeEnv(t, forgeOptions{engine: engine, kind: forge.GitHub, files: map[string]string{".deltaci.yml": forgePRPipeline}})
			base := revParse(t, f.repo, "HEAD")
			gittest.Git(t, f.repo, "checkout", "-q", "-b", "feature/own")
			head := commitFiles(t, f.repo, "Own branch", map[string]string{"own.txt": "1\n"})
			gittest.Git(t, f.repo, "update-ref", "refs/pull/7/head", head)
			pr := githubPull(t, "pull_request.opened.json", 7, "feature/own", head, base)
			// The same repository on both sides: not a fork.
			setField(t, pr, "pull_request.head.repo.id", 1296269)
			setField(t, pr, "pull_request.base.repo.id", 1296269)
			f.deliver(t, http.StatusAccepted, "pull_request", newDeliveryID(), encodePayload(t, pr))
			run := f.waitRunOf(t, head)
			if run.Trusted || run.Event != core.EventPullRequest || strings.Contains(run.TrustReason, "fork") ||
				!strings.Contains(run.TrustReason, "not trusted") {
				t.Errorf("a pull request from the project's own branch: trusted %v, event %s, reason %q; want untrusted, not a fork",
					run.Trusted, run.Event, run.TrustReason)
			}

			// The branch's commit, sent as a push of main.
			other := commitFiles(t, f.repo, "Not on main", map[string]string{"other.txt": "1\n"})
			f.deliver(t, http.StatusAccepted, "push", newDeliveryID(), encodePayload(t, githubPush(t, base, other, "Not on main")))
			forged := f.waitRunOf(t, other)
			if forged.Trusted || !strings.Contains(forged.TrustReason, "is not on protected branch main") {
				t.Errorf("a push delivery naming main with another branch's commit: trusted %v, reason %q", forged.Trusted, forged.TrustReason)
			}
		})
	}
}
