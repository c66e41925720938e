package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/eventlog/eventlogtest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog/postgres"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	eventlogtest.Run(t, func(t *testing.T, now func() time.Time) eventlogtest.Harness {
		drv, err := postgres.Open(context.Background(), storetest.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		s := eventlog.New(drv, eventlog.WithClock(now))
		t.Cleanup(func() { s.Close() })
		return eventlogtest.Harness{
			Store: s,
			Exec:  drv.Exec,
			AllowTamper: func(ctx context.Context) error {
				return drv.Exec(ctx, "ALTER TABLE store_events DISABLE TRIGGER store_events_no_change")
			},
		}
	})
}
