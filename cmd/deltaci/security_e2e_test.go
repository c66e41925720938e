package main_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/treehash"
)

// These tests attack the server as docs/security.md's actors would:
// someone who can push a branch, or anyone who can reach the server.

// TestForeignCommitUnderMainIsUntrusted: a run asked for main, but at the
// commit of another branch, is untrusted and gets no secrets; so is a
// manual run of an unprotected branch.
func TestForeignCommitUnderMainIsUntrusted(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{env: []string{"DELTACI_SECRET_TOKEN=main-only-secret"}})
	srv.startRunner(t, runnerOpts{})
	dir := repo(t, map[string]string{".deltaci.yml": `version: 1
jobs:
  leak:
    secrets: [TOKEN]
    run: echo "token=${TOKEN:-none}"
`})
	git(t, dir, "checkout", "-q", "-b", "evil")
	write(t, dir, "evil.txt", "pushed by anyone\n")
	git(t, dir, "add", "evil.txt")
	git(t, dir, "commit", "-q", "-m", "evil")
	evil := strings.TrimSpace(git(t, dir, "rev-parse", "HEAD"))
	git(t, dir, "checkout", "-q", "main")
	name := srv.project(t, dir, "--secrets", "TOKEN")

	run, err := srv.api.CreateRun(t.Context(), protocol.CreateRunRequest{Project: name, Ref: "main", Commit: evil})
	if err != nil {
		t.Fatal(err)
	}
	if run.Trusted || run.Commit != evil || !strings.Contains(run.TrustReason, "not on protected branch main") {
		t.Fatalf("a foreign commit under ref main: trusted=%v commit=%s reason %q", run.Trusted, run.Commit, run.TrustReason)
	}
	run = srv.waitRunEnds(t, run.ID)
	log := string(sealedLog(t, srv, *lastAttempt(job(t, run, "leak"))))
	if strings.Contains(log, "main-only-secret") || !strings.Contains(log, "token=none") {
		t.Fatalf("the untrusted run got the secret:\n%s", log)
	}
	got, err := srv.api.Run(t.Context(), run.ID)
	if err != nil || got.TrustReason != run.TrustReason {
		t.Fatalf("GET /runs/%s does not show why it is untrusted: %q, %v", run.ID, got.TrustReason, err)
	}

	manual, err := srv.api.CreateRun(t.Context(), protocol.CreateRunRequest{Project: name, Ref: "evil", Event: core.EventManual})
	if err != nil {
		t.Fatal(err)
	}
	if manual.Trusted || !strings.Contains(manual.TrustReason, "not protected") {
		t.Fatalf("a manual run of an unprotected branch: trusted=%v, reason %q", manual.Trusted, manual.TrustReason)
	}

	// The same request for main's own tip is trusted, and says why.
	tip := srv.createRun(t, dir, "main")
	if !tip.Trusted || !strings.Contains(tip.TrustReason, "at its tip") {
		t.Fatalf("main at its tip: trusted=%v, reason %q", tip.Trusted, tip.TrustReason)
	}
	tipRun := srv.waitRunEnds(t, tip.ID)
	if log := string(sealedLog(t, srv, *lastAttempt(job(t, tipRun, "leak")))); !strings.Contains(log, "token=***") {
		t.Fatalf("the trusted run did not get its (masked) secret:\n%s", log)
	}
}

