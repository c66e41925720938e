package main_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// inOrder fails unless each of lines is a whole line of out, each after
// the one before it.
func inOrder(t *testing.T, what, out string, lines ...string) {
	t.Helper()
	rest, prev := "\n"+out, "(start)"
	for _, l := range lines {
		i := strings.Index(rest, "\n"+l+"\n")
		if i < 0 {
			if strings.Contains("\n"+out, "\n"+l+"\n") {
				t.Errorf("%s: %q comes before %q, not after it:\n%s", what, l, prev, out)
			} else {
				t.Errorf("%s: no line %q:\n%s", what, l, out)
			}
			return
		}
		rest, prev = rest[i+len(l)+1:], l
	}
}

// TestFollowAndLogs: trigger --follow, run from a subdirectory of a
// checkout on a branch without --ref, prints each job's log before the
// line saying it ended, jobs in pipeline order, across a restart of the
// server; deltaci logs prints a finished run's logs and follows a running
// job's log until it ends.
func TestFollowAndLogs(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, func(t *testing.T, database string) {
		g := newGate(t)
		dir := repo(t, map[string]string{
			".deltaci.yml": fmt.Sprintf(`version: 1
jobs:
  first:
    run: echo first one && echo first two
  second:
    needs: [first]
    run: echo second one
  slow:
    needs: [second]
    run: |
      echo slow before
      %s
      echo slow after
`, g.wait()),
			"sub/deeper/keep": "x\n",
		})
		git(t, dir, "checkout", "-q", "-b", "feature")
		// Not committed: the server cannot see it, and trigger says so.
		write(t, dir, "sub/uncommitted", "y\n")
		srv := startServer(t, serverOpts{database: database})
		srv.startRunner(t, runnerOpts{})
		srv.project(t, dir)

		trig := &proc{name: "trigger", done: make(chan struct{})}
		trig.cmd = command(filepath.Join(dir, "sub", "deeper"), "trigger", "--server", srv.url(), "--repo", ".", "--follow")
		trig.cmd.Env = childEnv(srv.userEnv()...)
		trig.cmd.Stdout, trig.cmd.Stderr = &trig.stdout, &trig.stderr
		if err := trig.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			_ = trig.cmd.Wait()
			close(trig.done)
		}()
		t.Cleanup(func() {
			trig.kill(t)
			if t.Failed() {
				t.Logf("trigger stdout:\n%s\nstderr:\n%s", trig.stdout.String(), trig.stderr.String())
			}
		})
		runID := triggeredRun(t, trig)
		run, err := srv.api.Run(t.Context(), runID)
		if err != nil {
			t.Fatal(err)
		}
		if run.Ref != "feature" && run.Ref != "refs/heads/feature" {
			t.Errorf("trigger without --ref on branch feature started a run of %q", run.Ref)
		}
		if !strings.Contains(trig.stderr.String(), "warning: 1 file in "+dir+" differ") {
			t.Errorf("trigger did not warn of the uncommitted file:\n%s", trig.stderr.String())
		}

		// slow's log, followed while slow waits at the gate.
		eventually(t, "trigger prints slow's first line", func() bool {
			return strings.Contains(trig.stdout.String(), "slow   | slow before\n") || trig.exited()
		})
		lf := startProc(t, "logs", procOpts{env: srv.userEnv()}, "logs", runID, "slow", "--server", srv.url(), "--follow")
		eventually(t, "logs --follow prints slow's first line", func() bool {
			return lf.stdout.String() != "" || lf.exited()
		})
		if got := lf.stdout.String(); got != "slow before\n" || lf.exited() {
			t.Fatalf("logs --follow of a running job printed %q (exited: %v) before the job went on", got, lf.exited())
		}
		// A server restart while both follow: they reconnect and go on
		// where they stopped, printing nothing twice.
		srv.kill(t)
		srv.restart(t)
		g.open(t)
		for _, p := range []*proc{trig, lf} {
			select {
			case <-p.done:
			case <-time.After(waitLong):
				t.Fatalf("%s did not exit after the run ended", p.name)
			}
		}
		if code := lf.cmd.ProcessState.ExitCode(); code != 0 || lf.stdout.String() != "slow before\nslow after\n" {
			t.Errorf("logs --follow exited %d with %q\n%s", code, lf.stdout.String(), lf.stderr.String())
		}
		out := trig.stdout.String()
		if code := trig.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("trigger --follow exited %d\n%s", code, out)
		}
		if n := strings.Count(out, "slow   | slow before\n"); n != 1 {
			t.Errorf("trigger --follow printed slow's first line %d times across the server's restart:\n%s", n, out)
		}
		inOrder(t, "trigger --follow", out,
			"first  | first one", "first  | first two", "deltaci: first succeeded",
			"second | second one", "deltaci: second succeeded",
			"slow   | slow before", "slow   | slow after", "deltaci: slow succeeded",
			"run "+runID+" succeeded")

		logs := deltaci(t, dir, "logs", runID, "--server", srv.url(), "--api-token", srv.apiToken)
		if logs.code != 0 {
			t.Fatalf("logs exited %d\n%s", logs.code, logs.stderr)
		}
		want := "first  | first one\nfirst  | first two\nsecond | second one\nslow   | slow before\nslow   | slow after\n"
		if logs.stdout != want {
			t.Errorf("logs printed\n%s\nwant\n%s", logs.stdout, want)
		}
		one := deltaci(t, dir, "logs", runID, "second", "--server", srv.url(), "--api-token", srv.apiToken)
		if one.code != 0 || one.stdout != "second one\n" {
			t.Errorf("logs RUN second exited %d with %q\n%s", one.code, one.stdout, one.stderr)
		}
		// On a detached HEAD, the project's default branch, said on stderr.
		git(t, dir, "checkout", "-q", "--detach")
		detached := deltaci(t, filepath.Join(dir, "sub"), "trigger", "--server", srv.url(), "--api-token", srv.apiToken, "--repo", ".")
		if detached.code != 0 || !strings.Contains(detached.stderr, "HEAD is detached") || !strings.Contains(detached.stderr, "--ref") {
			t.Errorf("trigger on a detached HEAD exited %d:\n%s", detached.code, detached.stderr)
		} else if r, err := srv.api.Run(t.Context(), strings.TrimSpace(detached.stdout)); err != nil || (r.Ref != "main" && r.Ref != "refs/heads/main") {
			t.Errorf("trigger on a detached HEAD started a run of %q (%v)", r.Ref, err)
		}
		missing := deltaci(t, dir, "logs", runID, "nosuchjob", "--server", srv.url(), "--api-token", srv.apiToken)
		if missing.code != 2 || !strings.Contains(missing.stderr, `no job "nosuchjob"`) {
			t.Errorf("logs of an unknown job exited %d: %s", missing.code, missing.stderr)
		}
	})
}

