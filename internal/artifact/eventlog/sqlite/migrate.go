package sqlite

import (
	"context"

	"github.com/deltaci/deltaci/internal/sqlitepool"
)

// Migrate applies the pending migrations of the artifact store's tables in
// the database file at path (created when missing) and returns the
// versions it applied, in order (none when it is up to date). Open
// migrates too; Migrate is for operators who upgrade the schema first.
func Migrate(ctx context.Context, path string) ([]int64, error) {
	db, err := sqlitepool.OpenWriter(ctx, path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return migrate(ctx, db)
}