// TestUnregisteredRepositoryIsRefused: the server makes no run for a
// repository nobody registered, whatever the ref.
func TestUnregisteredRepositoryIsRefused(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	dir := repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  a:\n    run: 'true'\n"})
	_, err := srv.api.CreateRun(t.Context(), protocol.CreateRunRequest{Repo: dir, Ref: "main"})
	if core.KindOf(err) != core.KindNotFound || !strings.Contains(err.Error(), "not a registered project") {
		t.Fatalf("a run of an unregistered repository: %v", err)
	}
	var n int
	if err := srv.db(t).QueryRow("SELECT count(*) FROM runs").Scan(&n); err != nil || n != 0 {
		t.Fatalf("runs after the refusal: %d (%v)", n, err)
	}
	// Nor can a project be registered with a transport that runs commands
	// or reads the server's descriptors.
	for _, url := range []string{"ext::sh%20-c%20id", "fd::3"} {
		add := command(dir, "projects", "add", "evil", "--server", srv.url(), "--repo", url)
		add.Env = childEnv(srv.userEnv()...)
		if out, err := add.CombinedOutput(); err == nil || !strings.Contains(string(out), "not allowed") {
			t.Fatalf("projects add with %s: %v\n%s", url, err, out)
		}
	}
}

// TestHungFetchDelaysOnlyItsProject: one project's repository accepts the
// connection and never answers; another project's run is made while the
// first is still stuck, and the stuck one ends at the fetch timeout.
func TestHungFetchDelaysOnlyItsProject(t *testing.T) {
	t.Parallel()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			accepted <- c
		}
	}()
	srv := startServer(t, serverOpts{extraArgs: []string{"--fetch-timeout", "20s"}})
	hungURL := "git://" + silent.Addr().String() + "/mono.git"
	add := command("", "projects", "add", "hung", "--server", srv.url(), "--repo", hungURL)
	add.Env = childEnv(srv.userEnv()...)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("projects add: %v\n%s", err, out)
	}
	hung := make(chan error, 1)
	go func() {
		_, err := srv.api.CreateRun(context.WithoutCancel(t.Context()), protocol.CreateRunRequest{Project: "hung", Ref: "main"})
		hung <- err
	}()
	select {
	case <-accepted:
	case err := <-hung:
		t.Fatalf("the hung project's run returned before its fetch connected: %v", err)
	case <-time.After(waitLong):
		t.Fatal("the server never connected to the silent repository")
	}

	dir := repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  a:\n    run: 'true'\n"})
	run := srv.createRun(t, dir, "main")
	select {
	case err := <-hung:
		t.Fatalf("the hung fetch ended (%v) before the other project's run was made: nothing was shown", err)
	default:
	}
	if run.State == "" {
		t.Fatalf("the other project's run: %+v", run)
	}
	select {
	case err := <-hung:
		if core.KindOf(err) != core.KindUnavailable || !strings.Contains(err.Error(), "fetch timeout") {
			t.Fatalf("the hung project's run: %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("the hung fetch outlived its timeout")
	}
}

// TestServerMakesFirstAdminToken: a server started without an API token
// makes one, prints it once, keeps only its hash, and refuses requests
// without it; a restart prints none.
func TestServerMakesFirstAdminToken(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{noAPIToken: true})
	tokRE := regexp.MustCompile(`(?m)^\s+(dci_[A-Za-z0-9_-]{40,})$`)
	var tok string
	eventually(t, "the server prints its first admin token", func() bool {
		if m := tokRE.FindStringSubmatch(srv.stderr.String()); m != nil {
			tok = m[1]
		}
		return tok != ""
	})
	anon := &protocol.Client{BaseURL: srv.url()}
	if _, err := anon.Projects(t.Context()); core.KindOf(err) != core.KindUnauthorized {
		t.Fatalf("GET /projects without a token: %v", err)
	}
	wrong := &protocol.Client{BaseURL: srv.url(), Token: func(context.Context) (string, error) { return tok + "x", nil }}
	if _, err := wrong.Projects(t.Context()); core.KindOf(err) != core.KindUnauthorized {
		t.Fatalf("GET /projects with a wrong token: %v", err)
	}
	srv.apiToken = tok
	if _, err := srv.api.Projects(t.Context()); err != nil {
		t.Fatalf("GET /projects with the printed token: %v", err)
	}
	for _, f := range []string{"state.db", "state.db-wal"} {
		if b, err := os.ReadFile(filepath.Join(srv.dataDir, f)); err == nil && strings.Contains(string(b), tok) {
			t.Errorf("%s holds the token itself", f)
		}
	}
	if strings.Contains(srv.stdout.String(), tok) {
		t.Error("the token is in the server's log")
	}
	// Health and metrics stay open to probes and scrapers.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/openapi.yaml"} {
		resp, err := http.Get(srv.url() + p)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %v %v", p, resp.Status, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
	srv.kill(t)
	srv.restart(t)
	if n := len(tokRE.FindAllString(srv.stderr.String(), -1)); n != 0 {
		t.Errorf("the restarted server printed %d new tokens", n)
	}
	if _, err := srv.api.Projects(t.Context()); err != nil {
		t.Fatalf("the first token after a restart: %v", err)
	}
}

