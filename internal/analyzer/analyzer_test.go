package analyzer_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deltaci/deltaci/internal/analysis"
	"github.com/deltaci/deltaci/internal/analyzer"
	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/orchestrator"
	"github.com/deltaci/deltaci/internal/results"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type bundle struct {
	ctx  context.Context
	st   *store.Store
	orch *orchestrator.Orchestrator
	arts *open.Store
	az   *analyzer.Analyzer
}

func setup(t *testing.T, lim analysis.Limits) bundle {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	drv, err := sqlite.Open(ctx, db, true)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(drv)
	t.Cleanup(func() { st.Close() })
	arts, err := open.Open(ctx, open.Config{Database: db, Store: filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { arts.Close() })
	orch := orchestrator.New(st, slog.New(slog.DiscardHandler), orchestrator.NewNotifier())
	az := &analyzer.Analyzer{Store: st, Registry: arts.Registry, Settler: orch, Settings: analyzer.Settings{Limits: lim}}
	return bundle{ctx: ctx, st: st, orch: orch, arts: arts, az: az}
}

// failedAttempt runs a one-job run whose attempt writes log and ends
// failed with exit code 1.
func (b bundle) failedAttempt(t *testing.T, spec core.JobSpec, log string) (core.Attempt, core.Job) {
	t.Helper()
	run, _, err := b.st.CreateRun(b.ctx, "test", store.NewRun{Repo: "/repo", Ref: "main", Commit: "abc", Event: core.EventManual,
		Jobs: []store.NewJob{{Spec: spec, Digest: "sha256:d"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.orch.StartRun(b.ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	a, j, err := b.orch.Lease(b.ctx, run.ID, "runner", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
	if err := b.orch.StartAttempt(b.ctx, "runner", core.Attempt{}, f); err != nil {
		t.Fatal(err)
	}
	if log != "" {
		if _, err := b.st.AppendLog(b.ctx, f, 0, []byte(log)); err != nil {
			t.Fatal(err)
		}
	}
	one := 1
	if err := b.orch.CompleteAttempt(b.ctx, "runner", core.Attempt{}, f, orchestrator.Outcome{State: core.AttemptFailed, Reason: core.ReasonExitCode, ExitCode: &one}); err != nil {
		t.Fatal(err)
	}
	if a, err = b.st.Attempt(b.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	return a, j
}

func (b bundle) analyzeNext(t *testing.T, attemptID string) core.Analysis {
	t.Helper()
	ok, err := b.az.Next(b.ctx)
	if err != nil || !ok {
		t.Fatalf("Next = %v, %v", ok, err)
	}
	an, err := b.st.Analysis(b.ctx, attemptID)
	if err != nil {
		t.Fatal(err)
	}
	return an
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const junitReport = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="calc" tests="2">
<testcase classname="calc" name="TestAdd"/>
<testcase classname="calc" name="TestDivide"><failure message="got 1, want 2">calc_test.go:9: got 1, want 2</failure></testcase>
</testsuite></testsuites>
`

const goTestReport = `{"Action":"run","Package":"ex/p","Test":"TestRound"}
{"Action":"output","Package":"ex/p","Test":"TestRound","Output":"    round_test.go:4: got 0.3\n"}
{"Action":"fail","Package":"ex/p","Test":"TestRound","Elapsed":0.01}
`

// TestAnalyzeReportsWithinLimits stores an attempt's report files as a
// runner does, one of them over the per-file limit and one malformed, and
// analyzes it: the failing tests of both formats, the refused and the
// malformed file as problems, class test.
func TestAnalyzeReportsWithinLimits(t *testing.T) {
	t.Parallel()
	lim := analysis.DefaultLimits()
	lim.MaxFileBytes = 4096
	b := setup(t, lim)
	spec := core.JobSpec{Name: "unit", Run: "make test", Timeout: time.Minute, Reuse: true,
		Reports: map[string][]string{"junit": {"reports/*.xml"}, "gotest": {"t.json"}}}
	a, j := b.failedAttempt(t, spec, "FAIL\n")
	ws := t.TempDir()
	writeFiles(t, ws, map[string]string{
		"reports/a.xml":   junitReport,
		"reports/bad.xml": "<testsuite><testcase name='x'>",
		"reports/big.xml": strings.Repeat(" ", 5000),
		"t.json":          goTestReport,
		"other.txt":       "not a report",
	})
	res := &results.Store{Reg: b.arts.Registry, Actor: "test"}
	refused, err := res.SaveReports(b.ctx, a, j, ws, lim)
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 1 || !strings.Contains(refused[0], "reports/big.xml: 5000 bytes, over the limit of 4096 bytes per report file") {
		t.Fatalf("refused = %q", refused)
	}
	an := b.analyzeNext(t, a.ID)
	var ids []string
	for _, f := range an.Failures {
		ids = append(ids, f.ID)
	}
	if strings.Join(ids, " ") != "calc::TestDivide ex/p::TestRound" || an.Class != "test" || an.Reports != 2 {
		t.Fatalf("analysis = %+v", an)
	}
	if f := an.Failures[0]; f.Message != "got 1, want 2" || f.Signature != analysis.Signature("calc::TestDivide", "got 1, want 2") {
		t.Errorf("TestDivide = %+v", f)
	}
	if an.Totals != (core.TestTotals{Passed: 1, Failed: 2}) || an.Excerpt != nil {
		t.Errorf("totals = %+v, excerpt = %+v (none wanted: the reports name the failures)", an.Totals, an.Excerpt)
	}
	problems := strings.Join(an.Problems, "\n")
	if !strings.Contains(problems, "not uploaded by the runner: reports/big.xml") || !strings.Contains(problems, "reports/bad.xml: malformed report") {
		t.Errorf("problems = %q", an.Problems)
	}
	// The job, without retry.flaky, ended with its attempt; the queue is empty.
	if ok, err := b.az.Next(b.ctx); ok || err != nil {
		t.Errorf("a second Next = %v, %v", ok, err)
	}
}

// TestAnalyzeLogWithoutReport analyzes a failed attempt that has no report
// from its log, still in the database's chunks: the excerpt's offsets
// point at the compiler error in the raw log, class build.
func TestAnalyzeLogWithoutReport(t *testing.T) {
	t.Parallel()
	b := setup(t, analysis.Limits{})
	log := "\x1b[1mbuilding\x1b[0m\nok  \tex/a\nmain.go:3:2: undefined: foo\nexit status 1\n"
	a, _ := b.failedAttempt(t, core.JobSpec{Name: "build", Run: "go build", Timeout: time.Minute, Reuse: true}, log)
	an := b.analyzeNext(t, a.ID)
	ex := an.Excerpt
	if an.Class != "build" || ex == nil || ex.ErrorLine != 3 {
		t.Fatalf("analysis = %+v, excerpt %+v", an, ex)
	}
	if got := log[ex.ErrorStart:ex.ErrorEnd]; !strings.HasPrefix(got, "main.go:3:2: undefined: foo") {
		t.Errorf("the error's offsets hold %q", got)
	}
	if strings.Contains(ex.Text, "\x1b") || int(ex.End) > len(log) || ex.Start != 0 {
		t.Errorf("excerpt = %+v", ex)
	}
	view, err := analyzer.RunView(b.ctx, b.st, a.RunID)
	if err != nil || len(view.Jobs) != 1 || view.Jobs[0].Class != "build" || view.Pending != 0 {
		t.Errorf("RunView = %+v, %v", view, err)
	}
}

// TestFormatOf checks which format a report path is read as.
func TestFormatOf(t *testing.T) {
	t.Parallel()
	reports := map[string][]string{"junit": {"out/**/*.xml", "both.txt"}, "gotest": {"*.json", "both.txt"}}
	for path, want := range map[string]analysis.Format{"out/a/b.xml": analysis.FormatJUnit, "t.json": analysis.FormatGoTest, "both.txt": analysis.FormatJUnit, "x.xml": ""} {
		got, ok := analyzer.FormatOf(reports, path)
		if got != want || ok != (want != "") {
			t.Errorf("FormatOf(%q) = %q, %v; want %q", path, got, ok, want)
		}
	}
}
