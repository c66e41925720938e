package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// analysisPipeline has a job whose tests fail, which declares a report
// it never writes.
const analysisPipeline = `version: 1
jobs:
  unit:
    run: go test ./...
    reports: {gotest: [test.json]}
`

// testContractAnalysis drives the Failure Analyzer's three operations: a
// failed attempt whose runner shipped a log and no report is analyzed
// from its log (class, excerpt with byte offsets, the missing report as a
// problem), the run's analysis lists it, and the project's flaky list is
// read; unknown ids, missing tokens and bad queries are refused.
func testContractAnalysis(t *testing.T, cov *contractCoverage, engine string) {
	e := newContractEnv(t, contractOptions{engine: engine, apiToken: contractAPIToken, cov: cov})
	ctx, bad := t.Context(), contractUnchecked(t.Context())
	e.addProject(ctx, contractProject{Name: "analysis", RepoURL: contractRepo(t, map[string]string{".deltaci.yml": analysisPipeline}), ProtectedBranches: []string{"main"}})
	run := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Project: "analysis", Ref: "main"})
	runner := newHistoryRunner(t, e)

	var l protocol.Lease
	e.expect(ctx, http.StatusOK, "POST", "/api/v1/runner/lease", contractHeader(runner.token, "Content-Type", "application/json"),
		[]byte(`{"wait_seconds":0}`)).decode(t, &l)
	if got := l.Reports["gotest"]; len(got) != 1 || got[0] != "test.json" {
		t.Fatalf("the lease's reports = %v, want the job's gotest globs", l.Reports)
	}
	at := "/api/v1/attempts/" + l.AttemptID
	e.json(ctx, http.StatusNoContent, "POST", at+"/start", runner.token, protocol.Fenced{LeaseToken: l.LeaseToken})
	// Not ended: nothing to analyze yet.
	r := e.json(ctx, http.StatusNotFound, "GET", at+"/analysis", contractAPIToken, nil)
	if d := r.errorDetail(t); !strings.Contains(d.Message, "running") {
		t.Errorf("analysis of a running attempt: %+v", d)
	}
	logText := "ok  \texample.com/a\t0.1s\n--- FAIL: TestDivide (0.00s)\n    calc_test.go:9: got 1, want 2\nFAIL\nFAIL\texample.com/calc\t0.2s\n"
	e.expect(ctx, http.StatusOK, "PUT", at+"/log?offset=0",
		contractHeader(l.JobToken, protocol.LeaseTokenHeader, l.LeaseToken, "Content-Type", "application/octet-stream"), []byte(logText))
	one := 1
	e.json(ctx, http.StatusOK, "POST", at+"/complete", runner.token,
		protocol.CompleteRequest{LeaseToken: l.LeaseToken, State: core.AttemptFailed, Reason: core.ReasonExitCode, ExitCode: &one})

	// The analysis follows the end within moments: poll with a deadline.
	var an core.Analysis
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := e.try(ctx, "GET", at+"/analysis", contractHeader(contractAPIToken), nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.status == http.StatusOK {
			r.decode(t, &an)
			break
		}
		if r.status != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("attempt analysis = %d %s", r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond) // polling a state another goroutine makes
	}
	if an.State != core.AttemptFailed || an.Class != "test" || an.Job != "unit" || an.Number != 1 {
		t.Errorf("analysis = %+v, want a failed attempt of unit, class test", an)
	}
	ex := an.Excerpt
	if ex == nil || !strings.Contains(ex.Error, "--- FAIL: TestDivide") || ex.ErrorLine != 2 {
		t.Fatalf("excerpt = %+v, want the FAIL line (line 2)", ex)
	}
	if got := logText[ex.ErrorStart:ex.ErrorEnd]; !strings.HasPrefix(got, "--- FAIL: TestDivide") {
		t.Errorf("the error's byte offsets hold %q", got)
	}
	if len(an.Problems) != 1 || !strings.Contains(an.Problems[0], "no report file") {
		t.Errorf("problems = %q, want the missing report", an.Problems)
	}

	var view protocol.RunAnalysis
	e.json(ctx, http.StatusOK, "GET", "/api/v1/runs/"+run.ID+"/analysis", contractAPIToken, nil).decode(t, &view)
	if view.RunID != run.ID || view.Pending != 0 || len(view.Jobs) != 1 {
		t.Fatalf("run analysis = %+v", view)
	}
	if j := view.Jobs[0]; j.Job != "unit" || j.AttemptID != l.AttemptID || j.Class != "test" || j.Excerpt == nil || j.State != string(core.JobFailed) {
		t.Errorf("the job's analysis = %+v", j)
	}
	e.json(ctx, http.StatusUnauthorized, "GET", "/api/v1/runs/"+run.ID+"/analysis", "", nil)
	e.json(ctx, http.StatusNotFound, "GET", "/api/v1/runs/"+store.NewID()+"/analysis", contractAPIToken, nil)
	e.json(ctx, http.StatusUnauthorized, "GET", at+"/analysis", "", nil)
	e.json(ctx, http.StatusNotFound, "GET", "/api/v1/attempts/"+store.NewID()+"/analysis", contractAPIToken, nil)

	var fl protocol.FlakyList
	e.json(ctx, http.StatusOK, "GET", "/api/v1/projects/analysis/flaky", contractAPIToken, nil).decode(t, &fl)
	if fl.Project != "analysis" || len(fl.Flaky) != 0 {
		t.Errorf("flaky = %+v, want none", fl)
	}
	e.json(ctx, http.StatusOK, "GET", "/api/v1/projects/analysis/flaky?all=true", contractAPIToken, nil)
	e.json(bad, http.StatusBadRequest, "GET", "/api/v1/projects/analysis/flaky?all=yes", contractAPIToken, nil)
	e.json(ctx, http.StatusUnauthorized, "GET", "/api/v1/projects/analysis/flaky", "", nil)
	e.json(ctx, http.StatusNotFound, "GET", "/api/v1/projects/nope/flaky", contractAPIToken, nil)
}

// TestContractAnalysis runs the analysis contract on PostgreSQL;
// TestContract runs it on SQLite.
func TestContractAnalysis(t *testing.T) {
	t.Parallel()
	testContractAnalysis(t, &contractCoverage{}, "PostgreSQL")
}
