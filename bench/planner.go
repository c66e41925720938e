package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
)

// benchPlanner runs the planner's Go benchmark (a generated repository of
// 100,000 files in 1,000 directories, 1,000 jobs, 100 changed files), which
// times the plan and `git ls-tree -r -z HEAD` on the same repository.
func benchPlanner(ctx context.Context, h *harness) ([]Result, error) {
	times := "10x"
	if h.quick {
		times = "2x"
	}
	out, err := exec.CommandContext(ctx, "go", "test", "-run", "NONE", "-bench", "BenchmarkPlan$",
		"-benchtime", times, "./internal/planner").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("planner benchmark: %w\n%s", err, out)
	}
	metric := func(name string) (float64, error) {
		m := regexp.MustCompile(`([0-9.]+) ` + regexp.QuoteMeta(name) + `\b`).FindSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("planner benchmark printed no %s:\n%s", name, out)
		}
		return strconv.ParseFloat(string(m[1]), 64)
	}
	plan, err := metric("plan-ms")
	if err != nil {
		return nil, err
	}
	ls, err := metric("ls-tree-ms")
	if err != nil {
		return nil, err
	}
	ratio := plan / ls
	return []Result{{
		Name: "plan of 100k files, 1k jobs, 100 changed", Value: plan, Unit: "ms",
		Baseline: "git ls-tree -r -z HEAD ms", BaselineValue: ls, Ratio: ratio,
		Goal: "ratio <= 3 and <= 500 ms", Met: ratio <= 3 && plan <= 500,
	}}, nil
}
