package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/store/storetest"
)

func TestLeaderIsExclusive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.PostgresURL(t)
	a, err := Open(ctx, url, true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, url, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A role of its own: parallel tests share the server's lock space.
	role := "reaper " + url
	la, lb := a.NewLeader(role), b.NewLeader(role)
	defer la.Resign(ctx)
	defer lb.Resign(ctx)
	if ok, err := la.IsLeader(ctx); err != nil || !ok {
		t.Fatalf("first replica: %v %v", ok, err)
	}
	if ok, err := lb.IsLeader(ctx); err != nil || ok {
		t.Fatalf("second replica became leader too: %v %v", ok, err)
	}
	if ok, _ := la.IsLeader(ctx); !ok {
		t.Fatal("leader lost the role without giving it up")
	}
	if err := la.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := lb.IsLeader(ctx); err != nil || !ok {
		t.Fatalf("second replica after the first resigned: %v %v", ok, err)
	}
	// The leader's session dies (a crash, a network cut): it loses the
	// role, and another replica takes it on its next try.
	pid := lb.conn.Conn().PgConn().PID()
	if _, err := a.pool.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	// The backend exits a moment after the signal; replicas retry on their
	// next tick, as the reaper does.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := la.IsLeader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no replica took the role after the leader's session died")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, _ := lb.IsLeader(ctx); ok {
		t.Error("the replica whose session died still claims the role")
	}
}

// Two deployments in two schemas of one database are independent: each
// elects its own leader for the same role.
func TestLeaderIsPerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, err := Open(ctx, storetest.PostgresURL(t), true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, storetest.PostgresURL(t), true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	la, lb := a.NewLeader("reaper"), b.NewLeader("reaper")
	defer la.Resign(ctx)
	defer lb.Resign(ctx)
	if ok, err := la.IsLeader(ctx); err != nil || !ok {
		t.Fatalf("first deployment: %v %v", ok, err)
	}
	if ok, err := lb.IsLeader(ctx); err != nil || !ok {
		t.Fatalf("second deployment, in another schema, is not its own leader: %v %v", ok, err)
	}
}
