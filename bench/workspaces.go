package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/workspace"
)

// benchWorkspaces measures, on generated repositories of 2,500 and
// 100,000 files, what a job's workspace costs: making and removing its
// view of the run's snapshot, with each method this machine has, next to
// the job's own script run in it; and a `deltaci run` whose every job is
// reused next to `deltaci plan` on the same repository.
func benchWorkspaces(ctx context.Context, h *harness) ([]Result, error) {
	bin, err := h.build(ctx, "cmd/deltaci")
	if err != nil {
		return nil, err
	}
	type size struct {
		files, jobs, rounds, runRounds int
		goal                           float64
	}
	sizes := []size{{2500, 20, 15, 9, 50}, {100000, 20, 7, 5, 300}}
	if h.quick {
		sizes = []size{{250, 5, 3, 3, 50}, {2000, 5, 3, 3, 300}}
	}
	var out []Result
	for _, sz := range sizes {
		fmt.Fprintf(os.Stderr, "   generating a repository of %d files\n", sz.files)
		dir, err := reuseRepo(ctx, h, fmt.Sprintf("ws-%d", sz.files), sz.files, sz.jobs)
		if err != nil {
			return nil, err
		}
		rs, err := benchViews(ctx, h, dir, sz.files, sz.rounds, sz.goal)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
		r, err := benchReusedVsPlan(ctx, bin, dir, sz.files, sz.jobs, sz.runRounds)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// jobScript is the bench job: it reads its inputs (one directory of
// files) and writes a result, as a small build step does.
const jobScript = "cat d00/s00/* > /dev/null; echo built > result.txt"

// benchViews takes the repository's snapshot once, as deltaci run does,
// then times per method the workspace of one job over it (create and
// remove, median of rounds) next to the job's script run there.
func benchViews(ctx context.Context, h *harness, repo string, files, rounds int, goal float64) ([]Result, error) {
	root, err := os.MkdirTemp(h.dir, "views-")
	if err != nil {
		return nil, err
	}
	defer workspace.RemoveAll(context.WithoutCancel(ctx), root)
	snap := filepath.Join(root, "src")
	start := time.Now()
	info, err := gitx.Snapshot(ctx, repo, snap)
	if err != nil {
		return nil, err
	}
	snapTime := time.Since(start)
	shell := executor.NewShell(slog.New(slog.DiscardHandler))
	script := func(dir string) (time.Duration, error) {
		var out bytes.Buffer
		res, err := shell.Run(ctx, executor.Spec{Script: jobScript, Dir: dir, Env: []string{"PATH=" + os.Getenv("PATH")}}, &out)
		if err != nil || res.State != core.AttemptSucceeded {
			return 0, fmt.Errorf("bench job: %v %s %s", err, res.Err, out.String())
		}
		return res.Duration(), nil
	}
	var plain []time.Duration
	for range rounds {
		d, err := script(snap)
		if err != nil {
			return nil, err
		}
		plain = append(plain, d)
	}
	_ = os.Remove(filepath.Join(snap, "result.txt"))

	var out []Result
	for _, m := range []workspace.Method{workspace.MethodOverlay, workspace.MethodFuse, workspace.MethodCopy} {
		name := fmt.Sprintf("job workspace create+remove, %d files, %s", files, m)
		b, err := workspace.New(ctx, nil, m, filepath.Join(root, string(m)))
		if err != nil {
			out = append(out, Result{Name: name, Goal: fmt.Sprintf("<= %g ms", goal), Skipped: err.Error()})
			continue
		}
		n := rounds
		if m == workspace.MethodCopy && files > 10000 {
			n = 1 // seconds per round: the figure the views replace
		}
		var overhead, job []time.Duration
		for i := range n {
			t0 := time.Now()
			w, err := b.Create(ctx, snap, filepath.Join(root, string(m), fmt.Sprint(i)))
			if err != nil {
				return nil, err
			}
			made := time.Since(t0)
			d, err := script(w.Dir)
			if err != nil {
				return nil, err
			}
			t1 := time.Now()
			if err := w.Remove(ctx); err != nil {
				return nil, err
			}
			overhead = append(overhead, made+time.Since(t1))
			job = append(job, d)
		}
		o, j := medianDuration(overhead), medianDuration(job)
		out = append(out, Result{
			Name: name, Value: millis(o), Unit: "ms",
			Baseline: "the job's script in it, ms", BaselineValue: millis(j), Ratio: millis(o) / millis(j),
			Goal: fmt.Sprintf("<= %g ms", goal), Met: millis(o) <= goal,
			Note: fmt.Sprintf("medians of %d; the same script in the snapshot itself: %.3g ms; the run's one snapshot of %d files: %.4g ms",
				n, millis(medianDuration(plain)), info.Files, millis(snapTime)),
		})
	}
	return out, nil
}

// benchReusedVsPlan times `deltaci run` with every job reused against
// `deltaci plan`, taken in turns, medians of rounds.
func benchReusedVsPlan(ctx context.Context, bin, dir string, files, jobs, rounds int) (Result, error) {
	deltaci := func(args ...string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("deltaci %s: %w\n%s", strings.Join(args, " "), err, out.String())
		}
		if args[0] == "run" && len(args) == 1 && !strings.Contains(out.String(), fmt.Sprintf("(0 to run, %d reused, 0 skipped)", jobs)) {
			return 0, fmt.Errorf("deltaci run is not fully reused:\n%s", out.String())
		}
		return time.Since(start), nil
	}
	if _, err := deltaci("run", "--no-reuse"); err != nil {
		return Result{}, err
	}
	var runs, plans []time.Duration
	for range rounds {
		d, err := deltaci("run")
		if err != nil {
			return Result{}, err
		}
		runs = append(runs, d)
		if d, err = deltaci("plan"); err != nil {
			return Result{}, err
		}
		plans = append(plans, d)
	}
	run, plan := medianDuration(runs), medianDuration(plans)
	ratio := millis(run) / millis(plan)
	return Result{
		Name: fmt.Sprintf("fully reused deltaci run, %d files, %d jobs", files, jobs), Value: millis(run), Unit: "ms",
		Baseline: "deltaci plan ms", BaselineValue: millis(plan), Ratio: ratio,
		Goal: "ratio <= 1.5", Met: ratio <= 1.5,
		Note: fmt.Sprintf("medians of %d runs each, taken in turns", rounds),
	}, nil
}
