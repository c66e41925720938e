package api_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
)

// TestNoDoubleLease queues thousands of attempts and lets many runners,
// each with its own client and session, lease, start and complete them over
// HTTP at once until every run has ended. Then the events table must show
// that each attempt was leased once, to the runner that started and
// completed it, and ended once.
func TestNoDoubleLease(t *testing.T) {
	t.Parallel()
	for _, engine := range storeEngines {
		t.Run(engine, func(t *testing.T) {
			runs, jobs, runners := 20, 100, 32
			switch {
			case testing.Short():
				runs, runners = 2, 8
			case engine == "SQLite" && raceEnabled():
				// SQLite is C translated to Go, which the race build also
				// checks pointer by pointer: on two cores it completes about
				// 22 attempts/s under -race against 390/s without, so 2,000
				// would take 90 s. 400 take about 20 s.
				runs = 4
			}
			testNoDoubleLease(t, engine, runs, jobs, runners)
		})
	}
}

func testNoDoubleLease(t *testing.T, engine string, runs, jobs, runners int) {
	// These runners never heartbeat, and on a busy machine an attempt can
	// take longer than the default TTL from its lease to its completion:
	// expiring leases are not what this test is about.
	ls := startLiveServer(t, engine, func(c *api.Config) { c.TTL = time.Hour })
	ctx := t.Context()
	repo := ls.repo(t, map[string]string{".deltaci.yml": independentJobs(jobs, "true")})
	// Everything is queued before any runner asks, so that every claim
	// competes with the others over a full queue.
	for i := 0; i < runs; i++ {
		run, err := ls.User.CreateRun(ctx, protocol.CreateRunRequest{Repo: repo, Ref: "main", Event: core.EventManual})
		if err != nil {
			t.Fatal(err)
		}
		if len(run.Jobs) != jobs {
			t.Fatalf("run %s has %d jobs, want %d", run.ID, len(run.Jobs), jobs)
		}
	}
	total := runs * jobs

	clients := make([]*protocol.Client, runners)
	ids := make([]string, runners)
	for i := range clients {
		clients[i], ids[i] = ls.registeredRunner(t, fmt.Sprint("load-", i), api.ExecutorLabel("shell"))
	}
	// leasedTo is what the runners were told: attempt id → runner id.
	var leasedTo sync.Map
	var completed atomic.Int64
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	begin := time.Now()
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loadRunner(stop, c, ids[i], &leasedTo, &completed); err != nil {
				t.Errorf("runner %d: %v", i, err)
				cancel()
			}
		}()
	}
	// The runners stop when every run has ended, as the server sees it.
	deadline := time.Now().Add(3 * time.Minute)
	var idle time.Time
	for stop.Err() == nil {
		active, err := ls.Store.ActiveRuns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(active) == 0 {
			break
		}
		if completed.Load() >= int64(total) {
			// Every job has ended: a run not ended soon after never will.
			if idle.IsZero() {
				idle = time.Now()
			} else if time.Since(idle) > 5*time.Second {
				reportStuck(t, ls, active)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("%d runs still active after 3 minutes, %d of %d attempts completed", len(active), completed.Load(), total)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(begin)
	cancel()
	wg.Wait()
	t.Logf("%s: %d attempts through %d runners in %s (%.0f/s)", engine, total, runners,
		elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds())
	if n := completed.Load(); n != int64(total) {
		t.Errorf("runners completed %d attempts, want %d", n, total)
	}
	checkLeasedOnce(t, ls, total, &leasedTo)
}

// loadRunner leases, starts and completes attempts (failed with exit code
// 1, which needs no outputs and is not retried) until stop ends. An
// attempt leased twice, as the runners see it, is an error.
func loadRunner(stop context.Context, c *protocol.Client, runnerID string, leasedTo *sync.Map, completed *atomic.Int64) error {
	// Writes on a held lease finish even as the test stops.
	ctx := context.WithoutCancel(stop)
	for {
		l, err := c.Lease(stop, time.Second)
		if stop.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("lease: %w", err)
		}
		if l == nil {
			continue
		}
		if prev, dup := leasedTo.LoadOrStore(l.AttemptID, runnerID); dup {
			return fmt.Errorf("attempt %s leased to %s and again to %s", l.AttemptID, prev, runnerID)
		}
		if err := c.Start(ctx, l.AttemptID, l.LeaseToken); err != nil {
			return fmt.Errorf("start %s: %w", l.AttemptID, err)
		}
		code := 1
		out, err := c.Complete(ctx, l.AttemptID, protocol.CompleteRequest{LeaseToken: l.LeaseToken, State: core.AttemptFailed, ExitCode: &code})
		if err != nil {
			return fmt.Errorf("complete %s: %w", l.AttemptID, err)
		}
		if out.State != core.AttemptFailed {
			return fmt.Errorf("complete %s: recorded %s, want failed", l.AttemptID, out.State)
		}
		completed.Add(1)
	}
}

// checkLeasedOnce reads the attempts and events tables directly: there are
// total attempts, each the first of its job, and each one's events are
// exactly created → queued → leased → running → failed, the last three
// written by the runner the lease went to.
func checkLeasedOnce(t *testing.T, ls *liveServer, total int, leasedTo *sync.Map) {
	t.Helper()
	ctx := t.Context()
	var attempts, notFirst, notFailed int
	if err := ls.DB.QueryRowContext(ctx, `SELECT count(*),
		coalesce(sum(CASE WHEN number <> 1 THEN 1 ELSE 0 END), 0),
		coalesce(sum(CASE WHEN state <> 'failed' OR exit_code IS NULL OR exit_code <> 1 THEN 1 ELSE 0 END), 0)
		FROM attempts`).Scan(&attempts, &notFirst, &notFailed); err != nil {
		t.Fatal(err)
	}
	if attempts != total || notFirst != 0 || notFailed != 0 {
		t.Errorf("%d attempts (want %d), %d not the first of their job, %d not failed with exit code 1", attempts, total, notFirst, notFailed)
	}

	type move struct{ from, to, actor string }
	rows, err := ls.DB.QueryContext(ctx, `SELECT entity_id, from_state, to_state, actor FROM events WHERE entity = 'attempt' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	moves := map[string][]move{}
	for rows.Next() {
		var id string
		var m move
		if err := rows.Scan(&id, &m.from, &m.to, &m.actor); err != nil {
			t.Fatal(err)
		}
		moves[id] = append(moves[id], m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(moves) != total {
		t.Errorf("events name %d attempts, want %d", len(moves), total)
	}
	bad := 0
	for id, ms := range moves {
		leases, ends := 0, 0
		for _, m := range ms {
			if m.from == string(core.AttemptQueued) && m.to == string(core.AttemptLeased) {
				leases++
			}
			if core.AttemptState(m.to).Terminal() {
				ends++
			}
		}
		v, _ := leasedTo.Load(id)
		runner, _ := v.(string)
		want := []move{{"", "queued", ms[0].actor}, {"queued", "leased", runner}, {"leased", "running", runner}, {"running", "failed", runner}}
		ok := leases == 1 && ends == 1 && len(ms) == len(want)
		for i := 0; ok && i < len(ms); i++ {
			ok = ms[i] == want[i]
		}
		if !ok && bad < 5 {
			t.Errorf("attempt %s: %d queued→leased, %d ends; events %v, want %v", id, leases, ends, ms, want)
		}
		if !ok {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d attempts have wrong events", bad, len(moves))
	}
}

// reportStuck fails the test with the runs that did not end although all
// their attempts did, and their jobs' states.
func reportStuck(t *testing.T, ls *liveServer, active []core.Run) {
	t.Helper()
	for _, run := range active {
		jobs, err := ls.Store.Jobs(t.Context(), run.ID)
		if err != nil {
			t.Fatal(err)
		}
		states := map[core.JobState]int{}
		for _, j := range jobs {
			states[j.State]++
		}
		t.Errorf("run %s is still %s 5 s after its last attempt ended; its jobs: %v", run.ID, run.State, states)
	}
}
