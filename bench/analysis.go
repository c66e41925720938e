package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
)

// benchAnalysis runs the Failure Analyzer's Go benchmarks: the parse of a
// 50 MB JUnit file and the excerpt of a 200 MB log whose only error is at
// its end, each timed with its heap growth, next to SHA-256 of the same
// file (what sha256sum does) as the baseline.
func benchAnalysis(ctx context.Context, h *harness) ([]Result, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "NONE", "-bench", "^BenchmarkAnalysis", "-benchtime", "3x", "./internal/analysis")
	cmd.Env = os.Environ()
	if h.quick {
		cmd.Env = append(cmd.Env, "DELTACI_BENCH_QUICK=1")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("analysis benchmark: %w\n%s", err, out)
	}
	metric := func(name string) (float64, error) {
		m := regexp.MustCompile(`([0-9.]+) ` + regexp.QuoteMeta(name) + `\b`).FindSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("analysis benchmark printed no %s:\n%s", name, out)
		}
		return strconv.ParseFloat(string(m[1]), 64)
	}
	var rs []Result
	for _, c := range []struct{ what, name string }{
		{"junit", "parse of a 50 MB JUnit file"},
		{"log", "excerpt of a 200 MB log"},
	} {
		var v [4]float64
		for i, suffix := range []string{"-ms", "-cpu-ms", "-sha256-ms", "-heap-MiB"} {
			if v[i], err = metric(c.what + suffix); err != nil {
				return nil, err
			}
		}
		ms, cpu, base, heap := v[0], v[1], v[2], v[3]
		rs = append(rs, Result{
			Name: c.name, Value: ms, Unit: "ms", Baseline: "SHA-256 of the file ms", BaselineValue: base, Ratio: ms / base,
			Goal: "<= 2000 ms", Met: ms <= 2000,
			Note: fmt.Sprintf("%.0f ms of CPU (the wall time includes waiting for a CPU on a busy machine)", cpu),
		}, Result{
			Name: c.name + ", heap growth", Value: heap, Unit: "MiB", Goal: "<= 64 MiB", Met: heap <= 64,
		})
	}
	return rs, nil
}
