package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// webProject is a project with every field set.
func webProject() core.Project {
	return core.Project{
		Name: "web", RepoURL: "https://git.example.com/acme/web.git", DefaultBranch: "trunk",
		Protected: []string{"trunk", "release/**"}, Secrets: []string{"DEPLOY_KEY", "NPM_TOKEN"},
		UntrustedNetwork: true, Labels: []string{"linux", "executor:shell"}, Public: true,
		Forge: core.ProjectForge{
			Kind: "gitlab", APIURL: "https://git.example.com/api/v4", Repo: "acme/platform/web",
			TokenSecret: "GITLAB_TOKEN", HookSecret: "0123abcd", KeepSuperseded: true,
		},
	}
}

func mustCreateProject(t *testing.T, b bundle, p core.Project) core.Project {
	t.Helper()
	got, err := b.s.CreateProject(b.ctx, p)
	if err != nil {
		t.Fatalf("CreateProject(%s): %v", p.Name, err)
	}
	return got
}

// wantErr checks an error's kind and that its message says want.
func wantErr(t *testing.T, err error, k core.Kind, want string) {
	t.Helper()
	wantKind(t, err, k)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

// wantProjects checks the stored projects, by name.
func wantProjects(t *testing.T, b bundle, want ...core.Project) {
	t.Helper()
	got, err := b.s.Projects(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want == nil {
		want = []core.Project{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("stored projects (-want +got):\n%s", diff)
	}
}

// RunProjects runs the conformance tests of projects, API tokens and the
// trust fields of runs against one engine.
func RunProjects(t *testing.T, open Opener) {
	t.Run("CreateProject", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		in := webProject()
		p := mustCreateProject(t, b, in)
		want := in
		want.ID, want.CreatedAt, want.UpdatedAt = p.ID, b.clock.now(), b.clock.now()
		if p.ID == "" {
			t.Fatal("created project has no ID")
		}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Fatalf("created project (-want +got):\n%s", diff)
		}
		got, err := b.s.Project(b.ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Fatalf("Project round trip (-created +read):\n%s", diff)
		}
		got, err = b.s.ProjectByRepo(b.ctx, in.RepoURL)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Fatalf("ProjectByRepo round trip (-created +read):\n%s", diff)
		}
	})

	t.Run("CreateProjectDefaults", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		p := mustCreateProject(t, b, core.Project{Name: "tiny", RepoURL: "/srv/git/tiny"})
		want := core.Project{
			ID: p.ID, Name: "tiny", RepoURL: "/srv/git/tiny", DefaultBranch: store.DefaultBranch,
			Protected: []string{}, Secrets: []string{}, Labels: []string{},
			CreatedAt: b.clock.now(), UpdatedAt: b.clock.now(),
		}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Fatalf("created project (-want +got):\n%s", diff)
		}
		if store.DefaultBranch != "main" {
			t.Fatalf("DefaultBranch = %q, want main", store.DefaultBranch)
		}
		wantProjects(t, b, p)
	})

	t.Run("ProjectsByName", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		wantProjects(t, b)
		// Punctuation sorts before letters, as bytes do, whatever the
		// database's locale.
		var want []core.Project
		for _, name := range []string{"ab", "a_a", "a.b", "a-c", "0x"} {
			want = append(want, mustCreateProject(t, b, core.Project{Name: name, RepoURL: "/srv/git/" + name}))
			b.clock.advance(time.Second)
		}
		order := []int{4, 3, 2, 1, 0} // "0x", "a-c", "a.b", "a_a", "ab"
		sorted := make([]core.Project, len(order))
		for i, j := range order {
			sorted[i] = want[j]
		}
		wantProjects(t, b, sorted...)
	})

	t.Run("UpdateProject", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		p := mustCreateProject(t, b, webProject())
		other := mustCreateProject(t, b, core.Project{Name: "api", RepoURL: "/srv/git/api"})
		b.clock.advance(time.Minute)
		change := core.Project{
			ID: "ignored", Name: "web", RepoURL: "/srv/git/web", DefaultBranch: "main",
			Protected: []string{"main"}, Secrets: []string{}, UntrustedNetwork: false, Labels: nil,
			CreatedAt: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		}
		got, err := b.s.UpdateProject(b.ctx, change)
		if err != nil {
			t.Fatal(err)
		}
		want := core.Project{
			ID: p.ID, Name: "web", RepoURL: "/srv/git/web", DefaultBranch: "main",
			Protected: []string{"main"}, Secrets: []string{}, Labels: []string{},
			CreatedAt: p.CreatedAt, UpdatedAt: b.clock.now(),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("updated project (-want +got):\n%s", diff)
		}
		wantProjects(t, b, other, want)
		if _, err := b.s.ProjectByRepo(b.ctx, webProject().RepoURL); core.KindOf(err) != core.KindNotFound {
			t.Fatalf("ProjectByRepo(old URL) after the update = %v, want not found", err)
		}
	})

	t.Run("RemoveProject", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		p := mustCreateProject(t, b, webProject())
		other := mustCreateProject(t, b, core.Project{Name: "api", RepoURL: "/srv/git/api"})
		if err := b.s.RemoveProject(b.ctx, "web"); err != nil {
			t.Fatal(err)
		}
		_, err := b.s.Project(b.ctx, "web")
		wantErr(t, err, core.KindNotFound, `"web"`)
		wantErr(t, b.s.RemoveProject(b.ctx, "web"), core.KindNotFound, `"web"`)
		wantProjects(t, b, other)
		// Its name and repository are free again.
		again := mustCreateProject(t, b, webProject())
		if again.ID == p.ID {
			t.Fatalf("a new project reused the removed one's ID %s", p.ID)
		}
	})

	t.Run("ErrProjectNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		mustCreateProject(t, b, webProject())
		_, err := b.s.Project(b.ctx, "nope")
		wantErr(t, err, core.KindNotFound, `"nope"`)
		_, err = b.s.ProjectByRepo(b.ctx, "/srv/git/nope")
		wantErr(t, err, core.KindNotFound, "/srv/git/nope")
		_, err = b.s.UpdateProject(b.ctx, core.Project{Name: "nope", RepoURL: "/srv/git/nope", DefaultBranch: "main"})
		wantErr(t, err, core.KindNotFound, `"nope"`)
		wantErr(t, b.s.RemoveProject(b.ctx, "nope"), core.KindNotFound, `"nope"`)
		if _, err := b.s.Project(b.ctx, "web"); err != nil {
			t.Fatalf("the existing project after the misses: %v", err)
		}
	})

	t.Run("ErrProjectConflict", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		web := mustCreateProject(t, b, webProject())
		api := mustCreateProject(t, b, core.Project{Name: "api", RepoURL: "/srv/git/api"})
		b.clock.advance(time.Minute)

		sameName := webProject()
		sameName.RepoURL = "/srv/git/other"
		_, err := b.s.CreateProject(b.ctx, sameName)
		wantErr(t, err, core.KindConflict, `project "web" exists`)

		sameRepo := webProject()
		sameRepo.Name = "web2"
		_, err = b.s.CreateProject(b.ctx, sameRepo)
		wantErr(t, err, core.KindConflict, web.RepoURL+` is already project "web"`)

		// The name is named first when both are taken.
		_, err = b.s.CreateProject(b.ctx, webProject())
		wantErr(t, err, core.KindConflict, `project "web" exists`)

		takeRepo := api
		takeRepo.RepoURL = web.RepoURL
		_, err = b.s.UpdateProject(b.ctx, takeRepo)
		wantErr(t, err, core.KindConflict, web.RepoURL+` is already project "web"`)

		wantProjects(t, b, api, web)
	})

	t.Run("ErrInvalidProjectWritesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		for _, p := range []core.Project{
			{Name: "Web", RepoURL: "/srv/git/web"},
			{Name: "web", RepoURL: ""},
			{Name: "web", RepoURL: "/srv/git/web", Secrets: []string{"NOT-A-NAME"}},
			{Name: "web", RepoURL: "/srv/git/web", Protected: []string{"[oops"}},
			{Name: "web", RepoURL: "/srv/git/web", Labels: []string{"a,b"}},
		} {
			_, err := b.s.CreateProject(b.ctx, p)
			wantKind(t, err, core.KindInvalid)
		}
		wantProjects(t, b)

		web := mustCreateProject(t, b, webProject())
		b.clock.advance(time.Minute)
		bad := web
		bad.RepoURL = "/srv/git/new"
		bad.DefaultBranch = "bad..branch"
		_, err := b.s.UpdateProject(b.ctx, bad)
		wantErr(t, err, core.KindInvalid, `"bad..branch"`)
		bad.DefaultBranch = "" // defaulted only at creation
		_, err = b.s.UpdateProject(b.ctx, bad)
		wantKind(t, err, core.KindInvalid)
		wantProjects(t, b, web)
	})

	t.Run("RunProjectAndTrustReason", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		nr := store.NewRun{
			Repo: "/srv/git/web", Ref: "main", Commit: "abc", Event: core.EventPush, Trusted: true,
			Project: "web", TrustReason: `push to "main", protected by "main"`,
			Jobs: []store.NewJob{{Spec: spec("a")}},
		}
		r, jobs, err := b.s.CreateRun(b.ctx, "test", nr)
		if err != nil {
			t.Fatal(err)
		}
		if r.Project != nr.Project || r.TrustReason != nr.TrustReason {
			t.Fatalf("created run has project %q, trust reason %q", r.Project, r.TrustReason)
		}
		check := func(how string, got core.Run) {
			t.Helper()
			if got.ID != r.ID || got.Project != nr.Project || got.TrustReason != nr.TrustReason {
				t.Fatalf("%s: run %s has project %q, trust reason %q; want %q, %q",
					how, got.ID, got.Project, got.TrustReason, nr.Project, nr.TrustReason)
			}
		}
		got, err := b.s.Run(b.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		check("Run", got)
		active, err := b.s.ActiveRuns(b.ctx)
		if err != nil || len(active) != 1 {
			t.Fatalf("ActiveRuns = %v, %v; want the run", active, err)
		}
		check("ActiveRuns", active[0])
		_, got, err = b.s.JobRun(b.ctx, jobs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		check("JobRun", got)
		mustUpdate(t, b, func(tx *store.Tx) error {
			if err := tx.MoveRun(b.ctx, r.ID, core.RunQueued, core.RunPlanning, ""); err != nil {
				return err
			}
			if err := tx.MoveRun(b.ctx, r.ID, core.RunPlanning, core.RunRunning, ""); err != nil {
				return err
			}
			if err := tx.MoveJob(b.ctx, jobs[0], core.JobQueued, ""); err != nil {
				return err
			}
			_, err := tx.EnqueueAttempt(b.ctx, jobs[0])
			return err
		})
		c, err := b.s.ClaimAttempt(b.ctx, "runner-1", store.Claim{RunnerID: "runner-1", Labels: []string{"linux"}, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		check("ClaimAttempt", c.Run)

		plain, _, err := b.s.CreateRun(b.ctx, "test", store.NewRun{Repo: "/tmp/x", Event: core.EventManual})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := b.s.Run(b.ctx, plain.ID); got.Project != "" || got.TrustReason != "" {
			t.Fatalf("a run without a project reads back project %q, trust reason %q", got.Project, got.TrustReason)
		}
	})

	t.Run("APIToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		if n, err := b.s.CountAPITokens(b.ctx); err != nil || n != 0 {
			t.Fatalf("CountAPITokens on a new store = %d, %v; want 0", n, err)
		}
		tok, err := b.s.CreateAPIToken(b.ctx, store.APIToken{Name: "ci bot", Role: "admin", Hash: "sha256:aa"})
		if err != nil {
			t.Fatal(err)
		}
		want := store.APIToken{ID: tok.ID, Name: "ci bot", Role: "admin", Hash: "sha256:aa", CreatedAt: b.clock.now()}
		if tok.ID == "" || tok != want {
			t.Fatalf("created %+v, want %+v with an ID", tok, want)
		}
		got, err := b.s.APITokenByHash(b.ctx, "sha256:aa")
		if err != nil {
			t.Fatal(err)
		}
		if got != tok {
			t.Fatalf("APITokenByHash = %+v, want %+v", got, tok)
		}
		_, err = b.s.APITokenByHash(b.ctx, "sha256:bb")
		wantKind(t, err, core.KindNotFound)
		_, err = b.s.CreateAPIToken(b.ctx, store.APIToken{Name: "again", Role: "viewer", Hash: "sha256:aa"})
		wantKind(t, err, core.KindConflict)
		_, err = b.s.CreateAPIToken(b.ctx, store.APIToken{Name: "no hash", Role: "admin"})
		wantKind(t, err, core.KindInvalid)
		_, err = b.s.CreateAPIToken(b.ctx, store.APIToken{Name: "no role", Hash: "sha256:cc"})
		wantKind(t, err, core.KindInvalid)
		_, _, err = b.s.CreateFirstAPIToken(b.ctx, store.APIToken{Name: "no role", Hash: "sha256:dd"})
		wantKind(t, err, core.KindInvalid)
		if n, err := b.s.CountAPITokens(b.ctx); err != nil || n != 1 {
			t.Fatalf("CountAPITokens = %d, %v; want 1", n, err)
		}
	})

	t.Run("CreateFirstAPITokenOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		const callers = 8
		type result struct {
			tok     store.APIToken
			created bool
			err     error
		}
		results := make([]result, callers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				<-start
				tok, created, err := b.s.CreateFirstAPIToken(b.ctx, store.APIToken{
					Name: "admin", Role: "admin", Hash: fmt.Sprintf("sha256:%02d", i),
				})
				results[i] = result{tok, created, err}
			})
		}
		close(start)
		wg.Wait()
		var first []store.APIToken
		for i, r := range results {
			if r.err != nil {
				t.Fatalf("caller %d: %v", i, r.err)
			}
			if r.created {
				first = append(first, r.tok)
			}
		}
		if len(first) != 1 {
			t.Fatalf("%d callers created the first token, want exactly 1", len(first))
		}
		if n, err := b.s.CountAPITokens(b.ctx); err != nil || n != 1 {
			t.Fatalf("CountAPITokens = %d, %v; want 1", n, err)
		}
		if got, err := b.s.APITokenByHash(b.ctx, first[0].Hash); err != nil || got != first[0] {
			t.Fatalf("APITokenByHash(the first) = %+v, %v; want %+v", got, err, first[0])
		}
		if _, created, err := b.s.CreateFirstAPIToken(b.ctx, store.APIToken{Role: "admin", Hash: "sha256:late"}); err != nil || created {
			t.Fatalf("CreateFirstAPIToken once a token exists = %v, %v; want false", created, err)
		}
	})
}
