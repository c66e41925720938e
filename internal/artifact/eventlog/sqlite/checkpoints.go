package sqlite

import (
	"context"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/eventlog/sqlite/sqlitedb"
)

func (x queries) InsertCheckpoint(ctx context.Context, c eventlog.CheckpointRow) error {
	return mapErr("insert checkpoint", x.q.InsertCheckpoint(ctx, sqlitedb.InsertCheckpointParams(c)))
}

func (x queries) LatestCheckpoint(ctx context.Context) (eventlog.CheckpointRow, error) {
	c, err := x.q.LatestCheckpoint(ctx)
	return eventlog.CheckpointRow(c), mapErr("latest checkpoint", err)
}

func (x queries) ListCheckpoints(ctx context.Context, after, limit int64) ([]eventlog.CheckpointRow, error) {
	rows, err := x.q.ListCheckpoints(ctx, sqlitedb.ListCheckpointsParams{After: after, Lim: limit})
	return conv(rows, func(r sqlitedb.StoreCheckpoint) eventlog.CheckpointRow { return eventlog.CheckpointRow(r) }), mapErr("list checkpoints", err)
}
