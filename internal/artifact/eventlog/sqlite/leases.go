package sqlite

import (
	"context"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/eventlog/sqlite/sqlitedb"
)

var _ eventlog.Queries = queries{}

// InsertLease writes one row per digest; it runs inside the caller's write
// transaction, so the rows appear together.
func (x queries) InsertLease(ctx context.Context, id string, digests []string, expiresAt int64) error {
	for _, d := range digests {
		if err := x.q.InsertLeaseDigest(ctx, sqlitedb.InsertLeaseDigestParams{ID: id, Digest: d, ExpiresAt: expiresAt}); err != nil {
			return mapErr("insert lease", err)
		}
	}
	return nil
}

func (x queries) RenewLease(ctx context.Context, id string, now, expiresAt int64) (int64, error) {
	n, err := x.q.RenewLease(ctx, sqlitedb.RenewLeaseParams{ExpiresAt: expiresAt, ID: id, Now: now})
	return n, mapErr("renew lease", err)
}

func (x queries) DeleteLease(ctx context.Context, id string) error {
	return mapErr("delete lease", x.q.DeleteLease(ctx, id))
}

func (x queries) DeleteExpiredLeases(ctx context.Context, now int64) (int64, error) {
	n, err := x.q.DeleteExpiredLeases(ctx, now)
	return n, mapErr("delete expired leases", err)
}

func (x queries) CountActiveLeasesFor(ctx context.Context, digest string, now int64) (int64, error) {
	n, err := x.q.CountActiveLeasesFor(ctx, sqlitedb.CountActiveLeasesForParams{Digest: digest, Now: now})
	return n, mapErr("count leases", err)
}
