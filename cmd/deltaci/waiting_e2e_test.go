package main_test

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestWaitingForARunner: a server that plans for the sandbox executor and
// only a shell runner. The run's job says it waits, and why, in GET
// /runs/{id} and in trigger --follow within 5 s of the run's creation; the
// creation warns that no runner has the label; the server logs it once.
func TestWaitingForARunner(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  build:\n    run: echo built\n"})
	srv := startServer(t, serverOpts{executor: "sandbox"})
	r := srv.startRunner(t, runnerOpts{executor: "shell"})
	srv.project(t, dir)
	runners, err := srv.api.Runners(t.Context())
	if err != nil || len(runners) != 1 || runners[0].ID != r.id {
		t.Fatalf("runners = %+v, %v", runners, err)
	}
	want := "no live runner has executor:sandbox; live runners: " + runners[0].Name + " [executor:shell]"

	trig := startProc(t, "trigger", procOpts{env: srv.userEnv()},
		"trigger", "--server", srv.url(), "--repo", dir, "--ref", "main", "--follow")
	runID := triggeredRun(t, trig)
	// The follower says why the job waits soon after the run exists.
	deadline := time.Now().Add(5 * time.Second)
	line := "deltaci: build waits: " + want
	for !strings.Contains(trig.stdout.String()+trig.stderr.String(), line) {
		if time.Now().After(deadline) || trig.exited() {
			t.Fatalf("trigger --follow did not print %q within 5 s of the run's creation:\nstdout:\n%s\nstderr:\n%s",
				line, trig.stdout.String(), trig.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(trig.stdout.String()+trig.stderr.String(), line); n != 1 {
		t.Errorf("trigger --follow printed the waiting reason %d times", n)
	}
	if !strings.Contains(trig.stderr.String(), "deltaci: warning: job build needs a runner with executor:sandbox, and no registered runner has executor:sandbox") {
		t.Errorf("trigger did not warn at creation:\n%s", trig.stderr.String())
	}

	run, err := srv.api.Run(t.Context(), runID)
	if err != nil {
		t.Fatal(err)
	}
	if j := job(t, run, "build"); j.Waiting != want || j.State != "queued" || run.State != "running" {
		t.Errorf("GET /runs/%s: run %s, build %s waiting %q; want waiting %q", runID, run.State, j.State, j.Waiting, want)
	}
	// Read again: still logged once.
	if _, err := srv.api.Run(t.Context(), runID); err != nil {
		t.Fatal(err)
	}
	var logged []map[string]any
	for _, rec := range srv.records() {
		if rec["msg"] == "job waits for a runner" {
			logged = append(logged, rec)
		}
	}
	if len(logged) != 1 || logged[0]["level"] != "WARN" || logged[0]["run_id"] != runID || logged[0]["job"] != "build" || logged[0]["reason"] != want {
		t.Errorf("the server logged the wait %d times: %v", len(logged), logged)
	}
	trig.kill(t)
}

// TestErroredRunOnServer: a .deltaci.yml that does not parse at the
// commit still makes a run, errored with the positioned message; trigger
// prints the run id, says the error once and exits 2.
func TestErroredRunOnServer(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  build:\n    run: echo built\n    tmeout: 5m\n"})
	srv := startServer(t, serverOpts{})
	srv.project(t, dir)

	cmd := command(dir, "trigger", "--server", srv.url(), "--repo", dir, "--ref", "main")
	cmd.Env = childEnv(srv.userEnv()...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("trigger of a broken pipeline exited %d (%v), want 2:\n%s\n%s", code, err, stdout.String(), stderr.String())
	}
	runID := strings.TrimSpace(stdout.String())
	if !uuidRE.MatchString(runID) {
		t.Fatalf("trigger printed %q, not the errored run's id; stderr:\n%s", stdout.String(), stderr.String())
	}
	positioned := regexp.MustCompile(`\.deltaci\.yml@[0-9a-f]{12}:5:5: unknown key "tmeout"`)
	if n := len(positioned.FindAllString(stderr.String(), -1)); n != 1 {
		t.Errorf("trigger said the error %d times, want once:\n%s", n, stderr.String())
	}

	run, err := srv.api.Run(t.Context(), runID)
	if err != nil {
		t.Fatal(err)
	}
	if run.State != "errored" || run.Reason != "config_error" || !positioned.MatchString(run.Message) || len(run.Jobs) != 0 {
		t.Errorf("run = %s %s %q, %d jobs", run.State, run.Reason, run.Message, len(run.Jobs))
	}
	logged := 0
	for _, rec := range srv.records() {
		if rec["msg"] == "run errored" && rec["run_id"] == runID && rec["level"] == "WARN" {
			logged++
		}
	}
	if logged != 1 {
		t.Errorf("the server logged the errored run %d times", logged)
	}
}
