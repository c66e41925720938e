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

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	eventlogtest.RunCheckpoints(t, func(t *testing.T, now func() time.Time, cfg eventlog.CheckpointConfig) eventlogtest.CheckpointHarness {
		path := filepath.Join(t.TempDir(), "meta.db")
		open := func(t *testing.T) *sqlite.Driver {
			drv, err := sqlite.Open(context.Background(), path)
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
				for _, trigger := range []string{"store_events_no_update", "store_events_no_delete", "store_head_no_delete",
					"store_checkpoints_no_update", "store_checkpoints_no_delete"} {
					if err := drv.Exec(ctx, "DROP TRIGGER IF EXISTS "+trigger); err != nil {
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
