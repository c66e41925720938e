package sqlite

import (
	"context"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/sqlite/sqlitedb"
)

func (x queries) SeeRunner(ctx context.Context, id string, at time.Time) (bool, error) {
	n, err := x.q.SeeRunner(ctx, sqlitedb.SeeRunnerParams{ID: id, LastSeenAt: store.Millis(at)})
	return n == 1, mapErr("see runner", err)
}

func (x queries) ListHeldAttempts(ctx context.Context, limit int) ([]store.HeldAttempt, error) {
	rows, err := x.q.ListHeldAttempts(ctx, int64(limit))
	if err != nil {
		return nil, mapErr("list held attempts", err)
	}
	out := make([]store.HeldAttempt, 0, len(rows))
	for _, r := range rows {
		out = append(out, store.HeldAttempt{
			ID: r.ID, RunID: r.RunID, RunnerID: r.RunnerID, Job: r.Job,
			State: core.AttemptState(r.State), LeasedAt: at(r.LeasedAt), LeaseExpiresAt: at(r.LeaseExpiresAt),
		})
	}
	return out, nil
}
