package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/sqlite"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, openStore)
}

func TestLogs(t *testing.T) {
	t.Parallel()
	storetest.RunLogs(t, openStore)
}

func TestRunners(t *testing.T) {
	t.Parallel()
	storetest.RunRunners(t, openStore)
}

func TestRunHistory(t *testing.T) {
	t.Parallel()
	storetest.RunHistory(t, openStore)
}

func TestProjects(t *testing.T) {
	t.Parallel()
	storetest.RunProjects(t, openStore)
}

func TestErroredRuns(t *testing.T) {
	t.Parallel()
	storetest.RunErrored(t, openStore)
}

func TestForgesConformance(t *testing.T) {
	storetest.RunForges(t, openStore)
}

func TestDeliveryMakesOneRun(t *testing.T) {
	storetest.RunDeliveryRuns(t, openStore)
}

func TestWebAuth(t *testing.T) {
	t.Parallel()
	storetest.RunWebAuth(t, openStore)
}

func TestMoveLeased(t *testing.T) {
	t.Parallel()
	storetest.RunMoveLeased(t, openStore)
}

// openStore is the conformance suites' Opener: a fresh, migrated store.
func openStore(t *testing.T, now func() time.Time) *store.Store {
	drv, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(drv, store.WithClock(now))
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAnalysisConformance(t *testing.T) {
	t.Parallel()
	storetest.RunAnalysis(t, openStore)
}

func TestCaches(t *testing.T) {
	t.Parallel()
	storetest.RunCaches(t, openStore)
}
