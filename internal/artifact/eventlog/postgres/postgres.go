// Package postgres is the PostgreSQL engine of the artifact store's metadata.
package postgres

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/url"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/eventlog/postgres/pgdb"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/pgmigrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationsTable is goose's version table for these migrations.
const MigrationsTable = "artifact_goose_db_version"

// Driver implements eventlog.Driver on PostgreSQL.
type Driver struct {
	url  string
	pool *pgxpool.Pool
}

var _ eventlog.Driver = (*Driver)(nil)

// Open connects to url and applies pending migrations.
func Open(ctx context.Context, url string) (*Driver, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, core.E(core.KindInvalid, "open postgres", "bad database URL: %v", err)
	}
	if _, err := migrate(ctx, url); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, core.Wrap(core.KindUnavailable, "open postgres", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, core.Wrap(core.KindUnavailable, "open postgres", err)
	}
	return &Driver{url: url, pool: pool}, nil
}

// migrate applies pending migrations and returns the versions applied.
func migrate(ctx context.Context, url string) ([]int64, error) {
	// The pool's parser: pool settings in the URL are not server parameters.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, core.E(core.KindInvalid, "migrate postgres", "bad database URL: %v", err)
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "artifact migrations", err)
	}
	locker, err := pgmigrate.Locker(ctx, db, "artifacts")
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithTableName(MigrationsTable), locker)
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "artifact migrations", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, core.Wrap(core.KindUnavailable, "migrate artifact store", err)
	}
	versions := make([]int64, len(res))
	for i, r := range res {
		versions[i] = r.Source.Version
	}
	return versions, nil
}

// Write runs fn in one transaction. Commands begin by locking the log head
// row (GetHead is SELECT … FOR UPDATE), which serializes writers.
func (d *Driver) Write(ctx context.Context, fn func(eventlog.Queries) error) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return mapErr("begin", err)
	}
	q := pgdb.New(tx)
	// Take the head lock first so every write transaction orders behind the
	// previous one, including those that end up emitting nothing.
	if _, err := q.GetHead(ctx); err != nil {
		_ = tx.Rollback(ctx)
		return mapErr("lock log head", err)
	}
	if err := fn(queries{q}); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	return mapErr("commit", tx.Commit(ctx))
}

// Read returns queries on the pool.
func (d *Driver) Read() eventlog.Queries { return queries{pgdb.New(d.pool)} }

// Scratch creates a fresh schema in the same database, for replay.
func (d *Driver) Scratch(ctx context.Context) (eventlog.Driver, func(), error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "artifact_replay_" + hex.EncodeToString(b)
	if _, err := d.pool.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return nil, nil, mapErr("create scratch schema", err)
	}
	drop := func() {
		_, _ = d.pool.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+schema+" CASCADE")
	}
	u, err := url.Parse(d.url)
	if err != nil {
		drop()
		return nil, nil, core.E(core.KindInvalid, "scratch", "bad database URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	s, err := Open(ctx, u.String())
	if err != nil {
		drop()
		return nil, nil, err
	}
	return s, func() { s.Close(); drop() }, nil
}

// Close closes the pool.
func (d *Driver) Close() error {
	d.pool.Close()
	return nil
}

// Exec runs raw SQL; tests use it to tamper with rows.
func (d *Driver) Exec(ctx context.Context, query string, args ...any) error {
	_, err := d.pool.Exec(ctx, query, args...)
	return err
}

func mapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return core.E(core.KindNotFound, op, "not found")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &core.Error{Kind: core.KindCanceled, Op: op, Err: err}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return &core.Error{Kind: core.KindInternal, Op: "postgres " + op, Err: err}
	}
	return &core.Error{Kind: core.KindUnavailable, Op: "postgres " + op, Err: err}
}
