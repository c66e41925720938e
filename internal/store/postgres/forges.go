package postgres

import (
	"context"
	"time"

	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/postgres/pgdb"
)

func deliveryFromRow(r pgdb.HookDelivery) store.Delivery {
	return store.Delivery{
		ID: r.ID, Project: r.Project, Forge: r.Forge, Delivery: r.Delivery, Event: r.Event, State: r.State,
		RunID: r.RunID, Message: r.Message, Tries: int(r.Tries), NextAt: store.FromMillis(r.NextAt), Claim: r.Claim,
		LeaseUntil: store.FromMillis(r.LeaseUntil), ReceivedAt: store.FromMillis(r.ReceivedAt), DoneAt: store.FromMillis(r.DoneAt),
	}
}

func statusFromRow(r pgdb.StatusOutbox) store.StatusRow {
	return store.StatusRow{
		RunID: r.RunID, JobID: r.JobID, Version: r.Version, Posted: r.Posted, PostedState: r.PostedState,
		ChangedAt: store.FromMillis(r.ChangedAt), Tries: int(r.Tries), NextAt: store.FromMillis(r.NextAt),
		Claim: r.Claim, LeaseUntil: store.FromMillis(r.LeaseUntil), LastError: r.LastError,
	}
}

func (x queries) InsertDelivery(ctx context.Context, d store.Delivery) (bool, error) {
	n, err := x.q.InsertDelivery(ctx, pgdb.InsertDeliveryParams{
		ID: d.ID, Project: d.Project, Forge: d.Forge, Delivery: d.Delivery, Event: d.Event, ReceivedAt: store.Millis(d.ReceivedAt),
	})
	return n == 1, mapErr("insert delivery", err)
}

func (x queries) ClaimDelivery(ctx context.Context, now, leaseUntil time.Time, claim string) (store.Delivery, error) {
	r, err := x.q.ClaimDelivery(ctx, pgdb.ClaimDeliveryParams{Now: store.Millis(now), LeaseUntil: store.Millis(leaseUntil), Claim: claim})
	if err != nil {
		return store.Delivery{}, mapErr("claim delivery", err)
	}
	return deliveryFromRow(r), nil
}

func (x queries) FinishDelivery(ctx context.Context, d store.Delivery) (bool, error) {
	n, err := x.q.FinishDelivery(ctx, pgdb.FinishDeliveryParams{
		ID: d.ID, State: d.State, RunID: d.RunID, Message: d.Message, DoneAt: store.Millis(d.DoneAt), Claim: d.Claim,
	})
	return n == 1, mapErr("finish delivery", err)
}

func (x queries) RenewDelivery(ctx context.Context, d store.Delivery) (bool, error) {
	n, err := x.q.RenewDelivery(ctx, pgdb.RenewDeliveryParams{ID: d.ID, Claim: d.Claim, LeaseUntil: store.Millis(d.LeaseUntil)})
	return n == 1, mapErr("renew delivery", err)
}

func (x queries) RetryDelivery(ctx context.Context, d store.Delivery) (bool, error) {
	n, err := x.q.RetryDelivery(ctx, pgdb.RetryDeliveryParams{
		ID: d.ID, NextAt: store.Millis(d.NextAt), Message: d.Message, Claim: d.Claim,
	})
	return n == 1, mapErr("retry delivery", err)
}

func (x queries) ListDeliveries(ctx context.Context, project string, limit int) ([]store.Delivery, error) {
	rows, err := x.q.ListDeliveries(ctx, pgdb.ListDeliveriesParams{Project: project, Lim: int32(limit)})
	if err != nil {
		return nil, mapErr("list deliveries", err)
	}
	out := make([]store.Delivery, len(rows))
	for i, r := range rows {
		out[i] = deliveryFromRow(r)
	}
	return out, nil
}

func (x queries) CountPendingDeliveries(ctx context.Context) (int, error) {
	n, err := x.q.CountPendingDeliveries(ctx)
	return int(n), mapErr("count deliveries", err)
}

func (x queries) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	n, err := x.q.PruneDeliveries(ctx, store.Millis(before))
	return n, mapErr("prune deliveries", err)
}

func (x queries) InsertRunForge(ctx context.Context, runID string, f store.RunForge) error {
	return mapErr("insert run forge", x.q.InsertRunForge(ctx, pgdb.InsertRunForgeParams{
		RunID: runID, Forge: f.Kind, ApiUrl: f.APIURL, Repo: f.Repo, CommitID: f.Commit, TokenSecret: f.TokenSecret,
	}))
}

func (x queries) GetRunForge(ctx context.Context, runID string) (store.RunForge, error) {
	r, err := x.q.GetRunForge(ctx, runID)
	if err != nil {
		return store.RunForge{}, mapErr("forge of run "+runID, err)
	}
	return store.RunForge{Kind: r.Forge, APIURL: r.ApiUrl, Repo: r.Repo, Commit: r.CommitID, TokenSecret: r.TokenSecret}, nil
}

func (x queries) ClaimStatuses(ctx context.Context, now, leaseUntil time.Time, claim string, limit int) ([]store.StatusRow, error) {
	rows, err := x.q.ClaimStatuses(ctx, pgdb.ClaimStatusesParams{Now: store.Millis(now), LeaseUntil: store.Millis(leaseUntil), Claim: claim, Lim: int32(limit)})
	return statusRows(rows, err, "claim statuses")
}

func (x queries) FinishStatus(ctx context.Context, r store.StatusRow) (bool, error) {
	n, err := x.q.FinishStatus(ctx, pgdb.FinishStatusParams{
		RunID: r.RunID, JobID: r.JobID, Version: r.Version, PostedState: r.PostedState, LastError: r.LastError, Claim: r.Claim,
	})
	return n == 1, mapErr("finish status", err)
}

func (x queries) RetryStatus(ctx context.Context, r store.StatusRow) (bool, error) {
	n, err := x.q.RetryStatus(ctx, pgdb.RetryStatusParams{
		RunID: r.RunID, JobID: r.JobID, NextAt: store.Millis(r.NextAt), LastError: r.LastError, Claim: r.Claim,
	})
	return n == 1, mapErr("retry status", err)
}

func (x queries) ListRunStatuses(ctx context.Context, runID string) ([]store.StatusRow, error) {
	rows, err := x.q.ListRunStatuses(ctx, runID)
	return statusRows(rows, err, "list statuses")
}

func statusRows(rows []pgdb.StatusOutbox, err error, op string) ([]store.StatusRow, error) {
	if err != nil {
		return nil, mapErr(op, err)
	}
	out := make([]store.StatusRow, len(rows))
	for i, r := range rows {
		out[i] = statusFromRow(r)
	}
	return out, nil
}

func (x queries) StatusBacklog(ctx context.Context) (int, time.Time, error) {
	r, err := x.q.StatusBacklog(ctx)
	if err != nil {
		return 0, time.Time{}, mapErr("status backlog", err)
	}
	return int(r.N), store.FromMillis(r.Oldest), nil
}

func (x queries) PruneStatuses(ctx context.Context, before time.Time) (int64, error) {
	n, err := x.q.PruneStatuses(ctx, store.Millis(before))
	return n, mapErr("prune statuses", err)
}
