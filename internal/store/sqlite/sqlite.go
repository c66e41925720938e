// Package sqlite is the embedded SQLite engine of the store: WAL, one writer
// connection taking BEGIN IMMEDIATE, and a pool of read-only readers.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/pressly/goose/v3"
	modernc "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/sqlitepool"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/sqlite/sqlitedb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Driver implements store.Driver on SQLite.
type Driver struct {
	writer *sql.DB
	reader *sql.DB
	// feed announces committed changes to this process's watchers: only
	// this process writes the database.
	feed store.Feed
}

var (
	_ store.Driver  = (*Driver)(nil)
	_ store.Watcher = (*Driver)(nil)
)

// Open opens (creating if needed) the database file at path. With migrate
// set it applies pending migrations first.
func Open(ctx context.Context, path string, migrate bool) (*Driver, error) {
	if path == "" || strings.HasPrefix(path, "file:") {
		return nil, core.E(core.KindInvalid, "open sqlite", "give a file path, not %q", path)
	}
	writer, err := sqlitepool.OpenWriter(ctx, path)
	if err != nil {
		return nil, err
	}
	if migrate {
		if err := Migrate(ctx, writer); err != nil {
			writer.Close()
			return nil, err
		}
	}
	reader, err := sqlitepool.OpenReaders(path)
	if err != nil {
		writer.Close()
		return nil, err
	}
	return &Driver{writer: writer, reader: reader}, nil
}

// Migrate applies every pending embedded migration.
func Migrate(ctx context.Context, db *sql.DB) error {
	p, err := provider(db)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return core.Wrap(core.KindInternal, "migrate sqlite", err)
	}
	return nil
}

// MigrateFile opens the database at path and applies pending migrations,
// returning the applied versions.
func MigrateFile(ctx context.Context, path string) ([]int64, error) {
	db, err := sqlitepool.OpenWriter(ctx, path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	p, err := provider(db)
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "migrate sqlite", err)
	}
	var versions []int64
	for _, r := range res {
		versions = append(versions, r.Source.Version)
	}
	return versions, nil
}

func provider(db *sql.DB) (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, mustSub(migrations, "migrations"))
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "migrations", err)
	}
	return p, nil
}

// WriteOne is Write: SQLite's transactions cost no round trips.
func (d *Driver) WriteOne(ctx context.Context, fn func(store.Queries) error) error {
	return d.Write(ctx, fn)
}

// Write runs fn in a BEGIN IMMEDIATE transaction on the writer connection.
func (d *Driver) Write(ctx context.Context, fn func(store.Queries) error) error {
	tx, err := d.writer.BeginTx(ctx, nil)
	if err != nil {
		return mapErr("begin", err)
	}
	var after []func()
	if err := fn(queries{q: sqlitedb.New(tx), after: &after, read: sqlitedb.New(d.reader), feed: &d.feed}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return mapErr("commit", err)
	}
	for _, f := range after {
		f()
	}
	return nil
}

// Watch calls fn with the run id of each event and the attempt id of each
// log append this process commits, until ctx ends.
func (d *Driver) Watch(ctx context.Context, fn func(id string)) { d.feed.Watch(ctx, fn) }

// Read returns queries on the reader pool.
func (d *Driver) Read() store.Queries {
	q := sqlitedb.New(d.reader)
	return queries{q: q, read: q}
}

// Close closes both pools.
func (d *Driver) Close() error {
	return errors.Join(d.reader.Close(), d.writer.Close())
}

func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return core.E(core.KindNotFound, op, "not found")
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &core.Error{Kind: core.KindCanceled, Op: op, Err: err}
	}
	var sqlErr *modernc.Error
	if errors.As(err, &sqlErr) && (sqlErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || sqlErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return &core.Error{Kind: core.KindConflict, Op: op, Err: err}
	}
	return &core.Error{Kind: core.KindInternal, Op: fmt.Sprintf("sqlite %s", op), Err: err}
}

// Ready reports whether the database answers and has every migration.
func (d *Driver) Ready(ctx context.Context) error {
	p, err := provider(d.reader)
	if err != nil {
		return err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return core.Wrap(core.KindUnavailable, "sqlite ready", err)
	}
	if pending {
		return core.E(core.KindUnavailable, "sqlite ready", "migrations are pending: run deltaci migrate")
	}
	return nil
}
