package main_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
)

// goTestJSON is a shell snippet that writes t.json, a `go test -json`
// report in which the tests named in $FAILING fail and TestFine passes.
const goTestJSON = `: > t.json
for t in $FAILING; do
  printf '{"Action":"run","Package":"ex/p","Test":"%s"}\n' "$t" >> t.json
  printf '{"Action":"output","Package":"ex/p","Test":"%s","Output":"    p_test.go:7: got 1, want 2\\n"}\n' "$t" >> t.json
  printf '{"Action":"fail","Package":"ex/p","Test":"%s","Elapsed":0.01}\n' "$t" >> t.json
done
printf '{"Action":"pass","Package":"ex/p","Test":"TestFine","Elapsed":0.01}\n' >> t.json
`

// flakyPipeline's job fails TestFlaky on every other attempt, whatever
// run it is in: a counter kept outside the workspace (in marker) decides.
// Its inputs do not change, so every attempt has the same digest.
func flakyPipeline(marker string) string {
	script := `n=$(cat ` + marker + ` 2>/dev/null || echo 0)
echo $((n + 1)) > ` + marker + `
FAILING=""
if [ $((n % 2)) -eq 0 ]; then FAILING=TestFlaky; fi
` + goTestJSON + `if [ -n "$FAILING" ]; then echo "--- FAIL: TestFlaky"; exit 1; fi
`
	return "version: 1\njobs:\n  unit:\n    reuse: false\n    retry: {flaky: 1}\n    reports: {gotest: [t.json]}\n    run: |\n" + indent(script, "      ")
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = by + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// waitAnalysis waits until an attempt is analyzed and returns it.
func (s *server) waitAnalysis(t *testing.T, attemptID string) core.Analysis {
	t.Helper()
	var an core.Analysis
	eventually(t, "attempt "+attemptID+" is analyzed", func() bool {
		a, err := s.api.AttemptAnalysis(t.Context(), attemptID)
		if err != nil {
			if core.KindOf(err) != core.KindNotFound && !protocol.IsTransient(err) {
				t.Fatalf("analysis of %s: %v", attemptID, err)
			}
			return false
		}
		an = a
		return true
	})
	return an
}

// TestFlakyTestProvenByDigestAndRetried runs a job whose test fails on
// every other attempt with the same inputs: the first run fails, the
// second passes with the same digest, which proves the job and the test
// flaky with the pair as evidence; in the third run the test fails again
// and, being known flaky, earns the job a retry (retry: {flaky: 1}),
// which passes.
func TestFlakyTestProvenByDigestAndRetried(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, database string) {
		marker := filepath.Join(t.TempDir(), "count")
		dir := repo(t, map[string]string{".deltaci.yml": flakyPipeline(marker)})
		srv := startServer(t, serverOpts{database: database})
		srv.startRunner(t, runnerOpts{})
		project := srv.project(t, dir)

		first := srv.waitRunEnds(t, srv.createRun(t, dir, "main").ID)
		if first.State != string(core.RunFailed) {
			t.Fatalf("the first run %s, want failed (TestFlaky failed, not known flaky yet)", describeRun(&first))
		}
		failedAt := lastAttempt(job(t, first, "unit"))
		an := srv.waitAnalysis(t, failedAt.ID)
		if an.Class != "test" || len(an.Failures) != 1 || an.Failures[0].ID != "ex/p::TestFlaky" || an.Totals.Passed != 1 {
			t.Fatalf("the failed attempt's analysis = %+v", an)
		}

		second := srv.waitRunEnds(t, srv.createRun(t, dir, "main").ID)
		if second.State != string(core.RunSucceeded) {
			t.Fatalf("the second run %s, want succeeded", describeRun(&second))
		}
		passedAt := lastAttempt(job(t, second, "unit"))
		if a, b := job(t, first, "unit").Digest, job(t, second, "unit").Digest; a == "" || a != b {
			t.Fatalf("the runs' digests differ: %q and %q", a, b)
		}
		var fl protocol.FlakyList
		eventually(t, "the job and TestFlaky are proven flaky", func() bool {
			var err error
			if fl, err = srv.api.ProjectFlaky(t.Context(), project, false); err != nil {
				t.Fatal(err)
			}
			return len(fl.Flaky) == 2
		})
		want := core.FlakyEvidence{Failed: failedAt.ID, Passed: passedAt.ID, Digest: job(t, first, "unit").Digest}
		for _, f := range fl.Flaky {
			if f.Job != "unit" || (f.Test != "" && f.Test != "ex/p::TestFlaky") || len(f.Evidence) != 1 {
				t.Fatalf("flaky = %+v", fl.Flaky)
			}
			got := f.Evidence[0]
			got.At = want.At
			if got != want {
				t.Errorf("evidence of %q = %+v, want the pair %+v", f.Test, got, want)
			}
		}

		// Known flaky now: its failure is retried, and the retry passes.
		third := srv.waitRunEnds(t, srv.createRun(t, dir, "main").ID)
		unit := job(t, third, "unit")
		if third.State != string(core.RunSucceeded) || len(unit.Attempts) != 2 {
			t.Fatalf("the third run %s, want succeeded on a second attempt", describeRun(&third))
		}
		evs := srv.events(t)
		retried := slices.ContainsFunc(evs, func(e event) bool {
			return e.Entity == core.EntityAttempt && e.EntityID == unit.Attempts[1].ID && e.From == "" && e.Reason == string(core.ReasonFlakyRetry)
		})
		if !retried {
			t.Errorf("the retry's queued event does not say flaky_retry: %+v", evs)
		}
	})
}

