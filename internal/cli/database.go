package cli

import (
	"context"
	"strings"

	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/postgres"
	"github.com/deltaci/deltaci/internal/store/sqlite"
)

// isPostgres reports whether a --database value names a PostgreSQL server.
func isPostgres(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// openStore opens the store named by --database: a postgres:// URL or an
// SQLite file path. With migrate set, pending migrations are applied first.
func openStore(ctx context.Context, database string, migrate bool) (*store.Store, error) {
	if isPostgres(database) {
		drv, err := postgres.Open(ctx, database, migrate)
		if err != nil {
			return nil, err
		}
		return store.New(drv), nil
	}
	drv, err := sqlite.Open(ctx, strings.TrimPrefix(database, "sqlite://"), migrate)
	if err != nil {
		return nil, err
	}
	return store.New(drv), nil
}

// migrate applies pending migrations and returns the versions applied.
func migrate(ctx context.Context, database string) ([]int64, error) {
	if isPostgres(database) {
		return postgres.Migrate(ctx, database)
	}
	return sqlite.MigrateFile(ctx, strings.TrimPrefix(database, "sqlite://"))
}
