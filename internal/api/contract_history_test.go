package api_test

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// historyPipeline has a job that others need and one on its own.
const historyPipeline = `version: 1
jobs:
  build:
    run: echo build
  test:
    needs: [build]
    run: echo test
  lint:
    run: echo lint
`

// historyRunner drives runs' attempts through the runner protocol.
type historyRunner struct {
	e     *contractEnv
	token string
}

func newHistoryRunner(t *testing.T, e *contractEnv) historyRunner {
	t.Helper()
	ctx := t.Context()
	var reg protocol.RegisterResponse
	e.json(ctx, http.StatusCreated, "POST", "/api/v1/runners/register", contractRegToken,
		protocol.RegisterRequest{Name: "history-runner", Labels: []string{api.ExecutorLabel("shell")}, ProtocolVersion: protocol.Version}).decode(t, &reg)
	var sess protocol.SessionResponse
	e.json(ctx, http.StatusOK, "POST", "/api/v1/runner/session", "",
		protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version}).decode(t, &sess)
	return historyRunner{e: e, token: sess.Token}
}

// finish leases every queued attempt, until none is left, and ends each
// as outcome says (success for a job it does not name), and returns the
// jobs it ran, in order.
func (h historyRunner) finish(t *testing.T, outcome map[string]core.AttemptState) []string {
	t.Helper()
	ctx := t.Context()
	var ran []string
	for {
		r, err := h.e.try(ctx, "POST", "/api/v1/runner/lease", contractHeader(h.token, "Content-Type", "application/json"), []byte(`{"wait_seconds":0}`))
		switch {
		case err != nil:
			t.Fatal(err)
		case r.status == http.StatusNoContent:
			return ran
		case r.status != http.StatusOK:
			t.Fatalf("lease = %d %s", r.status, r.body)
		}
		var l protocol.Lease
		r.decode(t, &l)
		at := "/api/v1/attempts/" + l.AttemptID
		h.e.json(ctx, http.StatusNoContent, "POST", at+"/start", h.token, protocol.Fenced{LeaseToken: l.LeaseToken})
		req := protocol.CompleteRequest{LeaseToken: l.LeaseToken, State: core.AttemptSucceeded, ExitCode: new(int)}
		if st, ok := outcome[l.Job]; ok && st != core.AttemptSucceeded {
			one := 1
			req = protocol.CompleteRequest{LeaseToken: l.LeaseToken, State: st, Reason: core.ReasonExitCode, ExitCode: &one}
		}
		h.e.json(ctx, http.StatusOK, "POST", at+"/complete", h.token, req)
		ran = append(ran, l.Job)
	}
}

// historyJobs is each job's state in a run.
func historyJobs(run protocol.Run) map[string]string {
	out := map[string]string{}
	for _, j := range run.Jobs {
		out[j.Name] = j.State
	}
	return out
}