// testsPipeline's job fails the tests listed in failing.txt.
const testsPipeline = `version: 1
jobs:
  unit:
    reports: {gotest: [t.json]}
    run: |
      FAILING=$(cat failing.txt)
` + "      " + `: > t.json
      for t in $FAILING; do
        printf '{"Action":"run","Package":"ex/p","Test":"%s"}\n' "$t" >> t.json
        printf '{"Action":"fail","Package":"ex/p","Test":"%s","Elapsed":0.01}\n' "$t" >> t.json
      done
      printf '{"Action":"pass","Package":"ex/p","Test":"TestFine","Elapsed":0.01}\n' >> t.json
      if [ -n "$FAILING" ]; then exit 1; fi
`

// TestNewAndExistingFailures runs main, where TestOld fails, then a
// branch from it where TestOld and TestNew fail: against the base, TestOld
// is existing and TestNew new, in the API and in deltaci why.
func TestNewAndExistingFailures(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, database string) {
		dir := repo(t, map[string]string{".deltaci.yml": testsPipeline, "failing.txt": "TestOld\n"})
		srv := startServer(t, serverOpts{database: database})
		srv.startRunner(t, runnerOpts{})
		base := srv.waitRunEnds(t, srv.createRun(t, dir, "main").ID)
		if base.State != string(core.RunFailed) {
			t.Fatalf("the base run %s, want failed", describeRun(&base))
		}
		srv.waitAnalysis(t, lastAttempt(job(t, base, "unit")).ID)

		git(t, dir, "checkout", "-q", "-b", "feature")
		write(t, dir, "failing.txt", "TestOld\nTestNew\n")
		git(t, dir, "commit", "-qam", "break TestNew")
		head := srv.waitRunEnds(t, srv.createRun(t, dir, "feature").ID)
		headAttempt := lastAttempt(job(t, head, "unit")).ID
		srv.waitAnalysis(t, headAttempt)
		view, err := srv.api.RunAnalysis(t.Context(), head.ID)
		if err != nil {
			t.Fatal(err)
		}
		if view.Base != base.Commit || len(view.Jobs) != 1 {
			t.Fatalf("run analysis = %+v, want base %s", view, base.Commit)
		}
		if view.ChangedPaths == nil || *view.ChangedPaths != 1 {
			t.Errorf("run analysis changed paths = %v, want 1 (failing.txt)", view.ChangedPaths)
		}
		j := view.Jobs[0]
		got := map[string]string{}
		for _, f := range j.Failures {
			got[f.ID] = f.Status
		}
		want := map[string]string{"ex/p::TestOld": protocol.FailureExisting, "ex/p::TestNew": protocol.FailureNew}
		if fmt.Sprint(got) != fmt.Sprint(want) || j.BaseAttempt != lastAttempt(job(t, base, "unit")).ID {
			t.Errorf("failures = %v (base attempt %s), want %v", got, j.BaseAttempt, want)
		}

		cmd := command(dir, "why", "--server", srv.url(), head.ID)
		cmd.Env = childEnv(srv.userEnv()...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("deltaci why: %v\n%s", err, out)
		}
		for _, line := range []string{"job unit: test failure", "existing  ex/p::TestOld", "new       ex/p::TestNew"} {
			if !strings.Contains(string(out), line) {
				t.Errorf("deltaci why lacks %q:\n%s", line, out)
			}
		}
	})
}

// bigReportPipeline's job fails TestBig, whose output makes a report of
// about 24 MB: parsing it takes the analyzer a moment, which the test
// uses to kill the server in the middle.
const bigReportPipeline = `version: 1
jobs:
  unit:
    reuse: false
    reports: {gotest: [t.json]}
    run: |
      { printf '{"Action":"run","Package":"ex/p","Test":"TestBig"}\n'
        yes '{"Action":"output","Package":"ex/p","Test":"TestBig","Output":"a line of the big test output\n"}' | head -n 250000
        printf '{"Action":"output","Package":"ex/p","Test":"TestBig","Output":"    big_test.go:9: got 1, want 2\\n"}\n'
        printf '{"Action":"fail","Package":"ex/p","Test":"TestBig","Elapsed":1}\n'
      } > t.json
      exit 1
`

