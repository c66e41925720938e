package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
)

// userCLI runs deltaci as a user of srv, who names the server and token
// in the environment, as trigger's users may.
func userCLI(t *testing.T, srv *server, args ...string) result {
	t.Helper()
	cmd := command(t.TempDir(), args...)
	cmd.Env = childEnv(append(srv.userEnv(), "DELTACI_SERVER="+srv.url())...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		ee, ok := err.(interface{ ExitCode() int })
		if !ok {
			t.Fatalf("deltaci %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustCLI is userCLI that fails the test unless deltaci exits 0.
func mustCLI(t *testing.T, srv *server, args ...string) string {
	t.Helper()
	r := userCLI(t, srv, args...)
	if r.code != 0 {
		t.Fatalf("deltaci %s exited %d:\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// showRun reads a run with deltaci runs show --json.
func showRun(t *testing.T, srv *server, id string) protocol.Run {
	t.Helper()
	var run protocol.Run
	if err := json.Unmarshal([]byte(mustCLI(t, srv, "runs", "show", id, "--json")), &run); err != nil {
		t.Fatal(err)
	}
	return run
}

// TestRunsHistory: a run whose test fails is found with runs ls, shown
// with runs show; rerun runs test alone and reuses build and lint from
// the first run; rerun --job runs that one job; cancel stops a run no
// runner can take.
func TestRunsHistory(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, testRunsHistory)
}

func testRunsHistory(t *testing.T, database string) {
	fixed := filepath.Join(t.TempDir(), "fixed")
	dir := repo(t, map[string]string{".deltaci.yml": fmt.Sprintf(`version: 1
jobs:
  build:
    run: echo built
  test:
    needs: [build]
    run: test -e %s
  lint:
    run: echo linted
`, fixed)})
	stuck := repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  train:\n    runs-on: [gpu]\n    run: echo never\n"})
	broken := repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  a:\n    needs: [nosuch]\n    run: echo a\n"})
	srv := startServer(t, serverOpts{database: database})
	srv.startRunner(t, runnerOpts{})

	first := srv.waitRunEnds(t, srv.createRun(t, dir, "main").ID)
	if first.State != string(core.RunFailed) || job(t, first, "test").State != string(core.JobFailed) {
		t.Fatalf("the first run: %s", describeRun(&first))
	}
	project := srv.project(t, dir)

	// runs ls shows it, and its filters find it.
	out := mustCLI(t, srv, "runs", "ls")
	if !strings.HasPrefix(out, "RUN ") || !strings.Contains(out, first.ID) || !strings.Contains(out, first.Commit[:12]) ||
		!strings.Contains(out, " main ") || !strings.Contains(out, " failed ") || !strings.Contains(out, project) {
		t.Errorf("runs ls:\n%s", out)
	}
	if out := mustCLI(t, srv, "runs", "ls", "--project", project, "--state", "succeeded"); strings.Contains(out, first.ID) || !strings.Contains(out, "no runs match") {
		t.Errorf("runs ls --state succeeded shows the failed run:\n%s", out)
	}
	r := userCLI(t, srv, "runs", "ls", "--state", "bogus")
	if r.code != 2 || !strings.Contains(r.stderr, `"bogus"`) {
		t.Errorf("runs ls --state bogus exited %d: %s", r.code, r.stderr)
	}

	// runs show: the header with the trust and why, then the jobs.
	out = mustCLI(t, srv, "runs", "show", first.ID)
	for _, want := range []string{"run       " + first.ID, "state     failed (exit_code)", "trusted   yes: push of protected branch main", "JOB", "run " + first.ID + " failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("runs show lacks %q:\n%s", want, out)
		}
	}
	if rows := summary(t, out); rows["test"] != "failed|exit code 1|1" || rows["build"] != "succeeded|-|1" {
		t.Errorf("runs show's jobs = %v", rows)
	}

	// rerun --follow: test runs again, build and lint are reused.
	if err := os.WriteFile(fixed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r = userCLI(t, srv, "rerun", first.ID, "--follow")
	if r.code != 0 {
		t.Fatalf("rerun --follow exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	againID := strings.TrimSpace(strings.SplitN(r.stdout, "\n", 2)[0])
	if !strings.Contains(r.stdout, "run "+againID+" succeeded") {
		t.Errorf("rerun --follow printed:\n%s", r.stdout)
	}
	again := showRun(t, srv, againID)
	if again.RerunOf != first.ID || again.Commit != first.Commit || again.State != string(core.RunSucceeded) || !again.Trusted {
		t.Errorf("the rerun: rerun_of %q, %s", again.RerunOf, describeRun(&again))
	}
	for _, name := range []string{"build", "lint"} {
		j, orig := job(t, again, name), job(t, first, name)
		if j.State != string(core.JobReused) || len(j.Attempts) != 0 || j.ReusedFrom != orig.Attempts[0].ID {
			t.Errorf("%s in the rerun: %s from %q, %d attempts; want reused from %s", name, j.State, j.ReusedFrom, len(j.Attempts), orig.Attempts[0].ID)
		}
	}
	if j := job(t, again, "test"); j.State != string(core.JobSucceeded) || len(j.Attempts) != 1 {
		t.Errorf("test in the rerun: %s with %d attempts", j.State, len(j.Attempts))
	}
	if out := mustCLI(t, srv, "runs", "show", againID); !strings.Contains(out, "rerun of  "+first.ID) {
		t.Errorf("runs show of a rerun:\n%s", out)
	}

	// rerun --job: lint alone runs; the job that failed is left out.
	soloID := strings.TrimSpace(mustCLI(t, srv, "rerun", first.ID, "--job", "lint"))
	solo := srv.waitRunEnds(t, soloID)
	if j := job(t, solo, "lint"); j.State != string(core.JobSucceeded) || len(j.Attempts) != 1 {
		t.Errorf("lint in the rerun of lint: %s", describeRun(&solo))
	}
	if b, tst := job(t, solo, "build"), job(t, solo, "test"); b.State != string(core.JobReused) || tst.State != string(core.JobFailed) || tst.Reason != string(core.ReasonNotRerun) || len(tst.Attempts) != 0 || solo.State != string(core.RunFailed) {
		t.Errorf("the rerun of lint: %s", describeRun(&solo))
	}
	r = userCLI(t, srv, "rerun", first.ID, "--job", "nosuch")
	if r.code == 0 || !strings.Contains(r.stderr, `"nosuch"`) {
		t.Errorf("rerun --job nosuch exited %d: %s", r.code, r.stderr)
	}

	// cancel: a run that waits for a runner that never comes.
	waiting := srv.createRun(t, stuck, "main")
	r = userCLI(t, srv, "rerun", waiting.ID)
	if r.code == 0 || !strings.Contains(r.stderr, "has ended") && !strings.Contains(r.stderr, "ended") {
		t.Errorf("rerun of a running run exited %d: %s", r.code, r.stderr)
	}
	if out := mustCLI(t, srv, "cancel", waiting.ID); strings.TrimSpace(out) != "run "+waiting.ID+" canceled" {
		t.Errorf("cancel printed %q", out)
	}
	if r := userCLI(t, srv, "cancel", waiting.ID); r.code == 0 {
		t.Errorf("canceling a canceled run exited 0: %s", r.stdout)
	}

	// The history, newest first, and its JSON.
	var list protocol.RunList
	if err := json.Unmarshal([]byte(mustCLI(t, srv, "runs", "ls", "--json", "--limit", "3")), &list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range list.Runs {
		ids = append(ids, r.ID)
	}
	if want := []string{waiting.ID, soloID, againID}; strings.Join(ids, " ") != strings.Join(want, " ") || list.NextCursor == "" {
		t.Errorf("runs ls --json --limit 3 = %v (next %q), want %v and more", ids, list.NextCursor, want)
	}
	out = mustCLI(t, srv, "runs", "ls", "--project", project, "--state", "failed")
	// The rerun of lint alone is failed too: test's failure stands in it.
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[1], soloID) || !strings.HasPrefix(lines[2], first.ID) {
		t.Errorf("runs ls of failed runs:\n%s", out)
	}

	// A run that errored for its configuration: shown with its message,
	// and nothing to rerun.
	if _, err := srv.api.CreateRun(t.Context(), protocol.CreateRunRequest{Project: srv.project(t, broken), Ref: "main"}); err == nil {
		t.Fatal("a run of a broken .deltaci.yml was made")
	}
	if err := json.Unmarshal([]byte(mustCLI(t, srv, "runs", "ls", "--json", "--state", "errored")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Runs) != 1 || list.Runs[0].Project != srv.project(t, broken) {
		t.Fatalf("runs ls --state errored = %+v", list.Runs)
	}
	errored := list.Runs[0].ID
	if out := mustCLI(t, srv, "runs", "show", errored); !strings.Contains(out, "state     errored (config_error)") || !strings.Contains(out, "nosuch") {
		t.Errorf("runs show of an errored run:\n%s", out)
	}
	if r := userCLI(t, srv, "rerun", errored); r.code == 0 || !strings.Contains(r.stderr, "has no jobs") {
		t.Errorf("rerun of an errored run exited %d: %s", r.code, r.stderr)
	}
}
