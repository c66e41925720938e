package postgres

import (
	"context"

	"github.com/deltaci/deltaci/internal/store/postgres/pgdb"
)

func (x queries) SetRunMessage(ctx context.Context, id, message string) error {
	return mapErr("set run message "+id, x.q.SetRunMessage(ctx, pgdb.SetRunMessageParams{ID: id, Message: message}))
}

func (x queries) GetRunMessage(ctx context.Context, id string) (string, error) {
	m, err := x.q.GetRunMessage(ctx, id)
	return m, mapErr("get run message "+id, err)
}
