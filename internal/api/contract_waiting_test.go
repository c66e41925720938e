package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// waitLog keeps the server's log records.
type waitLog struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *waitLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *waitLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *waitLog) WithGroup(string) slog.Handler            { return l }
func (l *waitLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	l.mu.Unlock()
	return nil
}

// count counts the records with message msg at level, and returns the
// attributes of the last.
func (l *waitLog) count(level slog.Level, msg string) (int, map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, attrs := 0, map[string]string{}
	for _, r := range l.recs {
		if r.Level == level && r.Message == msg {
			n++
			attrs = map[string]string{}
			r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
		}
	}
	return n, attrs
}

// contractRunner registers a runner named name with labels and opens its
// session, so that it is live.
func (e *contractEnv) contractRunner(ctx context.Context, name string, labels ...string) string {
	e.t.Helper()
	var reg protocol.RegisterResponse
	e.json(ctx, http.StatusCreated, "POST", "/api/v1/runners/register", contractRegToken,
		protocol.RegisterRequest{Name: name, Labels: labels, ProtocolVersion: protocol.Version}).decode(e.t, &reg)
	e.json(ctx, http.StatusOK, "POST", "/api/v1/runner/session", "",
		protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version})
	return reg.RunnerID
}

// metric reads one sample of the server's metrics.
func (e *contractEnv) metric(ctx context.Context, name string) string {
	e.t.Helper()
	body := string(e.expect(ctx, http.StatusOK, "GET", "/metrics", nil, nil).body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("metrics lack %s", name)
	}
	return m[1]
}

func TestContractWaiting(t *testing.T) {
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			testContractWaiting(t, engine)
		})
	}
}

func testContractWaiting(t *testing.T, engine string) {
	ctx := t.Context()
	logs := &waitLog{}
	e := newContractEnv(t, contractOptions{engine: engine, apiToken: contractAPIToken, edit: func(c *api.Config) {
		c.Executor, c.Log = "sandbox", slog.New(logs)
	}})
	repo := contractRepo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  build:\n    run: 'true'\n"})
	e.addProject(ctx, contractProject{Name: "waits", RepoURL: repo})

	// No runner at all: the creation warns, and the job says no runner is live.
	first := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Project: "waits"})
	if len(first.Warnings) != 1 || !strings.Contains(first.Warnings[0], "job build needs a runner with executor:sandbox, and no registered runner has executor:sandbox") {
		t.Errorf("warnings with no runner = %q", first.Warnings)
	}
	if w := contractJob(t, e.run(ctx, first.ID), "build").Waiting; !strings.HasPrefix(w, "no live runner: none was in touch in the last ") || !strings.Contains(w, "executor:sandbox") {
		t.Errorf("waiting with no runner = %q", w)
	}

	// A shell runner only: the job says which label nobody has, and who is there.
	e.contractRunner(ctx, "r1", "executor:shell")
	run := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Project: "waits"})
	if len(run.Warnings) != 1 || !strings.Contains(run.Warnings[0], "no registered runner has executor:sandbox") {
		t.Errorf("warnings with a shell runner = %q", run.Warnings)
	}
	const want = "no live runner has executor:sandbox; live runners: r1 [executor:shell]"
	// Within the server's one-second snapshot of the runners.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := contractJob(t, e.run(ctx, run.ID), "build")
		if got.Waiting == want {
			if got.State != "queued" {
				t.Errorf("the waiting job is %s", got.State)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting = %q, want %q", got.Waiting, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.run(ctx, run.ID)
	// Each waiting attempt is logged once per run, and counted once.
	if n, attrs := logs.count(slog.LevelWarn, "job waits for a runner"); n != 2 {
		t.Errorf("%d warnings logged for two waiting runs", n)
	} else if attrs["run_id"] != run.ID || attrs["job"] != "build" || attrs["reason"] != want {
		t.Errorf("the warning logged: %v", attrs)
	}
	if got := e.metric(ctx, "deltaci_unschedulable_attempts_total"); got != "2" {
		t.Errorf("deltaci_unschedulable_attempts_total = %s, want 2", got)
	}

	// A sandbox runner comes: nothing waits any more, and a new run does
	// not warn.
	e.contractRunner(ctx, "r2", "executor:sandbox")
	deadline = time.Now().Add(10 * time.Second)
	for contractJob(t, e.run(ctx, run.ID), "build").Waiting != "" {
		if time.Now().After(deadline) {
			t.Fatalf("the job still waits with a sandbox runner live: %+v", e.run(ctx, run.ID))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Project: "waits"}); len(r.Warnings) != 0 {
		t.Errorf("warnings with a sandbox runner = %q", r.Warnings)
	}
}

func TestContractErroredRun(t *testing.T) {
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			testContractErroredRun(t, engine)
		})
	}
}

