package postgres

import (
	"context"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/eventlog/postgres/pgdb"
)

var _ eventlog.Queries = queries{}

// InsertLease writes every digest's row in one statement.
func (x queries) InsertLease(ctx context.Context, id string, digests []string, expiresAt int64) error {
	if len(digests) == 0 {
		return nil
	}
	return mapErr("insert lease", x.q.InsertLease(ctx, pgdb.InsertLeaseParams{ID: id, ExpiresAt: expiresAt, Digests: digests}))
}

func (x queries) RenewLease(ctx context.Context, id string, now, expiresAt int64) (int64, error) {
	n, err := x.q.RenewLease(ctx, pgdb.RenewLeaseParams{ExpiresAt: expiresAt, ID: id, Now: now})
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
	n, err := x.q.CountActiveLeasesFor(ctx, pgdb.CountActiveLeasesForParams{Digest: digest, Now: now})
	return n, mapErr("count leases", err)
}
