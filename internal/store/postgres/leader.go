package postgres

import (
	"context"
	"hash/fnv"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deltaci/deltaci/internal/core"
)

// Leader elects one server replica for a named role (the reaper, retention)
// with a session-level advisory lock held on a dedicated connection: the
// holder keeps it until it stops or its connection dies, and then another
// replica's next try takes it.
type Leader struct {
	pool *pgxpool.Pool
	key  int64

	mu   sync.Mutex
	conn *pgxpool.Conn
}

// NewLeader returns an elector for role over the driver's pool. Advisory
// locks are per database, so the key names the schema too: deployments in
// two schemas of one database each elect their own leader.
func (d *Driver) NewLeader(role string) *Leader {
	h := fnv.New64a()
	h.Write([]byte("deltaci:" + d.pool.Config().ConnConfig.RuntimeParams["search_path"] + ":" + role))
	return &Leader{pool: d.pool, key: int64(h.Sum64())}
}

// IsLeader reports whether this replica holds the role, trying to take it
// when it does not. A lost connection loses the role.
func (l *Leader) IsLeader(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		// Still ours while the session that took the lock is alive.
		if err := l.conn.Ping(ctx); err == nil {
			return true, nil
		}
		l.conn.Release()
		l.conn = nil
	}
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return false, mapErr("acquire leader connection", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", l.key).Scan(&got); err != nil {
		conn.Release()
		return false, mapErr("try advisory lock", err)
	}
	if !got {
		conn.Release()
		return false, nil
	}
	l.conn = conn
	return true, nil
}

// Resign gives the role up, for a clean shutdown.
func (l *Leader) Resign(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	_, err := l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", l.key)
	l.conn.Release()
	l.conn = nil
	if err != nil {
		return core.Wrap(core.KindUnavailable, "resign leader", err)
	}
	return nil
}
