package postgres

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

// TestLabelsMigrateToTheAttempt: an attempt queued before migration 6
// keeps its labels (then rows of attempt_labels) in its label_set, so a
// runner without them still cannot lease it, and one with them can.
func TestLabelsMigrateToTheAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.PostgresURL(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	defer db.Close()
	p, err := provider(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO runs (id, repo, event, state, created_at) VALUES ('r', '/r', 'manual', 'running', 1)`,
		`INSERT INTO jobs (id, run_id, name, position, spec, state, created_at) VALUES ('j', 'r', 'a', 0, '{}', 'queued', 1)`,
		`INSERT INTO attempts (id, job_id, run_id, number, state, labels, queued_at) VALUES ('a', 'j', 'r', 1, 'queued', '["gpu","linux"]', 1)`,
		`INSERT INTO attempt_labels (attempt_id, label) VALUES ('a', 'linux'), ('a', 'gpu')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	rows, err := db.QueryContext(ctx, `SELECT unnest(label_set) FROM attempts WHERE id = 'a'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	rows.Close()
	if !slices.Equal(got, []string{"gpu", "linux"}) {
		t.Fatalf("label_set = %v, want [gpu linux]", got)
	}
	// The migrated attempt is claimed only by a runner with both labels.
	d, err := Open(ctx, url, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	claim := func(labels ...string) error {
		_, err := d.Read().ClaimAttempt(ctx, store.ClaimRow{Labels: append([]string{""}, labels...), RunnerID: "x",
			LeaseToken: "t", Now: time.UnixMilli(2), ExpiresAt: time.UnixMilli(20_002)})
		return err
	}
	if err := claim("linux"); core.KindOf(err) != core.KindNotFound {
		t.Fatalf("a runner without gpu: %v, want nothing to lease", err)
	}
	if err := claim("linux", "gpu", "x"); err != nil {
		t.Fatalf("a runner with both labels: %v", err)
	}
}
