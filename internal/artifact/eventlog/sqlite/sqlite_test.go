package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/eventlog/eventlogtest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog/sqlite"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	eventlogtest.Run(t, func(t *testing.T, now func() time.Time) eventlogtest.Harness {
		drv, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		s := eventlog.New(drv, eventlog.WithClock(now))
		t.Cleanup(func() { s.Close() })
		return eventlogtest.Harness{
			Store: s,
			Exec:  drv.Exec,
			AllowTamper: func(ctx context.Context) error {
				if err := drv.Exec(ctx, "DROP TRIGGER store_events_no_update"); err != nil {
					return err
				}
				return drv.Exec(ctx, "DROP TRIGGER store_events_no_delete")
			},
		}
	})
}
