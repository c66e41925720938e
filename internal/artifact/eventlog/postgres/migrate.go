package postgres

import "context"

// Migrate applies the pending migrations of the artifact store's tables at
// url and returns the versions it applied, in order (none when the
// database is up to date). Open migrates too; Migrate is for operators who
// upgrade the schema before they start the servers.
func Migrate(ctx context.Context, url string) ([]int64, error) { return migrate(ctx, url) }
