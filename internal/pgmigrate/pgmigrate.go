// Package pgmigrate serializes PostgreSQL migrations between processes:
// server replicas that start together must not apply one migration twice.
package pgmigrate

import (
	"context"
	"database/sql"
	"hash/fnv"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/deltaci/deltaci/internal/core"
)

// Locker returns the goose option that holds a session advisory lock while
// migrations run. The lock is per schema and per migration set (name), so
// databases shared by several schemas (the tests) do not wait on each other.
func Locker(ctx context.Context, db *sql.DB, name string) (goose.ProviderOption, error) {
	var schema string
	if err := db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, core.Wrap(core.KindUnavailable, "migration lock", err)
	}
	h := fnv.New64a()
	h.Write([]byte("deltaci/" + name + "/" + schema))
	l, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64())), lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "migration lock", err)
	}
	return goose.WithSessionLocker(l), nil
}
