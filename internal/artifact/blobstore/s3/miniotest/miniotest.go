// Package miniotest runs a throwaway MinIO server on a loopback port for
// the tests of S3 code, so that they talk to a real S3 implementation
// rather than a mock.
//
// The server binary is not a Go dependency of the project; CI installs it
// with
//
//	go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
//
// Without it, tests are skipped with one loud line, or fail when CI=true.
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"go/build"
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

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// InstallHint is the command that installs the server binary.
const InstallHint = "go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

// ErrNoBinary is returned by Start when no minio executable is found.
var ErrNoBinary = errors.New("minio binary not found on PATH nor in GOBIN or GOPATH/bin")

const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
	bucket       = "test"
)

// Server is a running MinIO server with one empty bucket.
type Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:<port>.
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per server.
	AccessKey string
	SecretKey string
	// Bucket exists when Start returns.
	Bucket string

	dir    string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been reaped
}

// Binary returns the path of the minio executable: from PATH, else from
// GOBIN, else from the first GOPATH's bin directory.
func Binary() (string, error) {
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if gopath := filepath.SplitList(build.Default.GOPATH); len(gopath) > 0 {
		dirs = append(dirs, filepath.Join(gopath[0], "bin"))
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, "minio")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrNoBinary
}

// Start starts a server in a new temporary directory, waits until it is
// ready and creates Server.Bucket. It returns ErrNoBinary when minio is not
// installed. The caller must Stop the server.
func Start(ctx context.Context) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	// The free ports are found by binding and releasing them, so another
	// process may take one in between; a second attempt gets new ports.
	for attempt := 1; ; attempt++ {
		s, err := start(ctx, bin)
		if err == nil || attempt == 3 || ctx.Err() != nil {
			return s, err
		}
	}
}

func start(ctx context.Context, bin string) (_ *Server, err error) {
	dir, err := os.MkdirTemp("", "miniotest-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://127.0.0.1:" + ports[0],
		AccessKey: "test-" + randomHex(6),
		SecretKey: randomHex(16),
		Bucket:    bucket,
		dir:       dir,
		exited:    make(chan struct{}),
	}
	logf, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	s.cmd = exec.Command(bin, "server", filepath.Join(dir, "data"),
		"--address", "127.0.0.1:"+ports[0],
		"--console-address", "127.0.0.1:"+ports[1],
		"--certs-dir", filepath.Join(dir, "certs"),
		"--quiet")
	s.cmd.Env = append(environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\nminio log:\n%s", err, s.logTail())
			s.Stop()
		}
	}()
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	if err := s.makeBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// environ is the test's environment without MINIO_ variables, which
// would reconfigure the server.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}
	return env
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]string, error) {
	var ports []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		// Held open until all are chosen, so that they differ.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		_, port, _ := net.SplitHostPort(l.Addr().String())
		ports = append(ports, port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// waitReady polls the liveness endpoint until it answers 200, the process
// exits or the time is up.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/minio/health/live", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("minio exited during startup: %v", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("minio not ready after %s: %w", readyTimeout, ctx.Err())
		case <-tick.C:
		}
	}
}

func (s *Server) makeBucket(ctx context.Context) error {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c, err := minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
		Creds:     credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Transport: tr,
	})
	if err != nil {
		return err
	}
	return c.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{})
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "minio.log"))
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(bytes.TrimSpace(b))
}

// Stop terminates the server, killing it if it does not exit in time, and
// removes its directory.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	_ = os.RemoveAll(s.dir)
}

// TestingM is what TestMain's *testing.M offers, and what
// goleak.VerifyTestMain accepts.
type TestingM interface{ Run() int }

// Shared is one Server for a whole test binary, started by the first test
// that asks for it. The zero value is ready to use.
type Shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Server returns the shared server, starting it on first use. Without the
// minio binary it skips t after printing one loud line, or fails t when
// CI=true; a server that fails to start fails t.
func (sh *Shared) Server(t testing.TB) *Server {
	t.Helper()
	sh.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*readyTimeout)
		defer cancel()
		sh.srv, sh.err = Start(ctx)
		if errors.Is(sh.err, ErrNoBinary) && os.Getenv("CI") != "true" {
			fmt.Fprintf(os.Stderr, "!!! %v: S3 tests SKIPPED (install: %s) !!!\n", sh.err, InstallHint)
		}
	})
	switch {
	case errors.Is(sh.err, ErrNoBinary) && os.Getenv("CI") == "true":
		t.Fatalf("MinIO is required under CI=true: %v (install: %s)", sh.err, InstallHint)
	case errors.Is(sh.err, ErrNoBinary):
		t.Skip("minio binary not installed")
	case sh.err != nil:
		t.Fatalf("start MinIO: %v", sh.err)
	}
	return sh.srv
}

// StopAfter returns m with a Run that also stops the shared server, so
// that TestMain can read goleak.VerifyTestMain(shared.StopAfter(m)) and the
// leak check runs after the server is gone.
func (sh *Shared) StopAfter(m TestingM) TestingM {
	return stopAfter{m: m, sh: sh}
}

type stopAfter struct {
	m  TestingM
	sh *Shared
}

func (s stopAfter) Run() int {
	code := s.m.Run()
	if s.sh.srv != nil {
		s.sh.srv.Stop()
	}
	return code
}
