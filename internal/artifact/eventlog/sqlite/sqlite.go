// Package sqlite is the SQLite engine of the artifact store's metadata.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pressly/goose/v3"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/eventlog/sqlite/sqlitedb"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/sqlitepool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationsTable is goose's version table for these migrations, apart from
// Delta CI's own so both can share one database file.
const MigrationsTable = "artifact_goose_db_version"

// Driver implements eventlog.Driver on SQLite: WAL, one writer connection
// taking BEGIN IMMEDIATE, and a read-only pool.
type Driver struct {
	path           string
	writer, reader *sql.DB
}

var _ eventlog.Driver = (*Driver)(nil)

// Open opens (creating if needed) the database at path and applies pending
// migrations.
func Open(ctx context.Context, path string) (*Driver, error) {
	writer, err := sqlitepool.OpenWriter(ctx, path)
	if err != nil {
		return nil, err
	}
	if _, err := migrate(ctx, writer); err != nil {
		writer.Close()
		return nil, err
	}
	reader, err := sqlitepool.OpenReaders(path)
	if err != nil {
		writer.Close()
		return nil, err
	}
	return &Driver{path: path, writer: writer, reader: reader}, nil
}

// migrate applies pending migrations and returns the versions applied.
func migrate(ctx context.Context, db *sql.DB) ([]int64, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "artifact migrations", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithTableName(MigrationsTable))
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

// Write runs fn in a BEGIN IMMEDIATE transaction.
func (d *Driver) Write(ctx context.Context, fn func(eventlog.Queries) error) error {
	tx, err := d.writer.BeginTx(ctx, nil)
	if err != nil {
		return mapErr("begin", err)
	}
	if err := fn(queries{sqlitedb.New(tx)}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return mapErr("commit", tx.Commit())
}

// Read returns queries on the read pool.
func (d *Driver) Read() eventlog.Queries { return queries{sqlitedb.New(d.reader)} }

// Scratch opens a fresh database next to this one, for replay.
func (d *Driver) Scratch(ctx context.Context) (eventlog.Driver, func(), error) {
	dir, err := os.MkdirTemp("", "artifact-replay-")
	if err != nil {
		return nil, nil, core.Wrap(core.KindUnavailable, "scratch database", err)
	}
	s, err := Open(ctx, filepath.Join(dir, "replay.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return s, func() { s.Close(); os.RemoveAll(dir) }, nil
}

// Close closes both pools.
func (d *Driver) Close() error { return errors.Join(d.reader.Close(), d.writer.Close()) }

// Exec runs raw SQL on the writer; tests use it to tamper with rows.
func (d *Driver) Exec(ctx context.Context, query string, args ...any) error {
	_, err := d.writer.ExecContext(ctx, query, args...)
	return err
}

func mapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return core.E(core.KindNotFound, op, "not found")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &core.Error{Kind: core.KindCanceled, Op: op, Err: err}
	}
	return &core.Error{Kind: core.KindInternal, Op: "sqlite " + op, Err: err}
}
