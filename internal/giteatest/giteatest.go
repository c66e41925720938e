// Package giteatest runs a throwaway Gitea on a loopback port for the
// tests of forge code, so that webhooks, commit statuses and pull requests
// come from a real Gitea rather than a mock.
//
// Gitea is not a Go dependency of the project; CI builds it once, outside
// the clone, with
//
//	.ci/gitea-build
//
// which prints the binary's path; CI exports it as DELTACI_GITEA. Without
// the binary, Start skips the test with one loud line, or fails it when
// CI=true.
package giteatest

import (
	"bytes"
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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the Gitea release .ci/gitea-build builds.
const Version = "v1.27.3"

// BuildHint is the command that builds the Gitea binary.
const BuildHint = ".ci/gitea-build"

// ErrNoBinary is returned by Binary when DELTACI_GITEA is unset and the
// build cache holds no Gitea.
var ErrNoBinary = errors.New("gitea binary not built")

const (
	readyTimeout = 120 * time.Second
	stopTimeout  = 15 * time.Second
	adminName    = "alice"
)

// Gitea is a running Gitea with one site administrator, alice.
type Gitea struct {
	// URL is the web root, http://127.0.0.1:<port>, without a trailing slash.
	URL string
	// APIURL is URL + "/api/v1".
	APIURL string
	// User and Password are the administrator's login; Token is an access
	// token of theirs with every scope.
	User     string
	Password string
	Token    string

	bin    string
	dir    string
	conf   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been reaped
	client *http.Client
}

// Binary returns the path of the gitea executable: $DELTACI_GITEA when set,
// else the one .ci/gitea-build leaves in its cache,
// ${DELTACI_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deltaci-test}/gitea-v1.27.3/gitea.
// It returns ErrNoBinary when that cache holds none.
func Binary() (string, error) {
	if p := os.Getenv("DELTACI_GITEA"); p != "" {
		if !executable(p) {
			return "", fmt.Errorf("DELTACI_GITEA=%s: not an executable file", p)
		}
		return p, nil
	}
	cache := os.Getenv("DELTACI_TEST_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("%w: no cache directory: %v", ErrNoBinary, err)
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "deltaci-test")
	}
	p := filepath.Join(cache, "gitea-"+Version, "gitea")
	if !executable(p) {
		return "", fmt.Errorf("%w: no executable %s", ErrNoBinary, p)
	}
	return p, nil
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// skipNotice makes the loud line appear once per test binary, not once per
// skipped test.
var skipNotice sync.Once

// Start starts Gitea in a new temporary directory, waits until its API
// answers, and creates the administrator and their token. The server stops
// when t ends; if t failed, the tail of Gitea's log is logged first.
//
// Without the binary it skips t after printing one loud line, or fails t
// when CI=true. Any other failure to start fails t.
func Start(t testing.TB) *Gitea {
	t.Helper()
	bin, err := Binary()
	switch {
	case errors.Is(err, ErrNoBinary) && os.Getenv("CI") == "true":
		t.Fatalf("Gitea is required under CI=true: %v (build it with %s)", err, BuildHint)
	case errors.Is(err, ErrNoBinary):
		skipNotice.Do(func() {
			fmt.Fprintf(os.Stderr, "!!! %v: Gitea tests SKIPPED (build it with %s) !!!\n", err, BuildHint)
		})
		t.Skipf("%v (build it with %s)", err, BuildHint)
	case err != nil:
		t.Fatal(err)
	}

	began := time.Now()
	// A free port is found by binding and releasing it, so another process
	// may take it in between and Gitea exits; a second attempt gets a new one.
	var g *Gitea
	for attempt := 1; ; attempt++ {
		g, err = start(t, bin)
		if err == nil {
			break
		}
		if attempt == 3 || !errors.Is(err, errExited) {
			t.Fatalf("start Gitea: %v", err)
		}
		t.Logf("start Gitea (attempt %d): %v", attempt, err)
	}
	g.createAdmin(t)
	t.Logf("Gitea %s ready at %s in %s", Version, g.URL, time.Since(began).Round(time.Millisecond))
	return g
}

// errExited is returned by start when Gitea ended before it answered.
var errExited = errors.New("gitea exited during startup")

func start(t testing.TB, bin string) (*Gitea, error) {
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	g := &Gitea{
		URL:      "http://127.0.0.1:" + port,
		User:     adminName,
		Password: randomHex(16),
		bin:      bin,
		dir:      dir,
		conf:     filepath.Join(dir, "app.ini"),
		exited:   make(chan struct{}),
		client: &http.Client{
			Timeout:   60 * time.Second,
			Transport: &http.Transport{DisableKeepAlives: true},
		},
	}
	g.APIURL = g.URL + "/api/v1"
	if err := os.WriteFile(g.conf, []byte(g.config(port)), 0o600); err != nil {
		return nil, err
	}
	console, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		return nil, err
	}
	defer console.Close() // the child has its own descriptor
	g.cmd = g.command("web")
	g.cmd.Stdout, g.cmd.Stderr = console, console
	g.cmd.SysProcAttr = sysProcAttr()
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = g.cmd.Wait()
		close(g.exited)
	}()
	if err := g.waitReady(); err != nil {
		g.stop()
		return nil, fmt.Errorf("%w\nGitea log:\n%s", err, g.logTail())
	}
	// Registered after t.TempDir, so it runs before the directory goes.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Gitea log (%s):\n%s", g.URL, g.logTail())
		}
		g.stop()
	})
	return g, nil
}

