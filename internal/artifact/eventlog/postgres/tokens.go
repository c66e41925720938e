package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// The token queries are written here rather than generated, so that the
// tokens stay apart from the log's generated queries; they are few and
// touch one table.
const (
	insertToken = `INSERT INTO store_tokens (id, name, hash, scopes, created_by, created_at)
VALUES ($1, $2, $3, $4, $5, $6)`
	tokenColumns = `id, name, hash, scopes, created_by, created_at, revoked_by, revoked_at`
)

// Tokens implements eventlog.TokenDriver.
func (d *Driver) Tokens() eventlog.TokenQueries { return tokenQueries{d} }

var _ eventlog.TokenDriver = (*Driver)(nil)

type tokenQueries struct{ d *Driver }

func (q tokenQueries) InsertToken(ctx context.Context, t eventlog.TokenRow) error {
	_, err := q.d.pool.Exec(ctx, insertToken, t.ID, t.Name, t.Hash, t.Scopes, t.CreatedBy, t.CreatedAt)
	return tokenErr("insert token", err)
}

func (q tokenQueries) InsertFirstToken(ctx context.Context, t eventlog.TokenRow) (bool, error) {
	tx, err := q.d.pool.Begin(ctx)
	if err != nil {
		return false, mapErr("begin", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// Servers starting together: the lock orders their counts, so exactly
	// one sees no token. It conflicts with itself and with every write.
	if _, err := tx.Exec(ctx, `LOCK TABLE store_tokens IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return false, mapErr("lock tokens", err)
	}
	var n int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM store_tokens`).Scan(&n); err != nil {
		return false, mapErr("count tokens", err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.Exec(ctx, insertToken, t.ID, t.Name, t.Hash, t.Scopes, t.CreatedBy, t.CreatedAt); err != nil {
		return false, tokenErr("insert first token", err)
	}
	return true, mapErr("commit", tx.Commit(ctx))
}

func (q tokenQueries) GetTokenByHash(ctx context.Context, hash string) (eventlog.TokenRow, error) {
	row := q.d.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM store_tokens WHERE hash = $1`, hash)
	t, err := scanToken(row)
	// The hash stands in for a secret: it is not repeated in errors.
	return t, mapErr("get token", err)
}

func (q tokenQueries) ListTokens(ctx context.Context) ([]eventlog.TokenRow, error) {
	rows, err := q.d.pool.Query(ctx, `SELECT `+tokenColumns+` FROM store_tokens ORDER BY name`)
	if err != nil {
		return nil, mapErr("list tokens", err)
	}
	defer rows.Close()
	out := []eventlog.TokenRow{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, mapErr("list tokens", err)
		}
		out = append(out, t)
	}
	return out, mapErr("list tokens", rows.Err())
}

func (q tokenQueries) RevokeToken(ctx context.Context, name, by string, at int64) (int64, error) {
	tag, err := q.d.pool.Exec(ctx,
		`UPDATE store_tokens SET revoked_by = $1, revoked_at = $2 WHERE name = $3 AND revoked_at = 0`, by, at, name)
	if err != nil {
		return 0, mapErr("revoke token", err)
	}
	return tag.RowsAffected(), nil
}

func scanToken(s pgx.Row) (eventlog.TokenRow, error) {
	var t eventlog.TokenRow
	err := s.Scan(&t.ID, &t.Name, &t.Hash, &t.Scopes, &t.CreatedBy, &t.CreatedAt, &t.RevokedBy, &t.RevokedAt)
	return t, err
}

// tokenErr maps a taken name or hash to core.KindConflict.
func tokenErr(op string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return &core.Error{Kind: core.KindConflict, Op: op, Err: err}
	}
	return mapErr(op, err)
}
