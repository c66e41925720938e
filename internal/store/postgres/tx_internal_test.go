package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

// TestClaimSettingsStayInTheClaim: a claim's transaction walks the queue
// without sorting and commits without waiting for the disk; the settings
// end with it, on the same pooled connection.
func TestClaimSettingsStayInTheClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, err := Open(ctx, storetest.PostgresURL(t)+"&pool_max_conns=1", true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	show := func(q store.Queries) (sort, sync string) {
		t.Helper()
		x := q.(queries)
		if err := x.tx.QueryRow(ctx, "SELECT current_setting('enable_sort'), current_setting('synchronous_commit')").Scan(&sort, &sync); err != nil {
			t.Fatal(err)
		}
		return sort, sync
	}
	var sort0, sync0 string
	err = d.Write(ctx, func(q store.Queries) error {
		sort0, sync0 = show(q)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Write(ctx, func(q store.Queries) error {
		_, err := q.ClaimAttempt(ctx, store.ClaimRow{Labels: []string{""}, RunnerID: "r", LeaseToken: "t", Now: time.UnixMilli(1), ExpiresAt: time.UnixMilli(2)})
		if core.KindOf(err) != core.KindNotFound {
			t.Fatalf("claim of an empty queue: %v", err)
		}
		if sort, sync := show(q); sort != "off" || sync != "off" {
			t.Fatalf("in the claim: enable_sort %s, synchronous_commit %s; want off, off", sort, sync)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Write(ctx, func(q store.Queries) error {
		if sort, sync := show(q); sort != sort0 || sync != sync0 {
			t.Fatalf("after the claim: enable_sort %s, synchronous_commit %s; want %s, %s as before", sort, sync, sort0, sync0)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
