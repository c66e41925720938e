package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/deltaci/deltaci/internal/core"
)

// QueueChannel is the NOTIFY channel a queued attempt is announced on.
const QueueChannel = "deltaci_queue"

// Listen calls wake for every notification on QueueChannel until ctx ends.
// It holds one connection of the pool; when the connection breaks (a
// database restart) it reconnects with backoff and calls wake once, since
// notifications sent meanwhile are lost.
func (d *Driver) Listen(ctx context.Context, wake func()) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := d.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		_ = err // the caller's 1 s re-check covers the gap
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		wake()
	}
}

func (d *Driver) listenOnce(ctx context.Context, wake func()) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+QueueChannel); err != nil {
		return err
	}
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			// A connection left mid-wait is not reusable.
			_ = conn.Conn().Close(context.Background())
			return err
		}
		wake()
	}
}

// Ready reports whether the database answers and has every migration.
func (d *Driver) Ready(ctx context.Context) error {
	db := stdlib.OpenDBFromPool(d.pool)
	defer db.Close()
	p, err := provider(db)
	if err != nil {
		return err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return core.Wrap(core.KindUnavailable, "postgres ready", err)
	}
	if pending {
		return core.E(core.KindUnavailable, "postgres ready", "migrations are pending: run deltaci migrate")
	}
	return nil
}
