package main_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/runner"
	"github.com/deltaci/deltaci/internal/sqlitepool"
	"github.com/deltaci/deltaci/internal/store/storetest"
	"github.com/deltaci/deltaci/internal/workspace"
)

// The cluster tests run `deltaci server` and `deltaci runner` as real
// processes on loopback. Deadlines only bound a wait: reaching one is a
// failure, never a measurement.
const (
	// waitLong bounds waits for a run or a process to get somewhere.
	waitLong = 90 * time.Second
	// registrationToken is what the test servers and runners share.
	registrationToken = "e2e-registration-token"
)

// onBothDatabases runs test on SQLite (in the server's data directory,
// database "") and on a fresh PostgreSQL schema (database is its URL).
func onBothDatabases(t *testing.T, test func(t *testing.T, database string)) {
	t.Helper()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		test(t, "")
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		test(t, storetest.PostgresURL(t))
	})
}

// lockedBuffer collects a process's output while tests read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is one deltaci process of a test.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{} // closed when the process has exited
}

// childEnv is the test's environment without DELTACI_ settings, which
// would change what the processes do, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DELTACI_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// procOpts are what a process gets besides its arguments.
type procOpts struct {
	env []string // added to childEnv
	// attr replaces the process attributes (a controlling terminal, say);
	// it must start a new process group. nil means Setpgid.
	attr  *syscall.SysProcAttr
	stdin *os.File
}

// startProc starts deltaci with args in a process group of its own and
// kills that group when the test ends.
func startProc(t *testing.T, name string, o procOpts, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = command("", args...)
	p.cmd.Env = childEnv(o.env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if o.stdin != nil {
		p.cmd.Stdin = o.stdin
	}
	p.cmd.SysProcAttr = o.attr
	if o.attr == nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("%s (pid %d) stdout:\n%s\nstderr:\n%s", name, p.cmd.Process.Pid, tail(p.stdout.String()), tail(p.stderr.String()))
		}
	})
	return p
}

func tail(s string) string {
	const max = 16 << 10
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}

// kill sends SIGKILL to the process's group and waits for it to exit.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(waitLong):
		t.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// records parses the JSON log lines the process has written so far.