// testContractHistory drives GET /runs and POST /runs/{id}/rerun on one
// engine: a run whose build fails is rerun whole and job by job, pages of
// history follow each other without duplicates or gaps, and the filters
// narrow them. Refused requests are checked to change nothing.
func testContractHistory(t *testing.T, cov *contractCoverage, engine string) {
	e := newContractEnv(t, contractOptions{engine: engine, apiToken: contractAPIToken, cov: cov})
	ctx, bad := t.Context(), contractUnchecked(t.Context())
	tooBig := bytes.Repeat([]byte(" "), api.DefaultMaxJSONBytes+1)
	viewer, maintainer := e.apiToken("viewer", auth.RoleViewer), e.apiToken("maintainer", auth.RoleMaintainer)
	e.addProject(ctx, contractProject{Name: "history", RepoURL: contractRepo(t, map[string]string{".deltaci.yml": historyPipeline}), ProtectedBranches: []string{"main"}})
	e.addProject(ctx, contractProject{Name: "open", RepoURL: contractRepo(t, map[string]string{".deltaci.yml": historyPipeline})})
	runner := newHistoryRunner(t, e)
	rerun := func(id string) string { return "/api/v1/runs/" + id + "/rerun" }
	var created []string // every run, in the order made

	orig := e.createRun(ctx, maintainer, protocol.CreateRunRequest{Project: "history", Ref: "main"})
	created = append(created, orig.ID)
	r := e.json(ctx, http.StatusConflict, "POST", rerun(orig.ID), maintainer, nil)
	if d := r.errorDetail(t); !strings.Contains(d.Message, "running") || !strings.Contains(d.Message, "ended") {
		t.Errorf("rerun of a running run: %+v", d)
	}
	if ran := runner.finish(t, map[string]core.AttemptState{"build": core.AttemptFailed}); len(ran) != 2 {
		t.Fatalf("the first run ran %v, want build and lint", ran)
	}
	orig = e.run(ctx, orig.ID)
	if orig.State != string(core.RunFailed) || historyJobs(orig)["test"] != string(core.JobUpstreamFailed) {
		t.Fatalf("the first run = %s %v, want failed with test upstream_failed", orig.State, historyJobs(orig))
	}
	lintAttempt := contractJob(t, orig, "lint").Attempts[0].ID

	// Refusals change nothing.
	e.json(ctx, http.StatusUnauthorized, "POST", rerun(orig.ID), "", nil)
	e.json(ctx, http.StatusUnauthorized, "POST", rerun(orig.ID), "dci_not-a-token-the-server-made", nil)
	r = e.json(ctx, http.StatusForbidden, "POST", rerun(orig.ID), viewer, nil)
	if d := r.errorDetail(t); d.Code != protocol.CodeForbidden {
		t.Errorf("a viewer's rerun: %+v", d)
	}
	e.json(ctx, http.StatusNotFound, "POST", rerun(store.NewID()), maintainer, nil)
	r = e.json(ctx, http.StatusNotFound, "POST", rerun(orig.ID), maintainer, protocol.RerunRequest{Job: "deploy"})
	if d := r.errorDetail(t); !strings.Contains(d.Message, `"deploy"`) || !strings.Contains(d.Message, "build, test, lint") {
		t.Errorf("rerun of an unknown job: %+v", d)
	}
	r = e.json(ctx, http.StatusConflict, "POST", rerun(orig.ID), maintainer, protocol.RerunRequest{Job: "test"})
	if d := r.errorDetail(t); !strings.Contains(d.Message, "needs build") {
		t.Errorf("rerun of a job whose need failed: %+v", d)
	}
	e.json(bad, http.StatusBadRequest, "POST", rerun(orig.ID), maintainer, []byte(`{"job":"lint","trusted":true}`))
	e.json(bad, http.StatusBadRequest, "POST", rerun(orig.ID), maintainer, []byte(`{"job":`))
	e.json(bad, http.StatusRequestEntityTooLarge, "POST", rerun(orig.ID), maintainer, tooBig)
	e.expect(bad, http.StatusUnsupportedMediaType, "POST", rerun(orig.ID), contractHeader(maintainer, "Content-Type", "text/plain"), []byte(`{}`))
	var page protocol.RunList
	e.json(ctx, http.StatusOK, "GET", "/api/v1/runs", viewer, nil).decode(t, &page)
	if len(page.Runs) != 1 {
		t.Fatalf("refused reruns made runs: %+v", page.Runs)
	}

	// A whole rerun: build and test run again, lint is reused.
	var again protocol.Run
	e.json(ctx, http.StatusCreated, "POST", rerun(orig.ID), maintainer, nil).decode(t, &again)
	created = append(created, again.ID)
	if again.RerunOf != orig.ID || again.Commit != orig.Commit || again.Ref != orig.Ref || again.Event != orig.Event ||
		!again.Trusted || !strings.Contains(again.TrustReason, "protected branch main") {
		t.Errorf("the rerun = %+v", again)
	}
	if lint := contractJob(t, again, "lint"); lint.State != string(core.JobReused) || lint.ReusedFrom != lintAttempt || len(lint.Attempts) != 0 {
		t.Errorf("lint in the rerun = %+v, want reused from %s", lint, lintAttempt)
	}
	if got := historyJobs(again); got["build"] != string(core.JobQueued) || got["test"] != string(core.JobPending) {
		t.Errorf("the rerun's jobs = %v, want build queued and test pending", got)
	}
	if ran := runner.finish(t, nil); !slices.Equal(ran, []string{"build", "test"}) {
		t.Errorf("the rerun ran %v, want build then test", ran)
	}
	if got := e.run(ctx, again.ID); got.State != string(core.RunSucceeded) || got.RerunOf != orig.ID {
		t.Errorf("the rerun ended %s (rerun_of %q)", got.State, got.RerunOf)
	}
	r = e.json(ctx, http.StatusConflict, "POST", rerun(again.ID), maintainer, nil)
	if d := r.errorDetail(t); !strings.Contains(d.Message, "every job") {
		t.Errorf("a rerun of a run with nothing to run again: %+v", d)
	}

	// One job: build, and test, which needs it; lint is reused.
	var one protocol.Run
	e.json(ctx, http.StatusCreated, "POST", rerun(orig.ID), contractAPIToken, protocol.RerunRequest{Job: "build"}).decode(t, &one)
	created = append(created, one.ID)
	if got := historyJobs(one); got["build"] != string(core.JobQueued) || got["test"] != string(core.JobPending) || got["lint"] != string(core.JobReused) {
		t.Errorf("rerun of build: jobs %v", got)
	}
	runner.finish(t, map[string]core.AttemptState{"build": core.AttemptFailed})
	// A job that succeeded, alone: the jobs that did not succeed carry
	// their failure, so the rerun cannot end green.
	var solo protocol.Run
	e.json(ctx, http.StatusCreated, "POST", rerun(orig.ID), maintainer, protocol.RerunRequest{Job: "lint"}).decode(t, &solo)
	created = append(created, solo.ID)
	if got := historyJobs(solo); got["lint"] != string(core.JobQueued) || got["build"] != string(core.JobFailed) || got["test"] != string(core.JobFailed) {
		t.Errorf("rerun of lint: jobs %v", got)
	}
	if b := contractJob(t, solo, "build"); !strings.Contains(b.Explain, "not part of this rerun") || b.Reason != string(core.ReasonNotRerun) {
		t.Errorf("a job a rerun left out explains %q", b.Explain)
	}
	if ran := runner.finish(t, nil); !slices.Equal(ran, []string{"lint"}) {
		t.Errorf("rerun of lint ran %v", ran)
	}
	if got := e.run(ctx, solo.ID); got.State != string(core.RunFailed) {
		t.Errorf("a rerun of lint alone, while build and test failed, ended %s", got.State)
	}

	// A rerun of an untrusted run is untrusted, even once its branch is
	// protected and its commit is the branch's tip.
	open := e.createRun(ctx, maintainer, protocol.CreateRunRequest{Project: "open", Ref: "main", Event: core.EventManual})
	created = append(created, open.ID)
	e.json(ctx, http.StatusOK, "POST", "/api/v1/runs/"+open.ID+"/cancel", maintainer, nil)
	e.json(ctx, http.StatusOK, "PATCH", "/api/v1/projects/open", contractAPIToken, protocol.ProjectPatch{ProtectedBranches: &[]string{"main"}})
	var openAgain protocol.Run
	e.json(ctx, http.StatusCreated, "POST", rerun(open.ID), maintainer, nil).decode(t, &openAgain)
	created = append(created, openAgain.ID)
	if open.Trusted || openAgain.Trusted || !strings.Contains(openAgain.TrustReason, "untrusted run "+open.ID) {
		t.Errorf("rerun of an untrusted run: trusted %v (%q)", openAgain.Trusted, openAgain.TrustReason)
	}
	runner.finish(t, nil)

	// History: newest first, over pages without duplicates or gaps.
	slices.Reverse(created)
	list := func(query url.Values) []protocol.RunSummary {
		t.Helper()
		var all []protocol.RunSummary
		for pages := 0; ; pages++ {
			if pages > len(created)+1 {
				t.Fatalf("%v: the cursor never ends", query)
			}
			var p protocol.RunList
			e.json(ctx, http.StatusOK, "GET", "/api/v1/runs?"+query.Encode(), viewer, nil).decode(t, &p)
			all = append(all, p.Runs...)
			if p.NextCursor == "" {
				return all
			}
			query.Set("cursor", p.NextCursor)
		}
	}
	ids := func(runs []protocol.RunSummary) []string {
		out := []string{}
		for _, r := range runs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, limit := range []string{"1", "2", "4", "200"} {
		if got := ids(list(url.Values{"limit": {limit}})); !slices.Equal(got, created) {
			t.Errorf("limit %s: pages show\n%v\nwant\n%v", limit, got, created)
		}
	}
	all := list(url.Values{})
	if len(all) != len(created) || all[0].ID != openAgain.ID || all[0].RerunOf != open.ID || all[0].Project != "open" ||
		all[0].Trusted || all[0].Commit != open.Commit || all[0].State != string(core.RunSucceeded) || all[0].CreatedAt.IsZero() {
		t.Errorf("the newest run in the history = %+v", all[0])
	}
	for _, c := range []struct {
		query url.Values
		want  []string
	}{
		{url.Values{"project": {"open"}}, []string{openAgain.ID, open.ID}},
		{url.Values{"project": {"history"}, "limit": {"1"}}, created[2:]},
		{url.Values{"state": {"failed"}}, []string{solo.ID, one.ID, orig.ID}},
		{url.Values{"state": {"canceled"}, "event": {"manual"}}, []string{open.ID}},
		{url.Values{"ref": {"main"}, "event": {"push"}}, created[2:]},
		{url.Values{"ref": {"refs/heads/main"}, "project": {"open"}}, []string{openAgain.ID, open.ID}},
		{url.Values{"ref": {"dev"}}, []string{}},
		{url.Values{"event": {"pull_request"}}, []string{}},
		{url.Values{"project": {"nosuch"}}, []string{}},
	} {
		if got := ids(list(c.query)); !slices.Equal(got, c.want) {
			t.Errorf("GET /runs?%s = %v, want %v", c.query.Encode(), got, c.want)
		}
	}
	for query, names := range map[string]string{
		"state=bogus":             `"bogus"`,
		"event=tag":               `"tag"`,
		"limit=0":                 `"0"`,
		"limit=201":               "201",
		"limit=ten":               `"ten"`,
		"cursor=not-ours":         `"not-ours"`,
		"projet=history":          `"projet"`,
		"state=failed&state=x":    "", // only the first value counts; it is valid
		"project=history&ref=dev": "",
	} {
		want := http.StatusBadRequest
		if names == "" {
			want = http.StatusOK
		}
		r := e.json(ctx, want, "GET", "/api/v1/runs?"+query, viewer, nil)
		if want == http.StatusBadRequest {
			if d := r.errorDetail(t); d.Code != string(core.KindInvalid) || !strings.Contains(d.Message, names) {
				t.Errorf("GET /runs?%s: %+v, want it to name %s", query, d, names)
			}
		}
	}
	e.json(ctx, http.StatusUnauthorized, "GET", "/api/v1/runs", "", nil)
	e.json(ctx, http.StatusUnauthorized, "GET", "/api/v1/runs", "dci_not-a-token-the-server-made", nil)
}

// TestContractHistory runs run history's contract on PostgreSQL;
// TestContract runs it on SQLite.
func TestContractHistory(t *testing.T) {
	t.Parallel()
	testContractHistory(t, &contractCoverage{}, "PostgreSQL")
}