func testContractErroredRun(t *testing.T, engine string) {
	ctx := t.Context()
	logs := &waitLog{}
	e := newContractEnv(t, contractOptions{engine: engine, apiToken: contractAPIToken, edit: func(c *api.Config) { c.Log = slog.New(logs) }})
	cases := []struct {
		name, file string
		labels     []string
		want       *regexp.Regexp
	}{
		{"unknown-key", "version: 1\njobs:\n  build:\n    run: 'true'\n    tmeout: 5m\n",
			nil, regexp.MustCompile(`^\.deltaci\.yml@[0-9a-f]{12}:5:5: unknown key "tmeout"`)},
		{"bad-yaml", "version: 1\njobs:\n  build:\n    run: [oops\n",
			nil, regexp.MustCompile(`^\.deltaci\.yml@[0-9a-f]{12}:\d+:\d+: `)},
		{"needs", "version: 1\njobs:\n  build:\n    run: 'true'\n    needs: [lint]\n",
			nil, regexp.MustCompile(`^\.deltaci\.yml@[0-9a-f]{12}:\d+:\d+: .*lint`)},
		{"label", "version: 1\njobs:\n  build:\n    run: 'true'\n    runs-on: [gpu]\n",
			[]string{"os:linux"}, regexp.MustCompile(`^job build asks for runner label "gpu"`)},
		{"missing", "",
			nil, regexp.MustCompile(`^commit [0-9a-f]{40} has no \.deltaci\.yml$`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.on(t)
			files := map[string]string{"README": "hello\n"}
			if c.file != "" {
				files[".deltaci.yml"] = c.file
			}
			e.addProject(ctx, contractProject{Name: c.name, RepoURL: contractRepo(t, files), Labels: c.labels})
			r := e.json(ctx, http.StatusBadRequest, "POST", "/api/v1/runs", contractAPIToken, protocol.CreateRunRequest{Project: c.name})
			d := r.errorDetail(t)
			id, _ := d.Details["run_id"].(string)
			if d.Code != "invalid" || id == "" {
				t.Fatalf("answer %+v: want code invalid and details.run_id", d)
			}
			run := e.run(ctx, id)
			if run.State != "errored" || run.Reason != "config_error" || run.Project != c.name || len(run.Jobs) != 0 || run.FinishedAt == nil {
				t.Errorf("run = %+v", run)
			}
			if !c.want.MatchString(run.Message) {
				t.Errorf("message %q does not match %s", run.Message, c.want)
			}
			// The answer says the same thing, once.
			if !strings.Contains(d.Message, run.Message) || strings.Count(d.Message, run.Message) != 1 {
				t.Errorf("answer %q, run message %q", d.Message, run.Message)
			}
		})
	}
	if n, attrs := logs.count(slog.LevelWarn, "run errored"); n != len(cases) || attrs["reason"] != "config_error" || attrs["run_id"] == "" {
		t.Errorf("%d errored runs logged, last %v", n, attrs)
	}
	// A ref that does not resolve is no configuration error: no run.
	r := e.json(ctx, http.StatusBadRequest, "POST", "/api/v1/runs", contractAPIToken, protocol.CreateRunRequest{Project: "label", Ref: "no-such-branch"})
	if d := r.errorDetail(t); d.Details["run_id"] != nil {
		t.Errorf("an unresolved ref recorded run %v", d.Details["run_id"])
	}
}

