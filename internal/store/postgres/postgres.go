// Package postgres is the production engine of the store, on a pgx/v5 pool.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/pgmigrate"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/postgres/pgdb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultMaxConns is the pool size when the URL sets no pool_max_conns.
const DefaultMaxConns = 20

// Driver implements store.Driver on PostgreSQL.
type Driver struct {
	pool   *pgxpool.Pool
	groups groups // of one-statement transactions (WriteOne)
}

var _ store.Driver = (*Driver)(nil)

// Open connects to the database at url (postgres://…). With migrate set it
// applies pending migrations first.
func Open(ctx context.Context, url string, migrate bool) (*Driver, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, core.E(core.KindInvalid, "open postgres", "bad database URL: %v", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgxpool's default (the CPU count, at least 4) leaves a server
		// little room: LISTEN and the leader's lock each hold a connection
		// for good, and every request needs one for a moment.
		cfg.MaxConns = DefaultMaxConns
	}
	if migrate {
		if _, err := Migrate(ctx, url); err != nil {
			return nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, core.Wrap(core.KindUnavailable, "open postgres", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, core.Wrap(core.KindUnavailable, "open postgres", err)
	}
	return &Driver{pool: pool, groups: groups{pool: pool}}, nil
}

// Migrate applies every pending embedded migration to the database at url and
// returns the versions it applied.
func Migrate(ctx context.Context, url string) ([]int64, error) {
	// The pool's parser, so that pool settings in the URL (pool_max_conns)
	// are not sent to the server as parameters.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, core.E(core.KindInvalid, "migrate postgres", "bad database URL: %v", err)
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return nil, core.Wrap(core.KindUnavailable, "migrate postgres", err)
	}
	return migrateDB(ctx, db)
}

func provider(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "migrations", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, opts...)
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "migrations", err)
	}
	return p, nil
}

func migrateDB(ctx context.Context, db *sql.DB) ([]int64, error) {
	locker, err := pgmigrate.Locker(ctx, db, "store")
	if err != nil {
		return nil, err
	}
	p, err := provider(db, locker)
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "migrate postgres", err)
	}
	var versions []int64
	for _, r := range res {
		versions = append(versions, r.Source.Version)
	}
	return versions, nil
}

// Pool exposes the connection pool to the queue's LISTEN/NOTIFY and locks.
func (d *Driver) Pool() *pgxpool.Pool { return d.pool }

// Write runs fn in one read-committed transaction. Conditional updates
// (WHERE state = from) make concurrent moves of one row safe at that level.
func (d *Driver) Write(ctx context.Context, fn func(store.Queries) error) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return mapErr("begin", err)
	}
	// Release closes a connection left in a transaction or broken.
	defer conn.Release()
	t := &tx{conn: conn}
	if err := fn(queries{q: pgdb.New(t), tx: t}); err != nil {
		t.rollback(ctx)
		return err
	}
	if err := t.commit(ctx); err != nil {
		t.rollback(ctx)
		return mapErr("commit", err)
	}
	return nil
}

// WriteOne runs fn's single statement as its own transaction: sent with
// the transaction's settings and no BEGIN or COMMIT, it commits when
// PostgreSQL reaches the batch's Sync. One round trip instead of two, and
// shared with the statements of the same settings that arrive meanwhile
// (group).
func (d *Driver) WriteOne(ctx context.Context, fn func(store.Queries) error) error {
	t := &tx{single: true, groups: &d.groups, pool: d.pool}
	defer t.release()
	if err := fn(queries{q: pgdb.New(t), tx: t}); err != nil {
		return err
	}
	if len(t.events) > 0 || t.notify {
		return core.E(core.KindInternal, "write", "a one-statement transaction left events or a notification to write apart from it")
	}
	t.readAfterAlone(ctx) // the statement committed with its batch
	return nil
}

// Read returns queries on the pool.
func (d *Driver) Read() store.Queries { return queries{q: pgdb.New(d.pool)} }

// Close closes the pool.
func (d *Driver) Close() error {
	d.pool.Close()
	return nil
}

func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return core.E(core.KindNotFound, op, "not found")
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &core.Error{Kind: core.KindCanceled, Op: op, Err: err}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Code == "23505" {
			return &core.Error{Kind: core.KindConflict, Op: op, Err: err}
		}
		return &core.Error{Kind: core.KindInternal, Op: fmt.Sprintf("postgres %s", op), Err: err}
	}
	// Anything else is the connection: a restart, a network fault, a timeout.
	return &core.Error{Kind: core.KindUnavailable, Op: fmt.Sprintf("postgres %s", op), Err: err}
}