// TestInsecureNoAuthNeedsLoopback: the development switch refuses an
// address other machines can reach.
func TestInsecureNoAuthNeedsLoopback(t *testing.T) {
	t.Parallel()
	r := deltaci(t, t.TempDir(), "server", "--insecure-no-auth", "--listen", "0.0.0.0:0", "--data-dir", t.TempDir())
	if r.code != 2 || !strings.Contains(r.stderr, "loopback") {
		t.Fatalf("server --insecure-no-auth --listen 0.0.0.0:0: exit %d\n%s", r.code, r.stderr)
	}
}

// TestRunnerEndpointsAreRateLimited: guessing registration tokens from one
// address is slowed to a few tries a second, and every failure is logged
// with the address and counted.
func TestRunnerEndpointsAreRateLimited(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := &protocol.Client{BaseURL: srv.url()}
	var limited error
	for i := range 200 {
		_, err := c.Register(t.Context(), fmt.Sprintf("guess-%d", i), protocol.RegisterRequest{Name: "x", ProtocolVersion: protocol.Version})
		var ae *protocol.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests {
			limited = err
			break
		}
		if core.KindOf(err) != core.KindUnauthorized {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if limited == nil {
		t.Fatal("200 wrong registration tokens from one address were all answered")
	}
	failures := 0
	for _, r := range srv.records() {
		if r["msg"] == "authentication failed" && r["endpoint"] == "register" && r["remote_addr"] == "127.0.0.1" {
			failures++
		}
	}
	if failures == 0 {
		t.Error("no refused registration was logged with its address")
	}
	resp, err := http.Get(srv.url() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		for _, m := range []string{`deltaci_auth_failures_total{endpoint="register"}`, `deltaci_rate_limited_total{endpoint="register"}`} {
			if strings.HasPrefix(sc.Text(), m+" ") && !strings.HasSuffix(sc.Text(), " 0") {
				seen[m] = true
			}
		}
	}
	if len(seen) != 2 {
		t.Errorf("metrics do not count the failures and refusals: %v", seen)
	}
}

// TestRestoreRefusesSymlinkOutOfWorkspace: a branch commits dist as a link
// to a directory outside the workspace; one job replaces the link with real
// directories and outputs dist/mirrors/evil/HEAD. Restoring those outputs
// into the next job's fresh checkout, where dist is the link again, is
// refused, and the directory outside stays byte-identical.
func TestRestoreRefusesSymlinkOutOfWorkspace(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	write(t, outside, "mirrors/keep", "the runner's own files\n")
	before := treehash.Of(t, outside)
	srv := startServer(t, serverOpts{})
	srv.startRunner(t, runnerOpts{})
	dir := repo(t, map[string]string{".deltaci.yml": `version: 1
jobs:
  make:
    run: rm dist && mkdir -p dist/mirrors/evil && echo planted > dist/mirrors/evil/HEAD
    outputs: ["dist/**"]
  use:
    needs: [make]
    run: echo restored
`})
	if err := os.Symlink(outside, filepath.Join(dir, "dist")); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", "dist")
	git(t, dir, "commit", "-q", "-m", "dist is a link")

	run := srv.waitRunEnds(t, srv.createRun(t, dir, "main").ID)
	if j := job(t, run, "make"); j.State != string(core.JobSucceeded) {
		t.Fatalf("make: %s", describeRun(&run))
	}
	use := job(t, run, "use")
	a := lastAttempt(use)
	log := string(sealedLog(t, srv, *a))
	if use.State == string(core.JobSucceeded) || a.Reason != string(core.ReasonInfraError) || !strings.Contains(log, `symlink "dist"`) {
		t.Errorf("use: %s (%s), log:\n%s", use.State, a.Reason, log)
	}
	if after := treehash.Of(t, outside); after != before {
		t.Error("restoring outputs changed the directory the committed link points at")
	}
}

// TestUntrustedBranchCannotReachServer is the cache-poisoning attack: a job
// of an untrusted branch, with network (its project allows it), tries the
// server on loopback and a listener on the runner host's own address.
// Neither answers, and the next run of main reuses nothing the branch ran.
func TestUntrustedBranchCannotReachServer(t *testing.T) {
	t.Parallel()
	for _, bin := range []string{"bwrap", "pasta"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required under CI=true", bin)
			}
			t.Skipf("!!! SKIPPING the network attack: %s is not installed", bin)
		}
	}
	probe := buildProbe(t)
	host := hostAddress(t)
	var accepted atomic.Int32
	hostLn, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hostLn.Close() })
	go func() {
		for {
			c, err := hostLn.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	srv := startServer(t, serverOpts{executor: "sandbox"})
	srv.startRunner(t, runnerOpts{executor: "sandbox"})
	build := `  build:
    run: cat src/a.txt
    inputs: ["src/**"]
`
	dir := repo(t, map[string]string{"src/a.txt": "good\n", ".deltaci.yml": "version: 1\njobs:\n" + build})
	git(t, dir, "checkout", "-q", "-b", "evil")
	write(t, dir, "probe", string(probe))
	write(t, dir, ".deltaci.yml", "version: 1\njobs:\n"+build+fmt.Sprintf(`  attack:
    sandbox: {network: true}
    run: |
      chmod +x probe
      ./probe connect %[1]s
      ./probe connect %[2]s
      # The stack's gateway stands for the host: it must not lead there.
      for gw in $(./probe gateways); do ./probe connect "$gw:%[3]s"; echo "gateway $gw tried"; done
`, srv.addr, hostLn.Addr(), portOf(srv.addr)))
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "attack")
	git(t, dir, "checkout", "-q", "main")
	srv.project(t, dir, "--untrusted-network")

	evil := srv.waitRunEnds(t, srv.createRun(t, dir, "evil").ID)
	if evil.Trusted {
		t.Fatal("the attacker's branch is trusted")
	}
	attack := job(t, evil, "attack")
	log := string(sealedLog(t, srv, *lastAttempt(attack)))
	tries := 2 + strings.Count(log, "gateway ")
	if attack.State != string(core.JobSucceeded) || strings.Count(log, "connect failed") != tries || strings.Contains(log, "CONNECTED") || tries < 3 {
		t.Errorf("attack: %s; the job reached the host:\n%s", attack.State, log)
	}
	if strings.Contains(log, "no network") {
		t.Errorf("the job got no network at all, so this shows nothing about the stack:\n%s", log)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the host's own address accepted %d connections from the job", n)
	}
	if j := job(t, evil, "build"); j.State != string(core.JobSucceeded) {
		t.Fatalf("build on the branch: %s", describeRun(&evil))
	}

	main := srv.waitRunEnds(t, srv.createRun(t, dir, "main").ID)
	if b := job(t, main, "build"); b.State != string(core.JobSucceeded) || b.ReusedFrom != "" || len(b.Attempts) == 0 {
		t.Errorf("main's build reused what the untrusted branch recorded: %+v", b)
	}
}

