package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
)

// benchFollow runs `deltaci trigger --follow` of a one-job run against a
// `deltaci server` and a `deltaci runner` process, and compares the time
// from the run's id on the trigger's stdout (the server has created the
// run) to the trigger's exit with the server's own created → succeeded
// time for that run: the follower should learn of the end at once.
func benchFollow(ctx context.Context, h *harness) ([]Result, error) {
	reps := 15
	if h.quick {
		reps = 3
	}
	const goal = 20 * time.Millisecond
	srv, err := h.startDeltaci(ctx, "follow")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	base := "http://" + srv.addr
	runner, err := h.startShellRunner(ctx, base, "follow-runner", nil)
	if err != nil {
		return nil, err
	}
	defer runner.stop()
	bin, err := h.build(ctx, "cmd/deltaci") // built already: its path
	if err != nil {
		return nil, err
	}
	repo, err := h.gitRepo(ctx, "follow-repo", map[string]string{".deltaci.yml": jobsFile(1, "echo hello")})
	if err != nil {
		return nil, err
	}
	user := &protocol.Client{BaseURL: base, Token: apiToken}
	if err := addProject(ctx, user, repo); err != nil {
		return nil, err
	}
	var follows, servers, afters []time.Duration
	for rep := 0; rep < reps; rep++ {
		f, s, after, err := followOnce(ctx, bin, base, repo, user)
		if err != nil {
			return nil, err
		}
		follows, servers, afters = append(follows, f), append(servers, s), append(afters, after)
	}
	fol, ser, aft := percentile(follows, 0.5), percentile(servers, 0.5), percentile(afters, 0.5)
	return []Result{{
		Name: "trigger --follow of a one-job run, run id printed → exit", Value: fol, Unit: "ms",
		Baseline: "the server's created → succeeded, ms", BaselineValue: ser, Ratio: fol / ser,
		Goal: fmt.Sprintf("at most %d ms more", goal.Milliseconds()), Met: fol-ser <= float64(goal.Milliseconds()),
		Note: fmt.Sprintf("medians of %d runs; the trigger exits a median %.1f ms after the server's finished_at (times to the millisecond)", reps, aft),
	}}, nil
}

// followOnce triggers one run with --follow and returns the trigger's
// time from printing the run's id to its exit, the server's created →
// finished time for the run, and how long after finished_at it exited.
func followOnce(ctx context.Context, bin, base, repo string, user *protocol.Client) (follow, server, after time.Duration, err error) {
	cmd := exec.CommandContext(ctx, bin, "trigger", "--server", base, "--repo", repo, "--ref", "main", "--follow")
	cmd.Env = append(os.Environ(), "DELTACI_API_TOKEN="+benchAPIToken)
	cmd.Stderr = io.Discard
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	r := bufio.NewReader(stdout)
	id, err := r.ReadString('\n')
	printed := time.Now()
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, 0, 0, fmt.Errorf("trigger printed no run id: %w", err)
	}
	_, _ = io.Copy(io.Discard, r)
	err = cmd.Wait()
	exited := time.Now()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("trigger --follow: %w", err)
	}
	run, err := user.Run(ctx, id[:len(id)-1])
	if err != nil {
		return 0, 0, 0, err
	}
	if run.State != string(core.RunSucceeded) || run.FinishedAt == nil {
		return 0, 0, 0, fmt.Errorf("run %s ended %s", run.ID, run.State)
	}
	return exited.Sub(printed), run.FinishedAt.Sub(run.CreatedAt), exited.Sub(*run.FinishedAt), nil
}
