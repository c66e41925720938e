package orchestrator

import (
	"context"
	"time"
)

// DefaultReapInterval is how often a server looks for expired leases.
const DefaultReapInterval = 2 * time.Second

// Leader tells whether this process may run a leader-only loop. On
// PostgreSQL it is an advisory lock (store/postgres.Leader); a single
// process (SQLite) is always the leader.
type Leader interface {
	IsLeader(ctx context.Context) (bool, error)
}

// AlwaysLeader is the Leader of a process that runs alone.
type AlwaysLeader struct{}

// IsLeader implements Leader.
func (AlwaysLeader) IsLeader(context.Context) (bool, error) { return true, nil }
