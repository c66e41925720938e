package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/results"
)

// benchToken is the registration token of the servers the harness
// starts, and benchAPIToken their admin API token.
const (
	benchToken    = "bench"
	benchAPIToken = "bench-api"
)

// defaultPostgres is the PostgreSQL server the throughput suite uses when
// BENCH_POSTGRES is unset; it creates and drops its own databases there.
const defaultPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// startDeltaci starts `deltaci server` on a loopback port, with its data
// in a directory of its own and args added, and returns once it listens.
func (h *harness) startDeltaci(ctx context.Context, name string, args ...string) (*server, error) {
	bin, err := h.build(ctx, "cmd/deltaci")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"server", "--listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(h.dir, name), "--executor", "shell", "--registration-token", benchToken, "--api-token", benchAPIToken}, args...)...)
	addr, err := startLogged(cmd, "listening")
	if err != nil {
		return nil, fmt.Errorf("deltaci server: %w", err)
	}
	var line struct{ Addr string }
	if err := json.Unmarshal([]byte(addr), &line); err != nil || line.Addr == "" {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("deltaci server said %q", addr)
	}
	return &server{cmd: cmd, addr: line.Addr}, nil
}

// startLogged starts cmd, whose stdout is slog JSON, and waits for the
// line whose msg is ready; it returns that line. The rest of the output is
// read and dropped, so the process never blocks on a full pipe.
func startLogged(cmd *exec.Cmd, ready string) (string, error) {
	return startWatched(cmd, ready, nil)
}

// startShellRunner starts a `deltaci runner --executor shell` against the
// server at base, working in h.dir/dir, once it is ready; its later log
// lines go to lines when not nil. Stop it as a server: SIGINT, then wait.
func (h *harness) startShellRunner(ctx context.Context, base, dir string, lines chan<- string) (*server, error) {
	return h.startRunner(ctx, base, dir, "shell", lines)
}

// startRunner is startShellRunner with the executor named.
func (h *harness) startRunner(ctx context.Context, base, dir, executor string, lines chan<- string) (*server, error) {
	bin, err := h.build(ctx, "cmd/deltaci")
	if err != nil {
		return nil, err
	}
	rcmd := exec.Command(bin, "runner", "--server", base, "--registration-token", benchToken,
		"--work-dir", filepath.Join(h.dir, dir), "--executor", executor, "--name", "bench")
	if _, err := startWatched(rcmd, "runner ready", lines); err != nil {
		return nil, fmt.Errorf("deltaci runner: %w", err)
	}
	return &server{cmd: rcmd}, nil
}

// startWatched is startLogged that also sends every later line to lines
// (dropping lines nobody reads in time).
func startWatched(cmd *exec.Cmd, ready string, lines chan<- string) (string, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return "", err
	}
	r := bufio.NewReader(stdout)
	var seen []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return "", fmt.Errorf("exited before it was ready: %s", strings.Join(seen, ""))
		}
		var l struct{ Msg string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == ready {
			if lines == nil {
				go io.Copy(io.Discard, r)
			} else {
				go func() {
					for {
						line, err := r.ReadString('\n')
						if err != nil {
							return
						}
						select {
						case lines <- line:
						default:
						}
					}
				}()
			}
			return line, nil
		}
		seen = append(seen, line)
	}
}

// gitRepo commits files into a new repository under the scratch directory.
func (h *harness) gitRepo(ctx context.Context, name string, files map[string]string) (string, error) {
	dir := filepath.Join(h.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for n, content := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "bench"}} {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "commit.gpgsign=false",
			"-c", "user.name=bench", "-c", "user.email=bench@example.com"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("git %v: %w\n%s", args, err, out)
		}
	}
	return dir, nil
}

// jobsFile is a .deltaci.yml of n independent jobs running script. They
// are not reusable, so that every run executes them all.
func jobsFile(n int, script string) string {
	var b strings.Builder
	b.WriteString("version: 1\njobs:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  j%04d:\n    reuse: false\n    run: %q\n", i, script)
	}
	return b.String()
}

// httpClient keeps a connection per concurrent caller: the default
// transport keeps two, and many callers would reconnect for most requests.
func httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

// newRunnerClient registers a runner with the executor label of the
// harness's servers and returns a client holding its session.
func newRunnerClient(ctx context.Context, base string, hc *http.Client, name string) (*protocol.Client, error) {
	c := &protocol.Client{BaseURL: base, HTTP: hc}
	reg, err := c.Register(ctx, benchToken, protocol.RegisterRequest{Name: name,
		Labels: []string{api.ExecutorLabel("shell")}, ProtocolVersion: protocol.Version})
	if err != nil {
		return nil, err
	}
	sess, err := c.Session(ctx, protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version})
	if err != nil {
		return nil, err
	}
	// A session lasts 15 minutes, longer than any suite.
	c.Token = func(context.Context) (string, error) { return sess.Token, nil }
	return c, nil
}

