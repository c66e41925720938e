package postgres

import (
	"context"
	"time"

	"github.com/deltaci/deltaci/internal/store"
)

// RunChannel is the NOTIFY channel on which every committed event and log
// append names its run (migration 00010).
const RunChannel = "deltaci_run"

var _ store.Watcher = (*Driver)(nil)

// Watch calls fn with the run id of each notification on RunChannel until
// ctx ends, whichever replica committed the change. It holds one pooled
// connection; when that breaks it reconnects with backoff and calls fn("")
// once, since notifications sent meanwhile are lost.
func (d *Driver) Watch(ctx context.Context, fn func(id string)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		_ = d.watchOnce(ctx, fn) // fn("") below covers what it missed
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		fn("")
	}
}

func (d *Driver) watchOnce(ctx context.Context, fn func(id string)) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+RunChannel); err != nil {
		return err
	}
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			// A connection left mid-wait is not reusable.
			_ = conn.Conn().Close(context.Background())
			return err
		}
		fn(n.Payload)
	}
}
