package sqlite

import (
	"context"
	"errors"

	modernc "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// The token queries are written here rather than generated, so that the
// tokens stay apart from the log's generated queries; they are few and
// touch one table.
const (
	insertToken = `INSERT INTO store_tokens (id, name, hash, scopes, created_by, created_at)
VALUES (?, ?, ?, ?, ?, ?)`
	tokenColumns = `id, name, hash, scopes, created_by, created_at, revoked_by, revoked_at`
)

// Tokens implements eventlog.TokenDriver.
func (d *Driver) Tokens() eventlog.TokenQueries { return tokenQueries{d} }

var _ eventlog.TokenDriver = (*Driver)(nil)

type tokenQueries struct{ d *Driver }

func (q tokenQueries) InsertToken(ctx context.Context, t eventlog.TokenRow) error {
	_, err := q.d.writer.ExecContext(ctx, insertToken, t.ID, t.Name, t.Hash, t.Scopes, t.CreatedBy, t.CreatedAt)
	return tokenErr("insert token", err)
}

func (q tokenQueries) InsertFirstToken(ctx context.Context, t eventlog.TokenRow) (bool, error) {
	// The writer's transactions begin IMMEDIATE: no other writer runs
	// between the count and the insert.
	tx, err := q.d.writer.BeginTx(ctx, nil)
	if err != nil {
		return false, mapErr("begin", err)
	}
	defer func() { _ = tx.Rollback() }()
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM store_tokens`).Scan(&n); err != nil {
		return false, mapErr("count tokens", err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, insertToken, t.ID, t.Name, t.Hash, t.Scopes, t.CreatedBy, t.CreatedAt); err != nil {
		return false, tokenErr("insert first token", err)
	}
	return true, mapErr("commit", tx.Commit())
}

func (q tokenQueries) GetTokenByHash(ctx context.Context, hash string) (eventlog.TokenRow, error) {
	row := q.d.reader.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM store_tokens WHERE hash = ?`, hash)
	t, err := scanToken(row)
	// The hash stands in for a secret: it is not repeated in errors.
	return t, mapErr("get token", err)
}

func (q tokenQueries) ListTokens(ctx context.Context) ([]eventlog.TokenRow, error) {
	rows, err := q.d.reader.QueryContext(ctx, `SELECT `+tokenColumns+` FROM store_tokens ORDER BY name`)
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
	res, err := q.d.writer.ExecContext(ctx,
		`UPDATE store_tokens SET revoked_by = ?, revoked_at = ? WHERE name = ? AND revoked_at = 0`, by, at, name)
	if err != nil {
		return 0, mapErr("revoke token", err)
	}
	n, err := res.RowsAffected()
	return n, mapErr("revoke token", err)
}

func scanToken(s interface{ Scan(...any) error }) (eventlog.TokenRow, error) {
	var t eventlog.TokenRow
	err := s.Scan(&t.ID, &t.Name, &t.Hash, &t.Scopes, &t.CreatedBy, &t.CreatedAt, &t.RevokedBy, &t.RevokedAt)
	return t, err
}

// tokenErr maps a taken name or hash to core.KindConflict.
func tokenErr(op string, err error) error {
	var se *modernc.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return &core.Error{Kind: core.KindConflict, Op: op, Err: err}
	}
	return mapErr(op, err)
}
