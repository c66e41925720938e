package api_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the checks

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/sqlitepool"
	"github.com/deltaci/deltaci/internal/store"
)

// storeEngines are the store engines a server test runs on.
var storeEngines = apitest.Engines

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
	srv  *apitest.Server
}

const liveRegToken = apitest.RegistrationToken

// startLiveServer builds a server on engine (one of storeEngines) with a fresh
// database, serves it and stops it when the test ends. A PostgreSQL test
// is skipped when no server is reachable (see storetest.PostgresURL).
// edit, if given, changes the server's configuration.
func startLiveServer(t *testing.T, engine string, edit ...func(*api.Config)) *liveServer {
	t.Helper()
	o := apitest.Options{Engine: engine}
	if len(edit) > 0 {
		o.Edit = edit[0]
	}
	srv := apitest.Start(t, o)
	ls := &liveServer{URL: srv.URL, Store: srv.Store, srv: srv}
	var err error
	if engine == "PostgreSQL" {
		ls.DB, err = sql.Open("pgx", srv.Database)
	} else {
		ls.DB, err = sqlitepool.OpenReaders(srv.Database)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.DB.Close() })
	// The default transport keeps two idle connections per host; many
	// runners would then reconnect for nearly every request.
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	t.Cleanup(tr.CloseIdleConnections)
	ls.HTTP = &http.Client{Transport: tr}
	ls.User = srv.User()
	ls.User.HTTP = ls.HTTP
	return ls
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
// repo makes a git repository of files and registers it as a project.
func (ls *liveServer) repo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := gittest.Repo(t, files)
	ls.srv.AddProject(t, dir)
	return dir
}

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