// TestWaitingIgnoresSilentRunners: a runner with the labels that has not
// been in touch for an hour is offline and takes nothing: the job waits,
// and says so, until the runner opens a session again.
func TestWaitingIgnoresSilentRunners(t *testing.T) {
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			var skew atomic.Int64
			clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
			srv := apitest.Start(t, apitest.Options{Engine: engine, StoreOptions: []store.Option{store.WithClock(clock)}})
			p := srv.AddProject(t, contractRepo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  build:\n    run: 'true'\n"}))

			// The runner registers and opens its session an hour ago.
			skew.Store(int64(-time.Hour))
			c := &protocol.Client{BaseURL: srv.URL}
			reg, err := c.Register(ctx, apitest.RegistrationToken, protocol.RegisterRequest{Name: "old", Labels: []string{api.ExecutorLabel("shell")}, ProtocolVersion: protocol.Version})
			if err != nil {
				t.Fatal(err)
			}
			session := protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version}
			if _, err := c.Session(ctx, session); err != nil {
				t.Fatal(err)
			}
			skew.Store(0)

			run, err := srv.User().CreateRun(ctx, protocol.CreateRunRequest{Project: p.Name})
			if err != nil {
				t.Fatal(err)
			}
			if len(run.Warnings) != 0 {
				t.Errorf("a registered runner has the label, but the creation warns %q", run.Warnings)
			}
			if w := contractJob(t, run, "build").Waiting; !strings.HasPrefix(w, "no live runner: none was in touch in the last ") {
				t.Errorf("waiting with only an offline runner = %q", w)
			}
			// In touch again: nothing waits for a runner that is not there.
			if _, err := c.Session(ctx, session); err != nil {
				t.Fatal(err)
			}
			again, err := srv.User().Run(ctx, run.ID)
			if err != nil {
				t.Fatal(err)
			}
			if w := contractJob(t, again, "build").Waiting; w != "" {
				t.Errorf("waiting with the runner back = %q", w)
			}
		})
	}
}

// A job that starts waiting while nobody reads its run (its only runner
// went silent after the run was created) is logged and counted by the
// leader's scan.
func TestWaitIsReportedUnread(t *testing.T) {
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			logs := &waitLog{}
			e := newContractEnv(t, contractOptions{engine: engine, apiToken: contractAPIToken, edit: func(c *api.Config) {
				c.Executor, c.Log = "sandbox", slog.New(logs)
				// Silent after ContactFlush + 2 × max(MaxLeaseWait, TTL).
				c.ContactFlush, c.TTL, c.MaxLeaseWait = 100*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
				c.ReapInterval, c.WaitScan = 50*time.Millisecond, 50*time.Millisecond
			}})
			repo := contractRepo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  build:\n    run: 'true'\n"})
			e.addProject(ctx, contractProject{Name: "quiet", RepoURL: repo})
			var reg protocol.RegisterResponse
			e.json(ctx, http.StatusCreated, "POST", "/api/v1/runners/register", contractRegToken,
				protocol.RegisterRequest{Name: "r1", Labels: []string{"executor:sandbox"}, ProtocolVersion: protocol.Version}).decode(t, &reg)
			// The runner stays in touch until the run exists, however long
			// its creation takes on a busy machine; then it goes silent.
			c := &protocol.Client{BaseURL: e.url}
			session := protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version}
			if _, err := c.Session(ctx, session); err != nil {
				t.Fatal(err)
			}
			created := make(chan struct{})
			touching := make(chan struct{})
			go func() {
				defer close(touching)
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-created:
						return
					case <-tick.C:
						_, _ = c.Session(ctx, session) // a miss shows as the failure below
					}
				}
			}()
			run := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Project: "quiet"})
			close(created)
			<-touching
			if w := contractJob(t, run, "build").Waiting; w != "" {
				t.Fatalf("the job waits while its runner is live: %q", w)
			}
			// Nobody reads the run from here on: only the scan can see it.
			deadline := time.Now().Add(30 * time.Second)
			for e.metric(ctx, "deltaci_unschedulable_attempts_total") != "1" {
				if time.Now().After(deadline) {
					t.Fatalf("deltaci_unschedulable_attempts_total = %s after the runner went silent (the run now: %+v; runners %s)", e.metric(ctx, "deltaci_unschedulable_attempts_total"), e.run(ctx, run.ID), e.json(ctx, http.StatusOK, "GET", "/api/v1/runners", contractAPIToken, nil).body)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if n, attrs := logs.count(slog.LevelWarn, "job waits for a runner"); n != 1 || attrs["run_id"] != run.ID || attrs["job"] != "build" {
				t.Errorf("%d warnings logged, the last %v", n, attrs)
			}
		})
	}
}
