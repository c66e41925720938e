package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/eventlog/eventlogtest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog/postgres"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	eventlogtest.RunCheckpoints(t, func(t *testing.T, now func() time.Time, cfg eventlog.CheckpointConfig) eventlogtest.CheckpointHarness {
		url := storetest.PostgresURL(t)
		open := func(t *testing.T) *postgres.Driver {
			drv, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			return drv
		}
		drv := open(t)
		s := eventlog.New(drv, eventlog.WithClock(now), eventlog.WithCheckpoints(cfg))
		t.Cleanup(func() { s.Close() })
		return eventlogtest.CheckpointHarness{
			Store: s,
			Exec:  drv.Exec,
			AllowTamper: func(ctx context.Context) error {
				for _, table := range []string{"store_events", "store_head", "store_checkpoints"} {
					if err := drv.Exec(ctx, "ALTER TABLE "+table+" DISABLE TRIGGER USER"); err != nil {
						return err
					}
				}
				return nil
			},
			Reopen: func(t *testing.T, cfg eventlog.CheckpointConfig) *eventlog.Store {
				s := eventlog.New(open(t), eventlog.WithClock(now), eventlog.WithCheckpoints(cfg))
				t.Cleanup(func() { s.Close() })
				return s
			},
		}
	})
}

// TestTruncateOfTheLogRefused connects as the store does, with the same
// URL and so the same database user (the owner of the tables), and tries
// to empty the log's tables with TRUNCATE, which fires no row trigger.
func TestTruncateOfTheLogRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.PostgresURL(t)
	drv, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	s := eventlog.New(drv)
	t.Cleanup(func() { s.Close() })
	d, err := digest.FromBytes(digest.SHA256, []byte("kept"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddBlob(ctx, "alice", d, 4); err != nil {
		t.Fatal(err)
	}
	before, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	var user, owner string
	if err := conn.QueryRow(ctx, "SELECT current_user, tableowner FROM pg_tables WHERE tablename = 'store_events' AND schemaname = current_schema()").Scan(&user, &owner); err != nil {
		t.Fatal(err)
	}
	if user != owner {
		t.Fatalf("connected as %s, but the store's tables belong to %s: not the user the store uses", user, owner)
	}
	for _, q := range []string{
		"TRUNCATE store_events",
		"TRUNCATE TABLE store_head",
		"TRUNCATE store_checkpoints",
		"TRUNCATE store_events, blobs, manifests, manifest_blobs, refs CASCADE",
		"TRUNCATE ONLY store_events RESTART IDENTITY",
	} {
		_, err := conn.Exec(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "append-only event log: TRUNCATE refused") {
			t.Errorf("%s as %s: %v, want refused", q, user, err)
		}
	}
	after, err := s.VerifyWith(ctx, eventlog.VerifyOptions{ExpectHead: &before})
	if err != nil || after != before {
		t.Errorf("after the refused truncations: head %v, %v; want %v", after, err, before)
	}
}