// percentile is the q-quantile (nearest rank) of xs, in milliseconds.
func percentile(xs []time.Duration, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := max(int(math.Ceil(q*float64(len(s))))-1, 0)
	return float64(s[i].Microseconds()) / 1000
}

// benchPickup measures how long a queued attempt waits for an idle runner
// that is long-polling: from the attempt's queued_at to the lease answer's
// arrival at the runner, over single-job runs created one after another.
func benchPickup(ctx context.Context, h *harness) ([]Result, error) {
	n := 200
	if h.quick {
		n = 20
	}
	srv, err := h.startDeltaci(ctx, "pickup")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	base := "http://" + srv.addr
	hc := httpClient()
	repo, err := h.gitRepo(ctx, "pickup-repo", map[string]string{".deltaci.yml": "version: 1\njobs:\n  noop:\n    run: 'true'\n"})
	if err != nil {
		return nil, err
	}

	health := make([]time.Duration, 0, n)
	for i := 0; i < n+10; i++ {
		start := time.Now()
		resp, err := hc.Get(base + "/healthz")
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if i >= 10 { // the first requests open the connection
			health = append(health, time.Since(start))
		}
	}

	rc, err := newRunnerClient(ctx, base, hc, "pickup")
	if err != nil {
		return nil, err
	}
	type received struct {
		id  string
		at  time.Time
		err error
	}
	got := make(chan received)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			l, err := rc.Lease(runCtx, 30*time.Second)
			at := time.Now()
			if runCtx.Err() != nil {
				return
			}
			if err == nil && l == nil {
				continue
			}
			if err == nil {
				// Ended before it is reported, so the runner is long-polling
				// again by the time the next run is queued.
				err = endFailed(context.WithoutCancel(runCtx), rc, l)
			}
			r := received{at: at, err: err}
			if l != nil {
				r.id = l.AttemptID
			}
			select {
			case got <- r:
			case <-runCtx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	user := &protocol.Client{BaseURL: base, HTTP: hc, Token: apiToken}
	if err := addProject(ctx, user, repo); err != nil {
		return nil, err
	}
	pickup := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		run, err := user.CreateRun(ctx, protocol.CreateRunRequest{Repo: repo, Ref: "main", Event: core.EventManual})
		if err != nil {
			return nil, err
		}
		if len(run.Jobs) != 1 || len(run.Jobs[0].Attempts) != 1 {
			return nil, fmt.Errorf("run %s was not queued: %+v", run.ID, run.Jobs)
		}
		a := run.Jobs[0].Attempts[0]
		var r received
		select {
		case r = <-got:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if r.err != nil {
			return nil, r.err
		}
		if r.id != a.ID {
			return nil, fmt.Errorf("leased %s, want %s", r.id, a.ID)
		}
		pickup = append(pickup, r.at.Sub(a.QueuedAt))
	}
	note := "queued_at is stored to the millisecond (truncated), so pickup reads 0-1 ms high"
	p50, p99 := percentile(pickup, 0.5), percentile(pickup, 0.99)
	h50, h99 := percentile(health, 0.5), percentile(health, 0.99)
	return []Result{
		{
			Name: fmt.Sprintf("pickup p50, queued → lease received (%d runs, SQLite)", n), Value: p50, Unit: "ms",
			Baseline: "GET /healthz round trip p50 ms", BaselineValue: h50, Ratio: p50 / h50,
			Goal: "<= 5 ms", Met: p50 <= 5, Note: note,
		},
		{
			Name: fmt.Sprintf("pickup p99, queued → lease received (%d runs, SQLite)", n), Value: p99, Unit: "ms",
			Baseline: "GET /healthz round trip p99 ms", BaselineValue: h99, Ratio: p99 / h99,
			Goal: "<= 50 ms", Met: p99 <= 50,
		},
	}, nil
}

// endFailed starts a leased attempt and completes it as failed with exit
// code 1, which needs no outputs.
func endFailed(ctx context.Context, c *protocol.Client, l *protocol.Lease) error {
	if err := c.Start(ctx, l.AttemptID, l.LeaseToken); err != nil {
		return err
	}
	code := 1
	_, err := c.Complete(ctx, l.AttemptID, protocol.CompleteRequest{LeaseToken: l.LeaseToken, State: core.AttemptFailed, ExitCode: &code})
	return err
}

// endSucceeded does what a runner does for a no-op job that succeeded:
// start, push its outputs manifest through the server's /store with the
// job token when the job has outputs globs, and complete.
func endSucceeded(ctx context.Context, c *protocol.Client, base, empty string, l *protocol.Lease) error {
	if err := c.Start(ctx, l.AttemptID, l.LeaseToken); err != nil {
		return err
	}
	if len(l.Outputs) == 0 {
		_, err := c.Complete(ctx, l.AttemptID, protocol.CompleteRequest{LeaseToken: l.LeaseToken, State: core.AttemptSucceeded})
		return err
	}
	sc := &httpapi.Client{BaseURL: base + api.StorePrefix, HTTP: &http.Client{Transport: bearer{token: l.JobToken, next: c.HTTP.Transport}}}
	tr := &registry.Transfer{Data: sc, Catalog: httpapi.Catalog{C: sc}}
	a := core.Attempt{ID: l.AttemptID, RunID: l.RunID, Number: l.AttemptNumber}
	res, err := tr.Push(ctx, "", empty, "", registry.PushOptions{Only: []string{}, Annotations: results.Annotations(a, core.Job{Name: l.Job, Digest: l.Digest})})
	if err != nil {
		return err
	}
	_, err = c.Complete(ctx, l.AttemptID, protocol.CompleteRequest{LeaseToken: l.LeaseToken, State: core.AttemptSucceeded, OutputsManifest: res.Manifest.String()})
	return err
}

// bearer adds a job token to the artifact store's requests.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(req)
}

