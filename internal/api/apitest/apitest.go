// Package apitest starts a Delta CI server inside a test's process, wired
// as `deltaci server` wires it (store, artifact store under /store,
// LISTEN and the leader on PostgreSQL), on a real loopback listener.
package apitest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/postgres"
	"github.com/deltaci/deltaci/internal/store/sqlite"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

// Engines are the store engines a server test runs on.
var Engines = []string{"SQLite", "PostgreSQL"}

// RegistrationToken is the registration token of the servers Start makes,
// and APIToken their admin API token.
const (
	RegistrationToken = "reg"
	APIToken          = "api-token"
)

// Options say how to build the server.
type Options struct {
	// Engine is "SQLite" (the default) or "PostgreSQL" (a fresh schema).
	Engine string
	// StoreOptions are applied to the store (a log cap, a clock).
	StoreOptions []store.Option
	// Edit changes the configuration before the server is built.
	Edit func(*api.Config)
}

// Server is a running server; the test's cleanup stops it.
type Server struct {
	URL    string
	API    *api.Server
	Store  *store.Store
	Config api.Config
	// Database is what the store and the artifact store opened: an SQLite
	// file or a PostgreSQL URL.
	Database string
	HTTP     *httptest.Server
}

// Start builds the server, serves it and stops it when the test ends. By
// default it plans for the shell executor, does not rate-limit runners
// and logs nothing.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	keys, err := auth.NewKeyset(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.Config{
		Keys: keys, RegistrationToken: RegistrationToken, APIToken: APIToken, Executor: "shell",
		// Tests register many runners from one address at once.
		AuthBurst: 10000,
		Mirrors:   gitx.Mirrors{Dir: filepath.Join(dir, "mirrors")}, Log: slog.New(slog.DiscardHandler),
	}
	s := &Server{}
	switch o.Engine {
	case "", "SQLite":
		s.Database = filepath.Join(dir, "state.db")
		drv, err := sqlite.Open(ctx, s.Database, true)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Store = store.New(drv, o.StoreOptions...)
		t.Cleanup(func() { cfg.Store.Close() })
	case "PostgreSQL":
		s.Database = storetest.PostgresURL(t)
		drv, err := postgres.Open(ctx, s.Database, true)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Store = store.New(drv, o.StoreOptions...)
		t.Cleanup(func() { cfg.Store.Close() })
		// Registered after the store's close, so it runs before it: the
		// pool waits for the leader's connection.
		leader := drv.NewLeader("reaper")
		t.Cleanup(func() { _ = leader.Resign(context.Background()) })
		cfg.Wake, cfg.Leader = drv.Listen, leader
	default:
		t.Fatalf("unknown engine %q", o.Engine)
	}
	arts, err := open.Open(ctx, open.Config{Database: s.Database, Store: filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { arts.Close() })
	cfg.Registry = arts.Registry
	cfg.StoreAPI = httpapi.New(httpapi.Options{Registry: arts.Registry})
	if o.Edit != nil {
		o.Edit(&cfg)
	}
	srv := api.New(cfg)
	srv.Start(ctx)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.Drain(); hs.Close(); srv.Stop() })
	s.URL, s.API, s.Store, s.Config, s.HTTP = hs.URL, srv, cfg.Store, cfg, hs
	return s
}

// User is a client of the run API with the admin API token.
func (s *Server) User() *protocol.Client {
	return &protocol.Client{BaseURL: s.URL, Token: func(context.Context) (string, error) { return APIToken, nil }}
}

// AddProject registers repo as a project whose main branch is protected,
// named after the repository's directory, with edits applied, and returns
// it.
func (s *Server) AddProject(t testing.TB, repo string, edits ...func(*core.Project)) core.Project {
	t.Helper()
	name := strings.ToLower(filepath.Base(repo))
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, name)
	p := core.Project{Name: strings.TrimLeft(name, "._-") + "-" + store.NewID()[24:], RepoURL: repo, Protected: []string{"main"}}
	for _, e := range edits {
		e(&p)
	}
	p, err := s.Store.CreateProject(context.Background(), p)
	if err != nil {
		t.Fatalf("registering %s as a project: %v", repo, err)
	}
	return p
}

// LeasedRunner is a registered shell runner holding a lease.
type LeasedRunner struct {
	// Client acts as the runner, with its session token.
	Client   *protocol.Client
	RunnerID string
	Session  string // the session token
	Repo     string // the project's repository
	Lease    *protocol.Lease
}

// Leased runs the pipeline of files as a project's run, registers a shell
// runner and leases the run's first attempt.
func (s *Server) Leased(t testing.TB, files map[string]string) LeasedRunner {
	t.Helper()
	ctx := context.Background()
	lr := LeasedRunner{Repo: gittest.Repo(t, files)}
	p := s.AddProject(t, lr.Repo)
	if _, err := s.User().CreateRun(ctx, protocol.CreateRunRequest{Project: p.Name}); err != nil {
		t.Fatal(err)
	}
	lr.Client = &protocol.Client{BaseURL: s.URL}
	reg, err := lr.Client.Register(ctx, RegistrationToken, protocol.RegisterRequest{Name: "test", Labels: []string{api.ExecutorLabel("shell")}, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	lr.RunnerID = reg.RunnerID
	sess, err := lr.Client.Session(ctx, protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	lr.Session = sess.Token
	lr.Client.Token = func(context.Context) (string, error) { return sess.Token, nil }
	if lr.Lease, err = lr.Client.Lease(ctx, time.Second); err != nil || lr.Lease == nil {
		t.Fatalf("lease: %v, %v", lr.Lease, err)
	}
	return lr
}
