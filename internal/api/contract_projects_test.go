package api_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/protocol"
)

// contractTokens are the credentials of the main contract server.
type contractTokens struct {
	// viewer is an API token the server made whose role is not admin, bot
	// one whose role is admin.
	viewer, bot string
	// session is a runner's session token, which the project API refuses.
	session string
}

// testContractProjects drives the project API with every status it
// documents, and registers the project "contract" for repo, with main
// protected. Refused requests are checked to change nothing.
func testContractProjects(t *testing.T, e *contractEnv, repo string, tok contractTokens) {
	e = e.on(t)
	ctx, bad := t.Context(), contractUnchecked(t.Context())
	tooBig := bytes.Repeat([]byte(" "), api.DefaultMaxJSONBytes+1)
	const path = "/api/v1/projects"
	one := func(name string) string { return path + "/" + name }

	// As the Go client sends it: every field, the times zero.
	var p protocol.Project
	e.json(ctx, http.StatusCreated, "POST", path, contractAPIToken, protocol.Project{
		Name: "contract", RepoURL: repo, DefaultBranch: "main", ProtectedBranches: []string{"main"},
		Secrets: []string{}, Labels: []string{},
	}).decode(t, &p)
	if p.Name != "contract" || p.RepoURL != repo || p.DefaultBranch != "main" || !slices.Equal(p.ProtectedBranches, []string{"main"}) ||
		p.Secrets == nil || len(p.Secrets) != 0 || p.Labels == nil || len(p.Labels) != 0 || p.UntrustedNetwork ||
		p.CreatedAt.IsZero() || !p.UpdatedAt.Equal(p.CreatedAt) {
		t.Errorf("added project = %+v", p)
	}
	// What is left out gets its default: main, nothing protected.
	scratch := e.addProject(ctx, contractProject{Name: "scratch", RepoURL: "https://git.example.com/org/scratch.git"})
	if scratch.DefaultBranch != "main" || len(scratch.ProtectedBranches) != 0 || len(scratch.Secrets) != 0 || len(scratch.Labels) != 0 {
		t.Errorf("a project with defaults = %+v", scratch)
	}

	// Refused additions.
	valid := contractProject{Name: "other", RepoURL: "/srv/git/other"}
	with := func(edit func(*contractProject)) contractProject {
		p := valid
		edit(&p)
		return p
	}
	e.json(ctx, http.StatusUnauthorized, "POST", path, "", valid)
	e.json(ctx, http.StatusUnauthorized, "POST", path, "dci_not-a-token-the-server-made", valid)
	e.json(ctx, http.StatusUnauthorized, "POST", path, tok.session, valid)
	r := e.json(ctx, http.StatusForbidden, "POST", path, tok.viewer, valid)
	if code := r.errorDetail(t).Code; code != protocol.CodeForbidden {
		t.Errorf("a viewer adding a project: code %q", code)
	}
	for _, p := range []contractProject{
		with(func(p *contractProject) { p.RepoURL = "ext::sh -c true" }),
		with(func(p *contractProject) { p.RepoURL = "ext::git-upload-pack" }),
		with(func(p *contractProject) { p.RepoURL = "fd::0" }),
		with(func(p *contractProject) { p.RepoURL = "relative/path.git" }),
		with(func(p *contractProject) { p.RepoURL = "ftp://git.example.com/x.git" }),
		with(func(p *contractProject) { p.DefaultBranch = "a..b" }),
		with(func(p *contractProject) { p.DefaultBranch = "trailing/" }),
		with(func(p *contractProject) { p.ProtectedBranches = []string{"release/[x"} }),
	} {
		ctx := ctx
		if strings.ContainsAny(p.RepoURL, " ") {
			ctx = bad // the schema refuses whitespace too
		}
		r := e.json(ctx, http.StatusBadRequest, "POST", path, contractAPIToken, p)
		if code := r.errorDetail(t).Code; code != string(core.KindInvalid) {
			t.Errorf("adding %+v: code %q", p, code)
		}
	}
	for _, body := range []string{
		`{"name":"Other","repo_url":"/srv/git/other"}`,
		`{"name":"-other","repo_url":"/srv/git/other"}`,
		`{"repo_url":"/srv/git/other"}`,
		`{"name":"other"}`,
		`{"name":"other","repo_url":"-/srv/git/other"}`,
		`{"name":"other","repo_url":"/srv/git/other","secrets":["1TOKEN"]}`,
		`{"name":"other","repo_url":"/srv/git/other","secrets":["A","A"]}`,
		`{"name":"other","repo_url":"/srv/git/other","labels":["two words"]}`,
		`{"name":"other","repo_url":"/srv/git/other","labels":["a,b"]}`,
		`{"name":"other","repo_url":"/srv/git/other","protected_branches":[""]}`,
		`{"name":"other","repo_url":"/srv/git/other","created_at":"2024-05-01T00:00:00Z"}`,
		`{"name":"other","repo_url":"/srv/git/other","owner":"me"}`,
		`{"name":"other",`,
	} {
		r := e.json(bad, http.StatusBadRequest, "POST", path, contractAPIToken, []byte(body))
		if code := r.errorDetail(t).Code; code != string(core.KindInvalid) {
			t.Errorf("adding %s: code %q", body, code)
		}
	}
	r = e.json(ctx, http.StatusConflict, "POST", path, contractAPIToken, with(func(p *contractProject) { p.Name = "contract" }))
	if d := r.errorDetail(t); d.Code != string(core.KindConflict) || !strings.Contains(d.Message, `"contract"`) {
		t.Errorf("a taken name: %+v", d)
	}
	r = e.json(ctx, http.StatusConflict, "POST", path, contractAPIToken, with(func(p *contractProject) { p.RepoURL = repo }))
	if d := r.errorDetail(t); d.Code != string(core.KindConflict) || !strings.Contains(d.Message, repo) {
		t.Errorf("a taken repository: %+v", d)
	}
	e.json(bad, http.StatusRequestEntityTooLarge, "POST", path, contractAPIToken, tooBig)
	e.expect(bad, http.StatusUnsupportedMediaType, "POST", path, contractHeader(contractAPIToken, "Content-Type", "text/plain"), []byte(`{}`))

	// Listing and reading: any API token.
	list := func(tok string) []string {
		t.Helper()
		var got protocol.ProjectList
		e.json(ctx, http.StatusOK, "GET", path, tok, nil).decode(t, &got)
		var names []string
		for _, p := range got.Projects {
			names = append(names, p.Name)
		}
		return names
	}
	if got := list(tok.viewer); !slices.Equal(got, []string{"contract", "scratch"}) {
		t.Errorf("projects = %v, want contract and scratch (nothing refused was added)", got)
	}
	e.json(ctx, http.StatusUnauthorized, "GET", path, "", nil)
	get := func(name string) protocol.Project {
		t.Helper()
		var got protocol.Project
		e.json(ctx, http.StatusOK, "GET", one(name), contractAPIToken, nil).decode(t, &got)
		return got
	}
	if got := get("contract"); got.Name != "contract" || got.RepoURL != repo || !got.CreatedAt.Equal(p.CreatedAt) {
		t.Errorf("GET contract = %+v", got)
	}
	e.json(ctx, http.StatusOK, "GET", one("scratch"), tok.viewer, nil)
	r = e.json(ctx, http.StatusNotFound, "GET", one("nope"), contractAPIToken, nil)
	if code := r.errorDetail(t).Code; code != string(core.KindNotFound) {
		t.Errorf("an unknown project: code %q", code)
	}
	e.json(ctx, http.StatusUnauthorized, "GET", one("contract"), "", nil)

	// Changes: the fields given replace the project's, the others stay.
	before := get("scratch")
	patch := func(want int, tok string, body any) contractResponse {
		t.Helper()
		return e.json(ctx, want, "PATCH", one("scratch"), tok, body)
	}
	patch(http.StatusUnauthorized, "", protocol.ProjectPatch{})
	patch(http.StatusUnauthorized, tok.session, protocol.ProjectPatch{})
	if code := patch(http.StatusForbidden, tok.viewer, protocol.ProjectPatch{}).errorDetail(t).Code; code != protocol.CodeForbidden {
		t.Errorf("a viewer changing a project: code %q", code)
	}
	for _, body := range []string{
		`{"repo_url":"ext::sh"}`,
		`{"repo_url":"relative"}`,
		`{"default_branch":"a..b"}`,
		`{"protected_branches":["{"]}`,
	} {
		r := e.json(ctx, http.StatusBadRequest, "PATCH", one("scratch"), contractAPIToken, []byte(body))
		if code := r.errorDetail(t).Code; code != string(core.KindInvalid) {
			t.Errorf("changing %s: code %q", body, code)
		}
	}
	for _, body := range []string{
		`{"name":"renamed"}`,
		`{"default_branch":""}`,
		`{"secrets":["no-dashes"]}`,
		`{"labels":["x","x"]}`,
		`{"updated_at":"2024-05-01T00:00:00Z"}`,
		`{"untrusted_network":"yes"}`,
		`{"labels":`,
	} {
		r := e.json(bad, http.StatusBadRequest, "PATCH", one("scratch"), contractAPIToken, []byte(body))
		if code := r.errorDetail(t).Code; code != string(core.KindInvalid) {
			t.Errorf("changing %s: code %q", body, code)
		}
	}
	r = e.json(ctx, http.StatusConflict, "PATCH", one("scratch"), contractAPIToken, protocol.ProjectPatch{RepoURL: &repo})
	if d := r.errorDetail(t); d.Code != string(core.KindConflict) || !strings.Contains(d.Message, repo) {
		t.Errorf("changing to a taken repository: %+v", d)
	}
	e.json(ctx, http.StatusNotFound, "PATCH", one("nope"), contractAPIToken, protocol.ProjectPatch{})
	e.json(bad, http.StatusRequestEntityTooLarge, "PATCH", one("scratch"), contractAPIToken, tooBig)
	e.expect(bad, http.StatusUnsupportedMediaType, "PATCH", one("scratch"), contractHeader(contractAPIToken, "Content-Type", "text/plain"), []byte(`{}`))
	if got := get("scratch"); !got.UpdatedAt.Equal(before.UpdatedAt) || got.RepoURL != before.RepoURL || got.DefaultBranch != before.DefaultBranch {
		t.Errorf("scratch after refused changes = %+v, was %+v", got, before)
	}

	branch, secrets, labels, network := "develop", []string{"DEPLOY_KEY", "NPM_TOKEN"}, []string{"os:linux"}, true
	var changed protocol.Project
	// An admin token the server made may change it too.
	e.json(ctx, http.StatusOK, "PATCH", one("scratch"), tok.bot, protocol.ProjectPatch{
		DefaultBranch: &branch, Secrets: &secrets, Labels: &labels, UntrustedNetwork: &network,
	}).decode(t, &changed)
	if changed.DefaultBranch != branch || !slices.Equal(changed.Secrets, secrets) || !slices.Equal(changed.Labels, labels) ||
		!changed.UntrustedNetwork || changed.RepoURL != before.RepoURL || len(changed.ProtectedBranches) != 0 ||
		!changed.CreatedAt.Equal(before.CreatedAt) || changed.UpdatedAt.Before(before.UpdatedAt) {
		t.Errorf("scratch after a change = %+v", changed)
	}
	none := []string{}
	e.json(ctx, http.StatusOK, "PATCH", one("scratch"), contractAPIToken, protocol.ProjectPatch{Labels: &none}).decode(t, &changed)
	if len(changed.Labels) != 0 || !slices.Equal(changed.Secrets, secrets) {
		t.Errorf("scratch after emptying its labels = %+v", changed)
	}
	e.json(ctx, http.StatusOK, "PATCH", one("scratch"), contractAPIToken, protocol.ProjectPatch{}).decode(t, &changed)
	if changed.DefaultBranch != branch || !slices.Equal(changed.Secrets, secrets) {
		t.Errorf("scratch after an empty patch = %+v", changed)
	}

	// Removal.
	e.json(ctx, http.StatusUnauthorized, "DELETE", one("scratch"), "", nil)
	if code := e.json(ctx, http.StatusForbidden, "DELETE", one("scratch"), tok.viewer, nil).errorDetail(t).Code; code != protocol.CodeForbidden {
		t.Errorf("a viewer removing a project: code %q", code)
	}
	get("scratch")
	e.json(ctx, http.StatusNoContent, "DELETE", one("scratch"), contractAPIToken, nil)
	e.json(ctx, http.StatusNotFound, "DELETE", one("scratch"), contractAPIToken, nil)
	e.json(ctx, http.StatusNotFound, "GET", one("scratch"), contractAPIToken, nil)
	if got := list(contractAPIToken); !slices.Equal(got, []string{"contract"}) {
		t.Errorf("projects after the removal = %v", got)
	}
}