// hostAddress is a non-loopback address of this machine, where a job that
// shared the host's network would find its listeners.
func hostAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address to attack")
	return ""
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// TestBracketBombRefused: 100,000 nested '[' in an env value (200 KB) are
// refused with a positioned error by deltaci plan and by the server, whose
// memory grows by less than 100 MiB meanwhile.
func TestBracketBombRefused(t *testing.T) {
	t.Parallel()
	bomb := "version: 1\njobs:\n  a:\n    run: 'true'\n    env:\n      X: " + strings.Repeat("[", 100_000) + "\n"
	dir := repo(t, map[string]string{".deltaci.yml": bomb})
	r := deltaci(t, dir, "plan")
	if r.code != 2 || !regexp.MustCompile(`\.deltaci\.yml:6:\d+`).MatchString(r.stderr) || !strings.Contains(r.stderr, "nest") {
		t.Fatalf("deltaci plan of the bomb: exit %d\n%s", r.code, r.stderr)
	}

	srv := startServer(t, serverOpts{})
	before := procStatus(t, srv.cmd.Process.Pid, "VmRSS")
	_, err := srv.api.CreateRun(t.Context(), protocol.CreateRunRequest{Project: srv.project(t, dir), Ref: "main"})
	if core.KindOf(err) != core.KindInvalid || !strings.Contains(err.Error(), "nest") {
		t.Fatalf("POST /runs with the bomb: %v", err)
	}
	if _, err := http.Get(srv.url() + "/healthz"); err != nil {
		t.Fatalf("the server died of the bomb: %v", err)
	}
	peak := procStatus(t, srv.cmd.Process.Pid, "VmHWM")
	if grew := peak - before; grew > 100<<20 {
		t.Errorf("the server's memory grew by %d MiB", grew>>20)
	}
}

