package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// benchReusedRun times a `deltaci run` whose every job is reused against
// `deltaci plan` on the same repository (a feature branch with a commit
// and an uncommitted file, so that every step of a local plan happens),
// and counts the git processes each starts, through a program named git
// first in PATH that logs its arguments and runs the real git.
func benchReusedRun(ctx context.Context, h *harness) ([]Result, error) {
	bin, err := h.build(ctx, "cmd/deltaci")
	if err != nil {
		return nil, err
	}
	files, jobs, rounds := 2000, 20, 15
	if h.quick {
		files, jobs, rounds = 200, 5, 5
	}
	dir, err := reuseRepo(ctx, h, "reuse", files, jobs)
	if err != nil {
		return nil, err
	}
	deltaci := func(env []string, args ...string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir, cmd.Env = dir, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		if err != nil {
			return 0, fmt.Errorf("deltaci %s: %w\n%s", strings.Join(args, " "), err, out.String())
		}
		if len(args) == 1 && args[0] == "run" && !strings.Contains(out.String(), fmt.Sprintf("(0 to run, %d reused, 0 skipped)", jobs)) {
			return 0, fmt.Errorf("deltaci run is not fully reused:\n%s", out.String())
		}
		return time.Since(start), nil
	}
	if _, err := deltaci(os.Environ(), "run", "--no-reuse"); err != nil {
		return nil, err
	}
	var runs, plans []time.Duration
	for range rounds {
		d, err := deltaci(os.Environ(), "run")
		if err != nil {
			return nil, err
		}
		runs = append(runs, d)
		if d, err = deltaci(os.Environ(), "plan"); err != nil {
			return nil, err
		}
		plans = append(plans, d)
	}
	run, plan := medianDuration(runs), medianDuration(plans)

	env, log, err := gitLogger(h)
	if err != nil {
		return nil, err
	}
	count := func(args ...string) (int, error) {
		if err := os.Remove(log); err != nil && !os.IsNotExist(err) {
			return 0, err
		}
		if _, err := deltaci(env, args...); err != nil {
			return 0, err
		}
		b, err := os.ReadFile(log)
		return bytes.Count(b, []byte("\n")), err
	}
	runGits, err := count("run")
	if err != nil {
		return nil, err
	}
	planGits, err := count("plan")
	if err != nil {
		return nil, err
	}
	ratio := millis(run) / millis(plan)
	size := fmt.Sprintf("%d files, %d jobs", files, jobs)
	return []Result{{
		Name: "fully reused deltaci run (" + size + ")", Value: millis(run), Unit: "ms",
		Baseline: "deltaci plan ms", BaselineValue: millis(plan), Ratio: ratio,
		Goal: "ratio <= 1.5", Met: ratio <= 1.5,
		Note: fmt.Sprintf("medians of %d runs each, a feature branch with an uncommitted file", rounds),
	}, {
		Name: "git processes of a fully reused deltaci run", Value: float64(runGits), Unit: "processes",
		Baseline: "of deltaci plan", BaselineValue: float64(planGits), Ratio: float64(runGits) / float64(planGits),
		Goal: "<= 8", Met: runGits <= 8,
	}}, nil
}

// reuseRepo makes a repository of files spread over directories, with a
// pipeline of jobs each reading its own directory, on a feature branch one
// commit ahead of main, with one uncommitted file, in the harness's
// directory under name.
func reuseRepo(ctx context.Context, h *harness, name string, files, jobs int) (string, error) {
	dir := filepath.Join(h.dir, name)
	var yml strings.Builder
	yml.WriteString("version: 1\njobs:\n")
	for j := range jobs {
		fmt.Fprintf(&yml, "  j%02d:\n    run: \"true\"\n    inputs: [\"d%02d/**\", \"go.mod\"]\n", j, j)
	}
	write := func(rel, content string) error {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte(content), 0o644)
	}
	if err := write(".deltaci.yml", yml.String()); err != nil {
		return "", err
	}
	if err := write(".gitignore", ".deltaci/\n"); err != nil {
		return "", err
	}
	if err := write("go.mod", "module bench\n"); err != nil {
		return "", err
	}
	for i := range files {
		if err := write(fmt.Sprintf("d%02d/s%02d/f%05d.txt", i%jobs, i%17, i), fmt.Sprintf("file %d\n", i)); err != nil {
			return "", err
		}
	}
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "commit.gpgsign=false",
			"-c", "user.name=bench", "-c", "user.email=bench@example.com"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %v: %w\n%s", args, err, out)
		}
		return nil
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "bench"},
		{"checkout", "-q", "-b", "feature"}} {
		if err := git(args...); err != nil {
			return "", err
		}
	}
	if err := write("d00/feature.txt", "on the branch\n"); err != nil {
		return "", err
	}
	if err := git("add", "-A"); err != nil {
		return "", err
	}
	if err := git("commit", "-q", "-m", "feature"); err != nil {
		return "", err
	}
	return dir, write("d01/uncommitted.txt", "not committed\n")
}

// gitLogger writes a program named git that appends its arguments to a
// log and runs the real git, and returns an environment with it first in
// PATH, and the log's path.
func gitLogger(h *harness) ([]string, string, error) {
	real, err := exec.LookPath("git")
	if err != nil {
		return nil, "", err
	}
	bin := filepath.Join(h.dir, "git-logger")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, "", err
	}
	log := filepath.Join(h.dir, "git-calls.log")
	script := "#!/bin/sh\necho \"$*\" >> '" + log + "'\nexec '" + real + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755); err != nil {
		return nil, "", err
	}
	return append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH")), log, nil
}

func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
