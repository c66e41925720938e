package postgres

import (
	"context"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/eventlog/postgres/pgdb"
)

func (x queries) InsertCheckpoint(ctx context.Context, c eventlog.CheckpointRow) error {
	return mapErr("insert checkpoint", x.q.InsertCheckpoint(ctx, pgdb.InsertCheckpointParams(c)))
}

func (x queries) LatestCheckpoint(ctx context.Context) (eventlog.CheckpointRow, error) {
	c, err := x.q.LatestCheckpoint(ctx)
	return eventlog.CheckpointRow(c), mapErr("latest checkpoint", err)
}

func (x queries) ListCheckpoints(ctx context.Context, after, limit int64) ([]eventlog.CheckpointRow, error) {
	rows, err := x.q.ListCheckpoints(ctx, pgdb.ListCheckpointsParams{After: after, Lim: limit})
	return conv(rows, func(r pgdb.StoreCheckpoint) eventlog.CheckpointRow { return eventlog.CheckpointRow(r) }), mapErr("list checkpoints", err)
}