func (p *proc) records() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(p.stdout.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// waitRecord waits for the first log record with msg after the first skip
// of them, and returns it.
func (p *proc) waitRecord(t *testing.T, msg string, skip int) map[string]any {
	t.Helper()
	var found map[string]any
	eventually(t, fmt.Sprintf("%s logs %q", p.name, msg), func() bool {
		n := 0
		for _, rec := range p.records() {
			if rec["msg"] == msg {
				if n == skip {
					found = rec
					return true
				}
				n++
			}
		}
		if p.exited() {
			t.Fatalf("%s exited before logging %q:\n%s\n%s", p.name, msg, tail(p.stdout.String()), tail(p.stderr.String()))
		}
		return false
	})
	return found
}

// eventually polls cond until it holds, and fails the test when waitLong
// passes first.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting (%s): %s", waitLong, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// server is a `deltaci server` process and what it takes to restart it.
type server struct {
	*proc
	dataDir  string
	database string // "" for SQLite in dataDir
	executor string
	env      []string
	args     []string // extra flags
	addr     string   // host:port it listens on
	api      *protocol.Client
	apiToken string
	// noAPIToken: the server gets no DELTACI_API_TOKEN and makes its own.
	noAPIToken bool
	projects   map[string]string // registered repositories and their project names
}

// serverOpts configure startServer; the zero value is a shell-executor
// server on SQLite.
type serverOpts struct {
	database string
	executor string
	env      []string
	// noAPIToken starts the server without DELTACI_API_TOKEN, so that it
	// makes its own first admin token.
	noAPIToken bool
	extraArgs  []string // more server flags
}

// startServer starts a server on a free loopback port with short leases,
// so that lost runners are noticed within seconds.
func startServer(t *testing.T, o serverOpts) *server {
	t.Helper()
	if o.executor == "" {
		o.executor = "shell"
	}
	s := &server{dataDir: t.TempDir(), database: o.database, executor: o.executor, env: o.env, args: o.extraArgs, apiToken: e2eAPIToken, projects: map[string]string{}}
	if o.noAPIToken {
		s.apiToken, s.noAPIToken = "", true
	}
	for _, kv := range o.env {
		if v, ok := strings.CutPrefix(kv, "DELTACI_API_TOKEN="); ok {
			s.apiToken = v
		}
	}
	s.start(t, "127.0.0.1:0")
	return s
}

func (s *server) start(t *testing.T, listen string) {
	t.Helper()
	args := []string{"server", "--listen", listen, "--data-dir", s.dataDir, "--executor", s.executor,
		"--lease-ttl", "3s", "--reap-interval", "500ms", "--shutdown-timeout", "5s"}
	if s.database != "" {
		args = append(args, "--database", s.database)
	}
	args = append(args, s.args...)
	env := append([]string{"DELTACI_REGISTRATION_TOKEN=" + registrationToken}, s.env...)
	if !s.noAPIToken {
		env = append(env, "DELTACI_API_TOKEN="+s.apiToken)
	}
	// On a restart the old port may be taken for a moment by a client's
	// connection: try again.
	for try := 0; ; try++ {
		s.proc = startProc(t, "server", procOpts{env: env}, args...)
		var rec map[string]any
		eventually(t, "the server listens", func() bool {
			for _, r := range s.records() {
				if r["msg"] == "listening" {
					rec = r
					return true
				}
			}
			return s.exited()
		})
		if rec != nil {
			s.addr, _ = rec["addr"].(string)
			break
		}
		if try < 20 && strings.Contains(s.stderr.String(), "address already in use") {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		t.Fatalf("the server exited before listening:\n%s\n%s", s.stdout.String(), s.stderr.String())
	}
	s.api = &protocol.Client{BaseURL: s.url(), Token: func(context.Context) (string, error) { return s.apiToken, nil }}
}

// e2eAPIToken is the admin API token of the servers the tests start,
// unless a test sets its own DELTACI_API_TOKEN.
const e2eAPIToken = "e2e-admin-token"

// userEnv is the environment a user's deltaci command needs for s.
func (s *server) userEnv() []string { return []string{"DELTACI_API_TOKEN=" + s.apiToken} }

// project registers dir as a project of s the first time, with main
// protected and the settings given as extra flags, and returns its name.
func (s *server) project(t *testing.T, dir string, flags ...string) string {
	t.Helper()
	if name, ok := s.projects[dir]; ok {
		return name
	}
	name := fmt.Sprintf("p%d", len(s.projects)+1)
	args := append([]string{"projects", "add", name, "--server", s.url(), "--repo", dir, "--protected", "main"}, flags...)
	cmd := command(dir, args...)
	cmd.Env = childEnv(s.userEnv()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deltaci projects add %s: %v\n%s", name, err, out)
	}
	s.projects[dir] = name
	return name
}

func (s *server) url() string { return "http://" + s.addr }

// restart starts the server again, after s.kill, with the same data, the
// same database and on the same address.
func (s *server) restart(t *testing.T) {
	t.Helper()
	if !s.exited() {
		t.Fatal("restart: the server is still running")
	}
	s.start(t, s.addr)
}

// sqlitePath is the server's SQLite database.
func (s *server) sqlitePath() string { return filepath.Join(s.dataDir, "state.db") }

// db opens the server's database for reading: the SQLite file read-only,
// or the test's PostgreSQL schema.
func (s *server) db(t *testing.T) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if s.database == "" {
		db, err = sql.Open("sqlite", sqlitepool.DSN(s.sqlitePath(), true))
	} else {
		db, err = sql.Open("pgx", s.database)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// lease reads an attempt's lease token and expiry from the database:
// only the runner that holds the lease learns them from the API.
func (s *server) lease(t *testing.T, attemptID string) (token string, expires time.Time) {
	t.Helper()
	if !uuidRE.MatchString(attemptID) {
		t.Fatalf("attempt id %q is not a UUID", attemptID)
	}
	var ms sql.NullInt64
	// The id is checked above; placeholders differ between the engines.
	q := "SELECT lease_token, lease_expires_at FROM attempts WHERE id = '" + attemptID + "'"
	if err := s.db(t).QueryRow(q).Scan(&token, &ms); err != nil {
		t.Fatalf("reading the lease of %s: %v", attemptID, err)
	}
	return token, time.UnixMilli(ms.Int64)
}

// event is one row of the events table.
type event struct {
	Entity, EntityID, From, To, Reason string
}

// events reads the whole events table in order.
func (s *server) events(t *testing.T) []event {
	t.Helper()
	rows, err := s.db(t).Query("SELECT entity, entity_id, from_state, to_state, reason FROM events ORDER BY seq")
	if err != nil {
		t.Fatalf("reading events: %v", err)
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		var e event
		if err := rows.Scan(&e.Entity, &e.EntityID, &e.From, &e.To, &e.Reason); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// createRun starts a run of dir at ref.
func (s *server) createRun(t *testing.T, dir, ref string) protocol.Run {
	t.Helper()
	run, err := s.api.CreateRun(t.Context(), protocol.CreateRunRequest{Project: s.project(t, dir), Ref: ref})
	if err != nil {
		t.Fatalf("creating a run of %s at %s: %v", dir, ref, err)
	}
	return run
}

// waitRun polls a run until cond holds and returns it. Transient errors
// (a server restarting) are waited out.
func (s *server) waitRun(t *testing.T, id, what string, cond func(protocol.Run) bool) protocol.Run {
	t.Helper()
	var run protocol.Run
	var lastErr error
	eventually(t, fmt.Sprintf("run %s: %s (last seen: %s, error: %v)", id, what, describeRun(&run), lastErr), func() bool {
		r, err := s.api.Run(t.Context(), id)
		if err != nil {
			if !protocol.IsTransient(err) {
				t.Fatalf("run %s: %v", id, err)
			}
			lastErr = err
			return false
		}
		run = r
		return cond(r)
	})
	return run
}

// waitRunEnds waits until the run is over and every attempt's log is
// sealed, so that nothing is left to change.
func (s *server) waitRunEnds(t *testing.T, id string) protocol.Run {
	t.Helper()
	return s.waitRun(t, id, "ends with every log sealed", func(r protocol.Run) bool {
		if !core.RunState(r.State).Terminal() {
			return false
		}
		for _, j := range r.Jobs {
			for _, a := range j.Attempts {
				if a.LogLength > 0 && a.LogDigest == "" {
					return false
				}
			}
		}
		return true
	})
}

// describeRun is a run's state in one line, for failure messages.
func describeRun(r *protocol.Run) string {
	if r.ID == "" {
		return "nothing"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s;", r.State)
	for _, j := range r.Jobs {
		fmt.Fprintf(&b, " %s=%s[", j.Name, j.State)
		for i, a := range j.Attempts {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "#%d %s %s runner=%.8s log=%d", a.Number, a.State, a.Reason, a.RunnerID, a.LogLength)
		}
		b.WriteString("]")
	}
	return b.String()
}

// logsOf is every attempt's log of a run, for failure messages.
func (s *server) logsOf(t *testing.T, r protocol.Run) string {
	t.Helper()
	var b strings.Builder
	for _, j := range r.Jobs {
		for _, a := range j.Attempts {
			data, err := s.api.Log(t.Context(), a.ID, 0)
			fmt.Fprintf(&b, "--- %s #%d (%s %s, error %v):\n%s\n", j.Name, a.Number, a.State, a.Reason, err, data)
		}
	}
	return b.String()
}

// job returns the run's job called name.
func job(t *testing.T, r protocol.Run, name string) protocol.Job {
	t.Helper()
	for _, j := range r.Jobs {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("run %s has no job %s: %s", r.ID, name, describeRun(&r))
	return protocol.Job{}
}

// lastAttempt is the job's latest attempt, or nil.
func lastAttempt(j protocol.Job) *protocol.Attempt {
	if len(j.Attempts) == 0 {
		return nil
	}
	return &j.Attempts[len(j.Attempts)-1]
}

// runnerProc is a `deltaci runner` process.
type runnerProc struct {
	*proc
	id      string
	workDir string
}

// runnerOpts configure a runner; the zero value is one shell slot.
type runnerOpts struct {
	executor string
	capacity int
	proc     procOpts
	workDir  string // a new temporary directory when empty
	// workspaces is --workspaces; the runner's default when empty.
	workspaces string
}

func (o runnerOpts) workspacesFlag() []string {
	if o.workspaces == "" {
		return nil
	}
	return []string{"--workspaces", o.workspaces}
}

// startRunner starts a runner against s and waits until it has registered.
func (s *server) startRunner(t *testing.T, o runnerOpts) *runnerProc {
	t.Helper()
	if o.executor == "" {
		o.executor = "shell"
	}
	if o.capacity == 0 {
		o.capacity = 1
	}
	r := &runnerProc{workDir: o.workDir}
	if r.workDir == "" {
		r.workDir = t.TempDir()
	}
	// Jobs of the shell executor are process groups of their own, which a
	// SIGKILLed runner leaves behind: end them too, before the temporary
	// directories go.
	t.Cleanup(func() {
		killProcessesIn(r.workDir)
		// A killed runner's workspaces stay mounted; the directory cannot
		// be removed through them.
		if err := workspace.RemoveAll(context.Background(), filepath.Join(r.workDir, "ws")); err != nil {
			t.Errorf("removing the runner's workspaces: %v", err)
		}
	})
	o.proc.env = append(o.proc.env, "DELTACI_REGISTRATION_TOKEN="+registrationToken)
	args := []string{"runner", "--server", s.url(), "--work-dir", r.workDir, "--executor", o.executor,
		"--capacity", strconv.Itoa(o.capacity), "--grace", "1s", "--drain-timeout", "5s"}
	r.proc = startProc(t, "runner", o.proc, append(args, o.workspacesFlag()...)...)
	rec := r.waitRecord(t, "runner ready", 0)
	r.id, _ = rec["runner_id"].(string)
	if r.id == "" {
		t.Fatalf("runner ready without a runner_id: %v", rec)
	}
	return r
}

// session returns a client acting as the runner r, with a session token
// from its credential: what a runner that lost its lease still holds.
func (r *runnerProc) session(t *testing.T, s *server) *protocol.Client {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.workDir, runner.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	var id runner.Identity
	if err := json.Unmarshal(b, &id); err != nil {
		t.Fatal(err)
	}
	sess, err := s.api.Session(t.Context(), protocol.SessionRequest{RunnerID: id.RunnerID, Credential: id.Credential, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatalf("session of runner %s: %v", id.RunnerID, err)
	}
	return &protocol.Client{BaseURL: s.url(), Token: func(context.Context) (string, error) { return sess.Token, nil }}
}

// processesIn returns the pids of the processes whose working directory
// is under dir (or was, if it has been removed since).
func processesIn(dir string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cwd, err := os.Readlink(filepath.Join(p, "cwd"))
		if err != nil || (cwd != dir && !strings.HasPrefix(cwd, dir+"/")) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil || pid == os.Getpid() {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// workspaces is the method of the runner's workspaces, from its log.
func (r *runnerProc) workspaces(t *testing.T) string {
	t.Helper()
	rec := r.waitRecord(t, "workspaces", 0)
	m, _ := rec["method"].(string)
	return m
}

// killProcessesIn SIGKILLs every process whose working directory is under
// dir, and returns their pids.
func killProcessesIn(dir string) []int {
	var killed []int
	for _, pid := range processesIn(dir) {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	return killed
}

// apiError returns the HTTP answer inside err, or fails.
func apiError(t *testing.T, what string, err error) *protocol.APIError {
	t.Helper()
	var ae *protocol.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("%s: want an HTTP error answer, got %v", what, err)
	}
	return ae
}

// gate is a file jobs wait for, so a test decides when they go on.
type gate string

func newGate(t *testing.T) gate { return gate(filepath.Join(t.TempDir(), "gate")) }

// wait is the shell that waits for the gate (a minute at most, so a
// failed test leaves nothing running for long).
func (g gate) wait() string {
	return fmt.Sprintf(`i=0; while [ ! -e '%s' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done`, string(g))
}

func (g gate) open(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(string(g), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestArtifactsThroughServerWithToken: `deltaci artifacts --server` reaches
// the store of a server that requires its API token only with the token.
func TestArtifactsThroughServerWithToken(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{env: []string{"DELTACI_API_TOKEN=s3cret-token"}})
	store := srv.url() + "/store"
	dir := t.TempDir()
	if r := deltaci(t, dir, "artifacts", "--server", store, "ls"); r.code == 0 || !strings.Contains(r.stderr, "API token") {
		t.Fatalf("without the token: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	write(t, dir, "out/a.txt", "hello\n")
	if r := deltaci(t, dir, "artifacts", "--server", store, "--api-token", "s3cret-token", "push", "out", "--ref", "outputs/x:1"); r.code != 0 {
		t.Fatalf("push with the token: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	cmd := command(dir, "artifacts", "--server", store, "ls", "outputs")
	cmd.Env = append(cmd.Env, "ARTIFACTSTORE_TOKEN=s3cret-token")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "outputs/x:1") {
		t.Fatalf("ls with the token from the environment: %v\n%s", err, out)
	}
}

// TestRunnersListAndRemove: `deltaci runners ls` shows a registered
// runner, `deltaci runners rm` removes it, and its credential is refused.
func TestRunnersListAndRemove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := startServer(t, serverOpts{env: []string{"DELTACI_API_TOKEN=s3cret-token"}})
	reg, err := srv.api.Register(ctx, registrationToken, protocol.RegisterRequest{Name: "old-box", Labels: []string{"linux"}, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	flags := []string{"--server", srv.url(), "--api-token", "s3cret-token"}
	if r := deltaci(t, dir, append([]string{"runners", "ls"}, flags...)...); r.code != 0 ||
		!strings.Contains(r.stdout, reg.RunnerID) || !strings.Contains(r.stdout, "old-box") || !strings.Contains(r.stdout, "idle") {
		t.Fatalf("ls: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := deltaci(t, dir, "runners", "ls", "--server", srv.url()); r.code == 0 {
		t.Fatalf("ls without the API token: exit 0\n%s", r.stdout)
	}
	if r := deltaci(t, dir, append([]string{"runners", "rm", reg.RunnerID}, flags...)...); r.code != 0 {
		t.Fatalf("rm: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := deltaci(t, dir, append([]string{"runners", "ls", "--json"}, flags...)...); r.code != 0 || strings.Contains(r.stdout, reg.RunnerID) {
		t.Fatalf("ls after rm: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := deltaci(t, dir, append([]string{"runners", "rm", reg.RunnerID}, flags...)...); r.code == 0 || !strings.Contains(r.stderr, reg.RunnerID) {
		t.Fatalf("rm of a removed runner: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	_, err = srv.api.Session(ctx, protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version})
	if core.KindOf(err) != core.KindUnauthorized {
		t.Fatalf("session of a removed runner: %v", err)
	}
}

// TestSigningKeyRotation: a server restarted with a new --signing-key and
// the old one as --verify-key still takes the tokens the old key signed;
// once the old key is dropped, they are refused.
func TestSigningKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := startServer(t, serverOpts{})
	reg, err := srv.api.Register(ctx, registrationToken, protocol.RegisterRequest{Name: "box", ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := srv.api.Session(ctx, protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	lease := func() error {
		c := &protocol.Client{BaseURL: srv.url(), Token: func(context.Context) (string, error) { return sess.Token, nil }}
		_, err := c.Lease(ctx, time.Second)
		return err
	}
	if err := lease(); err != nil {
		t.Fatalf("lease with the first key: %v", err)
	}
	oldKey := filepath.Join(srv.dataDir, "signing.key")
	newKey := filepath.Join(t.TempDir(), "next.key")
	if err := os.WriteFile(newKey, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.kill(t)
	srv.env = []string{"DELTACI_SIGNING_KEY=" + newKey, "DELTACI_VERIFY_KEY=" + oldKey}
	srv.restart(t)
	if err := lease(); err != nil {
		t.Fatalf("lease with a token of the old key, accepted: %v", err)
	}
	srv.kill(t)
	srv.env = []string{"DELTACI_SIGNING_KEY=" + newKey}
	srv.restart(t)
	if err := lease(); core.KindOf(err) != core.KindUnauthorized {
		t.Fatalf("lease with a token of the dropped key: %v, want unauthorized", err)
	}
}
