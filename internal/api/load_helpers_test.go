package api_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the checks

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/sqlitepool"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/postgres"
	"github.com/deltaci/deltaci/internal/store/sqlite"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

// storeEngines are the store storeEngines a server test runs on.
var storeEngines = []string{"SQLite", "PostgreSQL"}

// liveServer is a server built in this process as `deltaci server` builds
// it, on a real loopback listener.
type liveServer struct {
	URL   string
	Store *store.Store
	// DB reads the engine's tables directly, for checks below the API.
	DB *sql.DB
	// User calls the run API; HTTP is for runner clients, with room for
	// one kept connection per runner.
	User *protocol.Client
	HTTP *http.Client
}

const liveRegToken = "reg"

// startLiveServer builds a server on engine (one of storeEngines) with a fresh
// database, serves it and stops it when the test ends. A PostgreSQL test
// is skipped when no server is reachable (see storetest.PostgresURL).
func startLiveServer(t *testing.T, engine string) *liveServer {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	cfg := api.Config{
		Keys: liveKeyset(t), RegistrationToken: liveRegToken, Executor: "shell",
		Mirrors: gitx.Mirrors{Dir: filepath.Join(dir, "mirrors")}, Log: slog.New(slog.DiscardHandler),
	}
	ls := &liveServer{}
	// database is what the artifact store opens too, as the server does.
	var database string
	switch engine {
	case "SQLite":
		database = filepath.Join(dir, "state.db")
		drv, err := sqlite.Open(ctx, database, true)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Store = store.New(drv)
		t.Cleanup(func() { cfg.Store.Close() })
		if ls.DB, err = sqlitepool.OpenReaders(database); err != nil {
			t.Fatal(err)
		}
	case "PostgreSQL":
		database = storetest.PostgresURL(t)
		drv, err := postgres.Open(ctx, database, true)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Store = store.New(drv)
		t.Cleanup(func() { cfg.Store.Close() })
		leader := drv.NewLeader("reaper")
		t.Cleanup(func() { _ = leader.Resign(context.Background()) })
		cfg.Wake, cfg.Leader = drv.Listen, leader
		if ls.DB, err = sql.Open("pgx", database); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown engine %q", engine)
	}
	t.Cleanup(func() { ls.DB.Close() })
	arts, err := open.Open(ctx, open.Config{Database: database, Store: filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { arts.Close() })
	cfg.Registry = arts.Registry
	cfg.StoreAPI = httpapi.New(httpapi.Options{Registry: arts.Registry})

	srv := api.New(cfg)
	srv.Start(context.Background())
	hs := httptest.NewServer(srv.Handler())
	// The default transport keeps two idle connections per host; many
	// runners would then reconnect for nearly every request.
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	t.Cleanup(func() { srv.Drain(); tr.CloseIdleConnections(); hs.Close(); srv.Stop() })
	ls.URL, ls.Store, ls.HTTP = hs.URL, cfg.Store, &http.Client{Transport: tr}
	ls.User = &protocol.Client{BaseURL: hs.URL, HTTP: ls.HTTP}
	return ls
}

func liveKeyset(t *testing.T) *auth.Keyset {
	t.Helper()
	keys, err := auth.NewKeyset(nil)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// registeredRunner is a runner's client, registered with labels and
// holding a session.
func (ls *liveServer) registeredRunner(t *testing.T, name string, labels ...string) (*protocol.Client, string) {
	t.Helper()
	c := &protocol.Client{BaseURL: ls.URL, HTTP: ls.HTTP}
	reg, err := c.Register(t.Context(), liveRegToken, protocol.RegisterRequest{Name: name, Labels: labels, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.Session(t.Context(), protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatal(err)
	}
	// Sessions last 15 minutes, longer than any test.
	c.Token = func(context.Context) (string, error) { return sess.Token, nil }
	return c, reg.RunnerID
}

// independentJobs returns a .deltaci.yml of n independent jobs j0000… running
// script.
func independentJobs(n int, script string) string {
	var b strings.Builder
	b.WriteString("version: 1\njobs:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  j%04d:\n    run: %q\n", i, script)
	}
	return b.String()
}

// liveRepo makes a repository with the files committed on main.
func liveRepo(t *testing.T, files map[string]string) string { return gittest.Repo(t, files) }

func liveGit(t *testing.T, dir string, args ...string) { gittest.Git(t, dir, args...) }

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