// skipped is a figure that could not be measured here, and why.
func skipped(name, goal, why string) []Result {
	return []Result{{Name: name, Goal: goal, Skipped: why}}
}

// benchThroughput drives no-op jobs through a `deltaci server` on
// PostgreSQL with 16 runner slots speaking the HTTP protocol, and compares
// with pgbench's simple-update TPS on the same PostgreSQL.
func benchThroughput(ctx context.Context, h *harness) ([]Result, error) {
	const name, goal = "no-op jobs/s, 16 runner slots over HTTP, PostgreSQL", ">= 500 jobs/s and ratio >= 0.15"
	// 6,000 jobs take about as long as pgbench's 10 s at the rates seen
	// (600 to 1,600 jobs/s): both figures are then steady state, not one
	// of them mostly warm-up.
	runs, perRun, pgSecs := 60, 100, 10
	if h.quick {
		runs, pgSecs = 2, 2
	}
	if _, err := exec.LookPath("pgbench"); err != nil {
		return skipped(name, goal, "pgbench is not installed"), nil
	}
	admin := os.Getenv("BENCH_POSTGRES")
	if admin == "" {
		admin = defaultPostgres
	}
	serverDB, err := scratchDatabase(ctx, admin, "deltaci_bench")
	if err != nil {
		return skipped(name, goal, "PostgreSQL: "+err.Error()), nil
	}
	defer dropDatabase(admin, "deltaci_bench")
	pgbenchDB, err := scratchDatabase(ctx, admin, "deltaci_pgbench")
	if err != nil {
		return nil, err
	}
	defer dropDatabase(admin, "deltaci_pgbench")
	tps, err := pgbench(ctx, pgbenchDB, pgSecs)
	if err != nil {
		return nil, err
	}

	srv, err := h.startDeltaci(ctx, "throughput", "--database", serverDB)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	base := "http://" + srv.addr
	hc := httpClient()
	repo, err := h.gitRepo(ctx, "throughput-repo", map[string]string{".deltaci.yml": jobsFile(perRun, "true")})
	if err != nil {
		return nil, err
	}
	user := &protocol.Client{BaseURL: base, HTTP: hc, Token: apiToken}
	if err := addProject(ctx, user, repo); err != nil {
		return nil, err
	}
	var runIDs []string
	for i := 0; i < runs; i++ {
		run, err := user.CreateRun(ctx, protocol.CreateRunRequest{Repo: repo, Ref: "main", Event: core.EventManual})
		if err != nil {
			return nil, err
		}
		runIDs = append(runIDs, run.ID)
	}
	total := int64(runs * perRun)
	// One runner with 16 slots, as `deltaci runner --capacity 16` is.
	rc, err := newRunnerClient(ctx, base, hc, "throughput")
	if err != nil {
		return nil, err
	}
	empty := filepath.Join(h.dir, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		return nil, err
	}
	var done atomic.Int64
	slotCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 16)
	var wg sync.WaitGroup
	cpu0 := sampleCPU(srv.cmd.Process.Pid)
	start := time.Now()
	var last atomic.Int64 // unix nanoseconds of the last completion
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for slotCtx.Err() == nil {
				l, err := rc.Lease(slotCtx, time.Second)
				if slotCtx.Err() != nil {
					return
				}
				if err == nil && l != nil {
					err = endSucceeded(context.WithoutCancel(slotCtx), rc, base, empty, l)
				}
				if err != nil {
					errc <- err
					cancel()
					return
				}
				if l != nil {
					last.Store(time.Now().UnixNano())
					if done.Add(1) == total {
						cancel()
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	cpu1 := sampleCPU(srv.cmd.Process.Pid)
	secs := time.Unix(0, last.Load()).Sub(start).Seconds()
	rate := float64(total) / secs
	note := fmt.Sprintf("%d jobs in %d runs; pgbench -N -c 16 -j 2 -T %d; server, PostgreSQL and harness share %d CPUs; %s",
		total, runs, pgSecs, runtime.NumCPU(), cpuPerJob(cpu0, cpu1, total))
	if stuck, err := unended(ctx, user, runIDs); err != nil {
		return nil, err
	} else if stuck > 0 {
		note += fmt.Sprintf("; %d of %d runs still running although all their jobs ended", stuck, runs)
	}
	return []Result{{
		Name: name, Value: rate, Unit: "jobs/s",
		Baseline: "pgbench simple-update TPS", BaselineValue: tps, Ratio: rate / tps,
		Goal: goal, Met: rate >= 500 && rate/tps >= 0.15, Note: note,
	}}, nil
}

// unended counts the runs that have not ended.
func unended(ctx context.Context, user *protocol.Client, ids []string) (int, error) {
	n := 0
	for _, id := range ids {
		run, err := user.Run(ctx, id)
		if err != nil {
			return 0, err
		}
		if !core.RunState(run.State).Terminal() {
			n++
		}
	}
	return n, nil
}

// scratchDatabase (re)creates an empty database called name on the
// PostgreSQL server of admin and returns its URL.
func scratchDatabase(ctx context.Context, admin, name string) (string, error) {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(c, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	for _, q := range []string{"DROP DATABASE IF EXISTS " + name + " WITH (FORCE)", "CREATE DATABASE " + name} {
		if _, err := conn.Exec(c, q); err != nil {
			return "", err
		}
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func dropDatabase(admin, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

// pgbench initializes db and returns the TPS of its simple-update run
// (-N) with 16 clients on 2 threads for secs seconds.
func pgbench(ctx context.Context, db string, secs int) (float64, error) {
	if out, err := exec.CommandContext(ctx, "pgbench", "-i", "-q", db).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, "pgbench", "-N", "-c", "16", "-j", "2", "-T", strconv.Itoa(secs), db).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	m := regexp.MustCompile(`tps = ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench printed no tps:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// benchLogShipping runs a job printing 200 MB on a `deltaci runner`
// process against a `deltaci server` process, and compares the attempt's
// time (started → finished, which includes shipping the log's tail) with
// the same command redirected to a file.
func benchLogShipping(ctx context.Context, h *harness) ([]Result, error) {
	size, reps := 200_000_000, 5
	if h.quick {
		size, reps = 20_000_000, 1
	}
	// yes is a fast, deterministic generator of text lines.
	gen := fmt.Sprintf("yes %s | head -c %d", strings.Repeat("0123456789abcdef", 6), size)
	file := filepath.Join(h.dir, "log-baseline.txt")
	defer os.Remove(file)
	// One run of each is at the mercy of whatever else the machine does
	// for a tenth of a second: medians of reps runs, taken in turns.
	var redirects, jobs, shipped []time.Duration
	redirect := func() error {
		start := time.Now()
		if out, err := exec.CommandContext(ctx, "sh", "-e", "-c", gen+" > "+file).CombinedOutput(); err != nil {
			return fmt.Errorf("baseline: %w\n%s", err, out)
		}
		redirects = append(redirects, time.Since(start))
		return nil
	}

	srv, err := h.startDeltaci(ctx, "logs")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	base := "http://" + srv.addr
	lines := make(chan string, 1024)
	runner, err := h.startShellRunner(ctx, base, "logs-runner", lines)
	if err != nil {
		return nil, err
	}
	defer runner.stop()

	repo, err := h.gitRepo(ctx, "logs-repo", map[string]string{".deltaci.yml": jobsFile(1, gen)})
	if err != nil {
		return nil, err
	}
	user := &protocol.Client{BaseURL: base, Token: apiToken}
	if err := addProject(ctx, user, repo); err != nil {
		return nil, err
	}
	var last protocol.Attempt
	for rep := 0; rep < reps; rep++ {
		if err := redirect(); err != nil {
			return nil, err
		}
		a, job, err := shipOnce(ctx, user, repo, lines)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job)
		shipped = append(shipped, a.FinishedAt.Sub(*a.StartedAt))
		last = a
	}
	match, err := sameContent(last.LogDigest, file)
	if err != nil {
		return nil, err
	}
	med := func(xs []time.Duration) float64 { return percentile(xs, 0.5) / 1000 }
	job, ship, red := med(jobs), med(shipped), med(redirects)
	mb := float64(size) / 1e6
	return []Result{
		{
			Name: fmt.Sprintf("job printing %d MB on a runner (its log spooled and shipped), job run time", size/1e6), Value: job, Unit: "s",
			Baseline: "the same command > file, s", BaselineValue: red, Ratio: job / red,
			Goal: "ratio <= 1.2", Met: job/red <= 1.2,
			Note: fmt.Sprintf("medians of %d runs of each, in turns; the job's process from start to exit, as the runner measured it; the log ships from a spool meanwhile", reps),
		},
		{
			Name: "the same job, attempt started → finished (whole log shipped)", Value: ship, Unit: "s",
			Baseline: "the same command > file, s", BaselineValue: red, Ratio: ship / red,
			Goal: "report", Met: true,
			Note: fmt.Sprintf("%.0f MB/s delivered to the server vs %.0f MB/s to a file; attempt times are to the millisecond", mb/ship, mb/red),
		},
		{
			Name: "sealed log's length - the bytes printed", Value: float64(last.LogLength - int64(size)), Unit: "bytes",
			Goal: "0, and the same digest", Met: last.LogLength == int64(size) && match,
			Note: fmt.Sprintf("sealed %d bytes as %s; digest matches the file: %v", last.LogLength, last.LogDigest, match),
		},
	}, nil
}

// shipOnce runs the log job once and waits for its log to be sealed. It
// returns the attempt and the job's run time as the runner logged it.
func shipOnce(ctx context.Context, user *protocol.Client, repo string, lines <-chan string) (protocol.Attempt, time.Duration, error) {
	run, err := user.CreateRun(ctx, protocol.CreateRunRequest{Repo: repo, Ref: "main", Event: core.EventManual})
	if err != nil {
		return protocol.Attempt{}, 0, err
	}
	var a protocol.Attempt
	for deadline := time.Now().Add(10 * time.Minute); ; {
		if run, err = user.Run(ctx, run.ID); err != nil {
			return a, 0, err
		}
		if len(run.Jobs) == 1 && len(run.Jobs[0].Attempts) > 0 {
			a = run.Jobs[0].Attempts[0]
		}
		if core.RunState(run.State).Terminal() && a.LogDigest != "" {
			break
		}
		if time.Now().After(deadline) {
			return a, 0, fmt.Errorf("run %s is %s, log digest %q after 10 minutes", run.ID, run.State, a.LogDigest)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a.State != string(core.AttemptSucceeded) || a.StartedAt == nil || a.FinishedAt == nil {
		return a, 0, fmt.Errorf("the job ended %s/%s", a.State, a.Reason)
	}
	// The job's own run time, as the runner measured it around the process.
	for {
		select {
		case line := <-lines:
			var l struct {
				Msg       string
				AttemptID string  `json:"attempt_id"`
				JobMillis float64 `json:"job_ms"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "job ended" && l.AttemptID == a.ID {
				return a, time.Duration(l.JobMillis * float64(time.Millisecond)), nil
			}
		case <-time.After(10 * time.Second):
			return a, 0, fmt.Errorf("the runner logged no \"job ended\" line for attempt %s", a.ID)
		}
	}
}

// sameContent reports whether the file's digest, in d's algorithm, is d.
func sameContent(d, file string) (bool, error) {
	want, err := digest.Parse(d)
	if err != nil {
		return false, err
	}
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	got, _, err := digest.FromReader(want.Algorithm(), f)
	if err != nil {
		return false, err
	}
	return got == want, nil
}

// apiToken gives the harness's clients the servers' admin API token.
func apiToken(context.Context) (string, error) { return benchAPIToken, nil }

// addProject registers repo with the server, main protected, so that runs
// of it can be made.
func addProject(ctx context.Context, user *protocol.Client, repo string) error {
	_, err := user.AddProject(ctx, protocol.Project{Name: filepath.Base(repo), RepoURL: repo, ProtectedBranches: []string{"main"}})
	if err != nil {
		return fmt.Errorf("registering %s as a project: %w", repo, err)
	}
	return nil
}
