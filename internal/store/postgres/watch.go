package postgres

import (
	"context"
	"time"

	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/postgres/pgdb"
)

// RunChannel is the NOTIFY channel on which every committed event and log
// append of a watched run names its run (migration 00010, WatchRuns).
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

var _ store.WatchRegistry = (*Driver)(nil)

// WatchRuns marks runs as streamed by replica until the given time: only
// the changes of watched runs are announced, since every commit that sends
// NOTIFY takes a cluster-wide lock (migration 00010).
func (d *Driver) WatchRuns(ctx context.Context, replica string, runIDs []string, until time.Time) error {
	err := pgdb.New(d.pool).WatchRuns(ctx, pgdb.WatchRunsParams{RunIds: runIDs, Replica: replica, Until: until.UnixMilli()})
	return mapErr("watch runs", err)
}

// UnwatchRun says replica streams the run no more.
func (d *Driver) UnwatchRun(ctx context.Context, replica, runID string) error {
	return mapErr("unwatch run", pgdb.New(d.pool).UnwatchRun(ctx, pgdb.UnwatchRunParams{RunID: runID, Replica: replica}))
}

// ExpireRunWatches forgets the watches that were not renewed by now (their
// replica stopped or lost the database).
func (d *Driver) ExpireRunWatches(ctx context.Context, now time.Time) error {
	return mapErr("expire run watches", pgdb.New(d.pool).ExpireRunWatchers(ctx, now.UnixMilli()))
}