// TestServerKilledMidAnalysisLosesNothing kills the server with SIGKILL
// while it holds the claim on an ended attempt's analysis: after a
// restart the claim lapses, the attempt is analyzed once (its signature
// counted once), and nothing of it is lost.
func TestServerKilledMidAnalysisLosesNothing(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, database string) {
		dir := repo(t, map[string]string{".deltaci.yml": bigReportPipeline})
		srv := startServer(t, serverOpts{database: database, extraArgs: []string{"--analysis-lease", "2s"}})
		srv.startRunner(t, runnerOpts{})
		db := srv.db(t)
		// A claim is held for as long as the parse takes: try a few runs
		// until the kill lands inside one.
		var killedAt string
		for try := 0; try < 10 && killedAt == ""; try++ {
			run := srv.createRun(t, dir, "main")
			run = srv.waitRun(t, run.ID, "its job ends", func(r protocol.Run) bool {
				a := lastAttempt(job(t, r, "unit"))
				return a != nil && core.AttemptState(a.State).Terminal()
			})
			id := lastAttempt(job(t, run, "unit")).ID
			for {
				var claim string
				err := db.QueryRow("SELECT claim FROM analysis_queue WHERE attempt_id = $1", id).Scan(&claim)
				if err != nil {
					break // analyzed already (no row): try another run
				}
				if claim != "" {
					srv.kill(t)
					killedAt = id
					t.Logf("killed the server while it held the claim on %s's analysis (run %d)", id, try+1)
					break
				}
			}
			if killedAt == "" {
				srv.waitRunEnds(t, run.ID)
			}
		}
		if killedAt == "" {
			t.Fatal("ten analyses ended before the test saw their claim")
		}
		srv.restart(t)
		an := srv.waitAnalysis(t, killedAt)
		if len(an.Failures) != 1 || an.Failures[0].ID != "ex/p::TestBig" || an.Failures[0].Message == "" || an.Class != "test" {
			t.Fatalf("analysis after the restart = %+v", an)
		}
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM analysis_queue WHERE attempt_id = $1", killedAt).Scan(&n); err != nil || n != 0 {
			t.Errorf("queue rows left for the attempt: %d (%v)", n, err)
		}
		if err := db.QueryRow("SELECT COUNT(*) FROM attempt_analyses WHERE attempt_id = $1", killedAt).Scan(&n); err != nil || n != 1 {
			t.Errorf("analyses of the attempt: %d (%v)", n, err)
		}
		var count, analyses int64
		if err := db.QueryRow("SELECT count FROM failure_signatures WHERE signature = $1", an.Failures[0].Signature).Scan(&count); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("SELECT COUNT(*) FROM attempt_analyses").Scan(&analyses); err != nil {
			t.Fatal(err)
		}
		if count != analyses {
			t.Errorf("the signature was counted %d times in %d analyses", count, analyses)
		}
		eventually(t, "the analysis backlog metric is back to 0", func() bool {
			m := srv.metrics(t)
			v, ok := m["deltaci_analysis_backlog"]
			_, aged := m["deltaci_analysis_oldest_seconds"]
			return ok && aged && v == 0
		})
	})
}

// TestRunPrintsWhyJobsFailed runs `deltaci run` on a repository with a
// job whose report names a failing test and a build that does not
// compile: after the table it says which test failed and where the
// build's first error is, and `deltaci why` says the same afterwards.
func TestRunPrintsWhyJobsFailed(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{
		".deltaci.yml": `version: 1
jobs:
  unit:
    reports: {gotest: [t.json]}
    run: |
      FAILING=TestDivide
` + indent(goTestJSON, "      ") + `      exit 1
  build:
    run: |
      echo compiling
      echo "main.go:3:2: undefined: foo"
      exit 2
`,
	})
	r := deltaci(t, dir, "run")
	if r.code != 1 {
		t.Fatalf("deltaci run exited %d, want 1:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	table := strings.LastIndex(r.stdout, "JOB ")
	for _, want := range []string{"job unit: test failure", "ex/p::TestDivide", "p_test.go:7: got 1, want 2",
		"job build: build failure", "first error at log line 2", "| main.go:3:2: undefined: foo"} {
		if i := strings.LastIndex(r.stdout, want); i < table {
			t.Errorf("deltaci run does not print %q after its table:\n%s", want, r.stdout)
		}
	}
	runID := regexp.MustCompile(`run ([0-9a-f-]{36}) failed`).FindStringSubmatch(r.stdout)
	if runID == nil {
		t.Fatalf("no run id in:\n%s", r.stdout)
	}
	why := deltaci(t, dir, "why", runID[1])
	if why.code != 0 || !strings.Contains(why.stdout, "ex/p::TestDivide") || !strings.Contains(why.stdout, "job build: build failure") {
		t.Errorf("deltaci why = %d:\n%s\n%s", why.code, why.stdout, why.stderr)
	}
}