// TestFollowInterrupted: Ctrl-C stops trigger --follow with 130 and says
// the run goes on, which it does.
func TestFollowInterrupted(t *testing.T) {
	t.Parallel()
	g := newGate(t)
	dir := repo(t, map[string]string{".deltaci.yml": fmt.Sprintf("version: 1\njobs:\n  slow:\n    run: |\n      echo before\n      %s\n      echo after\n", g.wait())})
	srv := startServer(t, serverOpts{})
	srv.startRunner(t, runnerOpts{})
	srv.project(t, dir)
	trig := startProc(t, "trigger", procOpts{env: srv.userEnv()}, "trigger", "--server", srv.url(), "--repo", dir, "--follow")
	eventually(t, "trigger prints slow's first line", func() bool {
		return strings.Contains(trig.stdout.String(), "slow | before\n") || trig.exited()
	})
	if err := trig.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-trig.done:
	case <-time.After(waitLong):
		t.Fatal("trigger --follow did not stop after SIGINT")
	}
	runID, _, _ := strings.Cut(trig.stdout.String(), "\n")
	if code := trig.cmd.ProcessState.ExitCode(); code != 130 || !strings.Contains(trig.stdout.String(), "stopped following; run "+runID+" goes on") {
		t.Errorf("trigger --follow after SIGINT exited %d:\n%s\n%s", code, trig.stdout.String(), trig.stderr.String())
	}
	g.open(t)
	if run := srv.waitRunEnds(t, runID); run.State != string(core.RunSucceeded) {
		t.Errorf("the run after its follower stopped: %s", describeRun(&run))
	}
}
