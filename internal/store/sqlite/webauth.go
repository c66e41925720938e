package sqlite

import (
	"context"
	"time"

	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/sqlite/sqlitedb"
)

func (x queries) UpsertProjectRole(ctx context.Context, b store.RoleBinding) error {
	return mapErr("set project role", x.q.UpsertProjectRole(ctx, sqlitedb.UpsertProjectRoleParams{
		Project: b.Project, Principal: b.Principal, Role: b.Role, CreatedAt: store.Millis(b.CreatedAt),
	}))
}

func (x queries) DeleteProjectRole(ctx context.Context, project, principal string) (bool, error) {
	n, err := x.q.DeleteProjectRole(ctx, sqlitedb.DeleteProjectRoleParams{Project: project, Principal: principal})
	return n == 1, mapErr("delete project role", err)
}

func (x queries) ListProjectRoles(ctx context.Context, project string) ([]store.RoleBinding, error) {
	rows, err := x.q.ListProjectRoles(ctx, project)
	if err != nil {
		return nil, mapErr("list project roles", err)
	}
	out := make([]store.RoleBinding, 0, len(rows))
	for _, r := range rows {
		out = append(out, store.RoleBinding{Project: r.Project, Principal: r.Principal, Role: r.Role, CreatedAt: store.FromMillis(r.CreatedAt)})
	}
	return out, nil
}

func (x queries) InsertWebSession(ctx context.Context, ws store.WebSession) error {
	return mapErr("insert web session", x.q.InsertWebSession(ctx, sqlitedb.InsertWebSessionParams{
		IDHash: ws.IDHash, Subject: ws.Subject, Email: ws.Email, EmailVerified: boolInt(ws.EmailVerified), Name: ws.Name,
		GroupsJson: store.EncodeGroups(ws.Groups), CreatedAt: store.Millis(ws.CreatedAt), SeenAt: store.Millis(ws.SeenAt),
		ExpiresAt: store.Millis(ws.ExpiresAt),
	}))
}

func (x queries) GetWebSession(ctx context.Context, idHash string) (store.WebSession, error) {
	r, err := x.q.GetWebSession(ctx, idHash)
	if err != nil {
		return store.WebSession{}, mapErr("web session", err)
	}
	groups, err := store.DecodeGroups(r.GroupsJson)
	if err != nil {
		return store.WebSession{}, err
	}
	return store.WebSession{
		IDHash: r.IDHash, Subject: r.Subject, Email: r.Email, EmailVerified: r.EmailVerified != 0, Name: r.Name, Groups: groups,
		CreatedAt: store.FromMillis(r.CreatedAt), SeenAt: store.FromMillis(r.SeenAt), ExpiresAt: store.FromMillis(r.ExpiresAt),
	}, nil
}

func (x queries) TouchWebSession(ctx context.Context, idHash string, at time.Time) error {
	return mapErr("touch web session", x.q.TouchWebSession(ctx, sqlitedb.TouchWebSessionParams{IDHash: idHash, SeenAt: store.Millis(at)}))
}

func (x queries) DeleteWebSession(ctx context.Context, idHash string) error {
	return mapErr("delete web session", x.q.DeleteWebSession(ctx, idHash))
}

func (x queries) PruneWebSessions(ctx context.Context, now, idleBefore time.Time) (int64, error) {
	n, err := x.q.PruneWebSessions(ctx, sqlitedb.PruneWebSessionsParams{Now: store.Millis(now), IdleBefore: store.Millis(idleBefore)})
	return n, mapErr("prune web sessions", err)
}

func (x queries) InsertWebLogin(ctx context.Context, l store.WebLogin) error {
	return mapErr("insert web login", x.q.InsertWebLogin(ctx, sqlitedb.InsertWebLoginParams{
		StateHash: l.StateHash, Nonce: l.Nonce, Verifier: l.Verifier, Next: l.Next, ExpiresAt: store.Millis(l.ExpiresAt),
	}))
}

func (x queries) TakeWebLogin(ctx context.Context, stateHash string) (store.WebLogin, error) {
	r, err := x.q.TakeWebLogin(ctx, stateHash)
	if err != nil {
		return store.WebLogin{}, mapErr("web login", err)
	}
	return store.WebLogin{StateHash: r.StateHash, Nonce: r.Nonce, Verifier: r.Verifier, Next: r.Next, ExpiresAt: store.FromMillis(r.ExpiresAt)}, nil
}

func (x queries) PruneWebLogins(ctx context.Context, now time.Time) (int64, error) {
	n, err := x.q.PruneWebLogins(ctx, store.Millis(now))
	return n, mapErr("prune web logins", err)
}