// config is app.ini for a headless Gitea that keeps everything under g.dir
// and never reaches beyond the loopback interface.
func (g *Gitea) config(port string) string {
	static := ""
	// A build without bindata (as .ci/gitea-build makes) reads templates
	// and options from the source tree it leaves beside the binary.
	if src := filepath.Join(filepath.Dir(g.bin), "src"); dirExists(filepath.Join(src, "templates")) {
		static = "STATIC_ROOT_PATH = " + src + "\n"
	}
	data := filepath.Join(g.dir, "data")
	return fmt.Sprintf(`APP_NAME = Delta CI test forge
RUN_MODE = prod
WORK_PATH = %[1]s
; Tests run as root in CI's containers, which Gitea refuses without this.
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[2]s
DOMAIN = 127.0.0.1
ROOT_URL = %[3]s/
LOCAL_ROOT_URL = %[3]s/
OFFLINE_MODE = true
DISABLE_SSH = true
START_SSH_SERVER = false
LFS_START_SERVER = false
APP_DATA_PATH = %[4]s
GRACEFUL_HAMMER_TIME = 5s
%[5]s
[database]
DB_TYPE = sqlite3
PATH = %[4]s/gitea.db
SQLITE_JOURNAL_MODE = WAL
SQLITE_TIMEOUT = 10000

[repository]
ROOT = %[1]s/repos
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = %[6]s
INTERNAL_TOKEN = %[7]s
; Webhooks go to test servers on 127.0.0.1, which the default ("external") refuses.
; Gitea 1.27 reads [webhook] ALLOWED_HOST_LIST, which defaults to this one.
ALLOWED_HOST_LIST = loopback

[oauth2]
JWT_SECRET = %[8]s

[queue]
; Deliveries leave within a fraction of a second instead of seconds.
TYPE = channel

[indexer]
ISSUE_INDEXER_TYPE = db

[service]
DISABLE_REGISTRATION = true

[session]
PROVIDER = memory

[mailer]
ENABLED = false

[log]
MODE = file
LEVEL = Info
ROOT_PATH = %[1]s/log
`, g.dir, port, g.URL, data, static, randomHex(32), randomHex(32), jwtSecret())
}

// command is gitea with args, run on g's configuration.
func (g *Gitea) command(args ...string) *exec.Cmd {
	cmd := exec.Command(g.bin, append([]string{"--work-path", g.dir, "--config", g.conf}, args...)...)
	cmd.Dir = g.dir
	cmd.Env = environ()
	return cmd
}

// environ is the test's environment without GITEA_ variables, which would
// reconfigure the server.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GITEA_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady polls the version endpoint until it answers 200, the process
// exits or the time is up.
func (g *Gitea) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.APIURL+"/version", nil)
		if err != nil {
			return err
		}
		if resp, err := g.client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-g.exited:
			return fmt.Errorf("%w: %v", errExited, g.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("gitea not ready after %s: %w", readyTimeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// createAdmin makes the site administrator with the CLI (the API needs one
// to exist) and gets their token from the API.
func (g *Gitea) createAdmin(t testing.TB) {
	t.Helper()
	cmd := g.command("admin", "user", "create", "--admin",
		"--username", g.User, "--password", g.Password, "--email", g.User+"@example.com",
		"--must-change-password=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gitea admin user create: %v\n%s", err, out)
	}
	g.Token = g.newToken(t, g.User, g.Password)
}

// stop terminates Gitea, killing it if it does not exit in time.
func (g *Gitea) stop() {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(stopTimeout):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
}

// logTail is the end of Gitea's log and of what it printed.
func (g *Gitea) logTail() string {
	var b strings.Builder
	for _, name := range []string{"console.log", filepath.Join("log", "gitea.log")} {
		data, err := os.ReadFile(filepath.Join(g.dir, name))
		if err != nil {
			continue
		}
		if len(data) > 8192 {
			data = data[len(data)-8192:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", name, bytes.TrimSpace(data))
	}
	return b.String()
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// jwtSecret is a key in the form Gitea writes itself: 32 random bytes,
// unpadded base64url. Given here, Gitea never rewrites app.ini.
func jwtSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