// procStatus reads a kB field of /proc/<pid>/status, in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("/proc/%d/status has no %s", pid, field)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n << 10
}

// TestWrappedSecretsAreMasked: a trusted job prints a 100-byte secret as
// base64 wraps it (76 columns, and 64 as openssl and PEM do) and as hex in
// both cases; no line of any of those reaches the stored log.
func TestWrappedSecretsAreMasked(t *testing.T) {
	t.Parallel()
	long := (rand.Text() + rand.Text() + rand.Text() + rand.Text())[:100]
	srv := startServer(t, serverOpts{env: []string{"DELTACI_SECRET_LONG=" + long}})
	srv.startRunner(t, runnerOpts{})
	dir := repo(t, map[string]string{".deltaci.yml": `version: 1
jobs:
  leak:
    secrets: [LONG]
    run: |
      printf %s "$LONG" | base64
      printf %s "$LONG" | base64 -w 64
      printf %s "$LONG" | od -An -v -tx1 | tr -d ' \n'; echo
      printf %s "$LONG" | od -An -v -tx1 | tr -d ' \n' | tr a-f A-F; echo
      echo end of leak
`})
	srv.project(t, dir, "--secrets", "LONG")
	run := srv.waitRunEnds(t, srv.createRun(t, dir, "main").ID)
	leak := job(t, run, "leak")
	log := string(sealedLog(t, srv, *lastAttempt(leak)))
	if leak.State != string(core.JobSucceeded) || !strings.Contains(log, "end of leak") {
		t.Fatalf("leak: %s\n%s", leak.State, log)
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(long))
	var lines []string
	for _, width := range []int{76, 64} {
		for s := b64; s != ""; {
			n := min(width, len(s))
			lines = append(lines, s[:n])
			s = s[n:]
		}
	}
	lines = append(lines, hex.EncodeToString([]byte(long)), strings.ToUpper(hex.EncodeToString([]byte(long))))
	for _, l := range lines {
		if len(l) >= 12 && strings.Contains(log, l) {
			t.Errorf("the log holds %q, an encoding of the secret:\n%s", l, log)
		}
	}
	if strings.Contains(log, long) {
		t.Errorf("the log holds the secret itself")
	}
}
