package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

func wantRoles(t *testing.T, b bundle, project string, want ...store.RoleBinding) {
	t.Helper()
	got, err := b.s.ProjectRoles(b.ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	if want == nil {
		want = []store.RoleBinding{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("roles of %s (-want +got):\n%s", project, diff)
	}
}

// RunWebAuth runs the conformance tests of the web UI's sign-in: project
// role bindings, the public flag, sessions and logins under way.
func RunWebAuth(t *testing.T, open Opener) {
	t.Run("PublicFlag", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		p := mustCreateProject(t, b, core.Project{Name: "web", RepoURL: "/srv/git/web"})
		if p.Public {
			t.Fatal("a new project is public")
		}
		p.Public = true
		got, err := b.s.UpdateProject(b.ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Public {
			t.Fatal("UpdateProject did not make the project public")
		}
		if got, err = b.s.Project(b.ctx, "web"); err != nil || !got.Public {
			t.Fatalf("read back: public %v, %v", got.Public, err)
		}
	})

	t.Run("RoleBindings", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		mustCreateProject(t, b, core.Project{Name: "web", RepoURL: "/srv/git/web"})
		mustCreateProject(t, b, core.Project{Name: "api", RepoURL: "/srv/git/api"})
		wantRoles(t, b, "web")
		now := b.clock.now()
		for _, g := range []struct{ principal, role string }{
			{"group:ops", "maintainer"}, {"ada@example.com", "viewer"}, {"sub:42", "admin"}, {"Group:Z", "viewer"},
		} {
			got, err := b.s.SetProjectRole(b.ctx, "web", g.principal, g.role)
			if err != nil {
				t.Fatalf("SetProjectRole(%s=%s): %v", g.principal, g.role, err)
			}
			if want := (store.RoleBinding{Project: "web", Principal: g.principal, Role: g.role, CreatedAt: now}); got != want {
				t.Fatalf("SetProjectRole = %+v, want %+v", got, want)
			}
		}
		// Replacing keeps one binding per principal.
		if _, err := b.s.SetProjectRole(b.ctx, "web", "ada@example.com", "admin"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.s.SetProjectRole(b.ctx, "api", "ada@example.com", "viewer"); err != nil {
			t.Fatal(err)
		}
		// Byte order, whatever the database's collation.
		wantRoles(t, b, "web",
			store.RoleBinding{Project: "web", Principal: "Group:Z", Role: "viewer", CreatedAt: now},
			store.RoleBinding{Project: "web", Principal: "ada@example.com", Role: "admin", CreatedAt: now},
			store.RoleBinding{Project: "web", Principal: "group:ops", Role: "maintainer", CreatedAt: now},
			store.RoleBinding{Project: "web", Principal: "sub:42", Role: "admin", CreatedAt: now},
		)
		if err := b.s.RemoveProjectRole(b.ctx, "web", "sub:42"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, b.s.RemoveProjectRole(b.ctx, "web", "sub:42"), core.KindNotFound, "sub:42 has no role")
		wantRoles(t, b, "api", store.RoleBinding{Project: "api", Principal: "ada@example.com", Role: "viewer", CreatedAt: now})

		// A removed project takes its bindings along; one made again
		// under the name starts with none.
		if err := b.s.RemoveProject(b.ctx, "api"); err != nil {
			t.Fatal(err)
		}
		mustCreateProject(t, b, core.Project{Name: "api", RepoURL: "/srv/git/api"})
		wantRoles(t, b, "api")
	})

	t.Run("ErrRoleBindings", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		mustCreateProject(t, b, core.Project{Name: "web", RepoURL: "/srv/git/web"})
		_, err := b.s.SetProjectRole(b.ctx, "nope", "ada@example.com", "viewer")
		wantErr(t, err, core.KindNotFound, `no project "nope"`)
		_, err = b.s.SetProjectRole(b.ctx, "web", "ada@example.com", "owner")
		wantErr(t, err, core.KindInvalid, `role "owner"`)
		_, err = b.s.SetProjectRole(b.ctx, "web", "", "viewer")
		wantErr(t, err, core.KindInvalid, "principal is required")
		wantRoles(t, b, "web")
	})

	t.Run("WebSessions", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		now := b.clock.now()
		ws := store.WebSession{
			IDHash: "h1", Subject: "42", Email: "ada@example.com", EmailVerified: true, Name: "Ada",
			Groups: []string{"ops", "dev"}, CreatedAt: now, SeenAt: now, ExpiresAt: now.Add(time.Hour),
		}
		if err := b.s.CreateWebSession(b.ctx, ws); err != nil {
			t.Fatal(err)
		}
		got, err := b.s.WebSession(b.ctx, "h1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ws, got); diff != "" {
			t.Fatalf("session round trip (-want +got):\n%s", diff)
		}
		wantKind(t, b.s.CreateWebSession(b.ctx, ws), core.KindConflict)
		wantErr(t, b.s.CreateWebSession(b.ctx, store.WebSession{IDHash: "h2"}), core.KindInvalid, "subject")

		// Touching moves the idle clock forward only.
		if err := b.s.TouchWebSession(b.ctx, "h1", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := b.s.TouchWebSession(b.ctx, "h1", now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if got, _ = b.s.WebSession(b.ctx, "h1"); !got.SeenAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("SeenAt = %v, want %v", got.SeenAt, now.Add(time.Minute))
		}

		if err := b.s.DeleteWebSession(b.ctx, "h1"); err != nil {
			t.Fatal(err)
		}
		_, err = b.s.WebSession(b.ctx, "h1")
		wantErr(t, err, core.KindNotFound, "no such session")
		if err := b.s.DeleteWebSession(b.ctx, "h1"); err != nil {
			t.Fatalf("deleting a deleted session: %v", err)
		}
	})

	t.Run("PruneWebAuth", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		now := b.clock.now()
		mk := func(h string, seen, expires time.Time) {
			t.Helper()
			err := b.s.CreateWebSession(b.ctx, store.WebSession{IDHash: h, Subject: "s", CreatedAt: now.Add(-time.Hour), SeenAt: seen, ExpiresAt: expires})
			if err != nil {
				t.Fatal(err)
			}
		}
		mk("live", now, now.Add(time.Hour))
		mk("idle", now.Add(-2*time.Hour), now.Add(time.Hour))
		mk("old", now, now)
		for _, l := range []store.WebLogin{
			{StateHash: "fresh", Nonce: "n", Verifier: "v", Next: "/", ExpiresAt: now.Add(time.Minute)},
			{StateHash: "stale", Nonce: "n", Verifier: "v", Next: "/", ExpiresAt: now},
		} {
			if err := b.s.CreateWebLogin(b.ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		sessions, logins, err := b.s.PruneWebAuth(b.ctx, now, now.Add(-time.Hour))
		if err != nil || sessions != 2 || logins != 1 {
			t.Fatalf("PruneWebAuth = %d sessions, %d logins, %v; want 2, 1", sessions, logins, err)
		}
		if _, err := b.s.WebSession(b.ctx, "live"); err != nil {
			t.Fatalf("the live session went: %v", err)
		}
		for _, h := range []string{"idle", "old"} {
			_, err := b.s.WebSession(b.ctx, h)
			wantKind(t, err, core.KindNotFound)
		}
		if _, err := b.s.TakeWebLogin(b.ctx, "fresh"); err != nil {
			t.Fatalf("the fresh login went: %v", err)
		}
		_, err = b.s.TakeWebLogin(b.ctx, "stale")
		wantKind(t, err, core.KindNotFound)
	})

	t.Run("WebLoginTakenOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		l := store.WebLogin{StateHash: "st", Nonce: "n", Verifier: "v", Next: "/runs?x=1", ExpiresAt: b.clock.now().Add(time.Minute)}
		if err := b.s.CreateWebLogin(b.ctx, l); err != nil {
			t.Fatal(err)
		}
		wantKind(t, b.s.CreateWebLogin(b.ctx, l), core.KindConflict)
		got, err := b.s.TakeWebLogin(b.ctx, "st")
		if err != nil || got != l {
			t.Fatalf("TakeWebLogin = %+v, %v; want %+v", got, err, l)
		}
		_, err = b.s.TakeWebLogin(b.ctx, "st")
		wantErr(t, err, core.KindNotFound, "no such login")
		wantErr(t, b.s.CreateWebLogin(b.ctx, store.WebLogin{StateHash: "x"}), core.KindInvalid, "nonce")
	})
}