// contractTrustPipeline has one job that asks for network.
const contractTrustPipeline = `version: 1
jobs:
  fetch:
    run: 'true'
    sandbox: {network: true}
`

// testContractTrust checks that the server derives a run's trust itself,
// says why, and gives an untrusted run's job network only when its
// project allows it.
func testContractTrust(t *testing.T, cov *contractCoverage) {
	e := newContractEnv(t, contractOptions{apiToken: contractAPIToken, cov: cov})
	ctx := t.Context()
	viewer := e.apiToken("viewer", "viewer")
	labels := []string{api.ExecutorLabel("shell")}

	// main: c1, c2; feature: c2, f1.
	dir := gittest.Repo(t, map[string]string{".deltaci.yml": contractTrustPipeline})
	rev := func(r string) string { return strings.TrimSpace(gittest.Git(t, dir, "rev-parse", r)) }
	c1 := rev("HEAD")
	gittest.Git(t, dir, "commit", "-q", "--allow-empty", "-m", "second")
	c2 := rev("HEAD")
	gittest.Git(t, dir, "checkout", "-q", "-b", "feature")
	gittest.Git(t, dir, "commit", "-q", "--allow-empty", "-m", "feature work")
	f1 := rev("HEAD")
	gittest.Git(t, dir, "checkout", "-q", "main")
	e.addProject(ctx, contractProject{Name: "trust", RepoURL: dir, ProtectedBranches: []string{"main"}})

	var reg protocol.RegisterResponse
	e.json(ctx, http.StatusCreated, "POST", "/api/v1/runners/register", contractRegToken,
		protocol.RegisterRequest{Name: "r", Labels: labels, ProtocolVersion: protocol.Version}).decode(t, &reg)
	var s protocol.SessionResponse
	e.json(ctx, http.StatusOK, "POST", "/api/v1/runner/session", "",
		protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version}).decode(t, &s)
	lease := func(run protocol.Run) protocol.Lease {
		t.Helper()
		var l protocol.Lease
		e.json(ctx, http.StatusOK, "POST", "/api/v1/runner/lease", s.Token, protocol.LeaseRequest{WaitSeconds: 1}).decode(t, &l)
		if l.RunID != run.ID || l.Job != "fetch" {
			t.Fatalf("leased %s of run %s, want fetch of %s", l.Job, l.RunID, run.ID)
		}
		return l
	}
	check := func(what string, run protocol.Run, trusted bool, commit string, reason ...string) {
		t.Helper()
		if run.Project != "trust" || run.Repo != dir || run.Trusted != trusted || run.Commit != commit {
			t.Errorf("%s: run = %+v, want trusted %v at %.12s", what, run, trusted, commit)
		}
		for _, r := range reason {
			if !strings.Contains(run.TrustReason, r) {
				t.Errorf("%s: trust_reason %q does not say %q", what, run.TrustReason, r)
			}
		}
		if got := e.run(ctx, run.ID); got.Trusted != run.Trusted || got.TrustReason != run.TrustReason || got.Project != run.Project {
			t.Errorf("%s: GET run = %+v, created as %+v", what, got, run)
		}
	}

	// A branch that is not protected: untrusted, and no network, which
	// the project does not give untrusted runs.
	feature := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Project: "trust", Ref: "feature"})
	check("feature", feature, false, f1, "branch feature is not protected in project trust")
	if l := lease(feature); l.Trusted || l.Network || !l.NetworkDenied {
		t.Errorf("lease of an untrusted run asking for network = %+v", l)
	}
	untrusted := true
	e.json(ctx, http.StatusOK, "PATCH", "/api/v1/projects/trust", contractAPIToken, protocol.ProjectPatch{UntrustedNetwork: &untrusted})
	feature2 := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Project: "trust", Ref: "refs/heads/feature"})
	check("feature, network allowed", feature2, false, f1, "branch feature is not protected")
	if l := lease(feature2); l.Trusted || !l.Network || l.NetworkDenied {
		t.Errorf("lease of an untrusted run of a project giving them network = %+v", l)
	}

	// The protected branch at its tip, named by the repository and
	// defaulting to the project's default branch: trusted.
	main := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Repo: dir})
	check("main", main, true, c2, "push of protected branch main at its tip "+c2[:12])
	if main.Ref != "refs/heads/main" || main.Event != core.EventPush {
		t.Errorf("main run = %+v", main)
	}
	if l := lease(main); !l.Trusted || !l.Network || l.NetworkDenied {
		t.Errorf("lease of a trusted run = %+v", l)
	}

	// A commit of main's history is trusted; one that is not on main
	// (feature's) is not, whatever ref the request names.
	old := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Project: "trust", Ref: "main", Commit: c1})
	check("main at its parent", old, true, c1, "at "+c1[:12]+", reachable from its tip "+c2[:12])
	off := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Project: "trust", Ref: "main", Commit: f1})
	check("main at a commit of feature", off, false, f1, "commit "+f1[:12]+" is not on protected branch main", "tip "+c2[:12])
	// A revision that is no branch is not trusted.
	rev2 := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Project: "trust", Ref: c2})
	check("a commit as the ref", rev2, false, c2, "the ref is not a branch")

	// A manual run of a protected branch is trusted; a viewer may start
	// no run at all, manual or push.
	manual := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Project: "trust", Event: core.EventManual})
	check("manual by an admin", manual, true, c2, "manual of protected branch main")
	for _, ev := range []string{core.EventManual, core.EventPush} {
		r := e.json(ctx, http.StatusForbidden, "POST", "/api/v1/runs", viewer, protocol.CreateRunRequest{Project: "trust", Event: ev})
		if code := r.errorDetail(t).Code; code != protocol.CodeForbidden {
			t.Errorf("a %s run by a viewer: code %q", ev, code)
		}
	}

	// Taking main off the protected branches makes its next run untrusted.
	none := []string{}
	e.json(ctx, http.StatusOK, "PATCH", "/api/v1/projects/trust", contractAPIToken, protocol.ProjectPatch{ProtectedBranches: &none})
	unprotected := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Project: "trust"})
	check("main, unprotected", unprotected, false, c2, "branch main is not protected")
	if got := e.run(ctx, main.ID); !got.Trusted {
		t.Errorf("a run made trusted lost its trust: %+v", got)
	}
}
