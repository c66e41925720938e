// Command bench is Delta CI's benchmark harness. Every figure is printed
// next to a baseline measured in the same run on the same machine, with
// their ratio and the goal, and all of them are written to
// bench/results/latest.json. Run it with "make bench".
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one measured figure and its baseline.
type Result struct {
	Name          string  `json:"name"`
	Value         float64 `json:"value"`
	Unit          string  `json:"unit"`
	Baseline      string  `json:"baseline,omitempty"`
	BaselineValue float64 `json:"baseline_value,omitempty"`
	Ratio         float64 `json:"ratio,omitempty"`
	Goal          string  `json:"goal"`
	Met           bool    `json:"met"`
	Note          string  `json:"note,omitempty"`
	// Skipped says why the figure could not be measured on this machine.
	Skipped string `json:"skipped,omitempty"`
}

type suite struct {
	name string
	run  func(ctx context.Context, h *harness) ([]Result, error)
}

var suites = []suite{
	{"artifact-upload", benchUpload},
	{"artifact-rss", benchRSS},
	{"artifact-find-missing", benchFindMissing},
	{"artifact-replay", benchReplay},
	{"artifact-gc", benchGC},
	{"artifact-scrub", benchScrub},
	{"planner", benchPlanner},
	{"reused-run", benchReusedRun},
	{"workspaces", benchWorkspaces},
	{"server-pickup", benchPickup},
	{"server-throughput", benchThroughput},
	{"log-shipping", benchLogShipping},
	{"trigger-follow", benchFollow},
	{"forge", benchForge},
	{"analysis", benchAnalysis},
	{"ui", benchUI},
	{"cache", benchCache},
}

// harness holds what the suites share.
type harness struct {
	dir   string // scratch space, removed at the end
	quick bool   // smaller sizes, for a smoke run
	bin   map[string]string
}

func main() {
	out := flag.String("out", "bench/results/latest.json", "where to write the results")
	only := flag.String("only", "", "comma-separated suites to run (default all): "+suiteNames())
	quick := flag.Bool("quick", false, "small sizes: checks the harness works, figures are not meaningful")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dir, err := os.MkdirTemp("", "deltaci-bench-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	h := &harness{dir: dir, quick: *quick, bin: map[string]string{}}
	var all []Result
	for _, s := range suites {
		if *only != "" && !contains(strings.Split(*only, ","), s.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", s.name)
		start := time.Now()
		rs, err := s.run(ctx, h)
		if err != nil {
			fail(fmt.Errorf("%s: %w", s.name, err))
		}
		fmt.Fprintf(os.Stderr, "   done in %s\n", time.Since(start).Round(time.Millisecond))
		all = append(all, rs...)
	}
	print(all)
	report := map[string]any{
		"when": time.Now().UTC().Format(time.RFC3339), "go": runtime.Version(), "cpus": runtime.NumCPU(),
		"quick": *quick, "results": all,
	}
	b, _ := json.MarshalIndent(report, "", "  ")
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		fail(err)
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		fail(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
}

func print(rs []Result) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tVALUE\tBASELINE\tRATIO\tGOAL\tMET")
	for _, r := range rs {
		if r.Skipped != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\tskipped\n", r.Name, r.Goal)
			continue
		}
		base, ratio := "-", "-"
		if r.Baseline != "" {
			base = fmt.Sprintf("%s: %.4g", r.Baseline, r.BaselineValue)
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		met := "yes"
		if !r.Met {
			met = "NO"
		}
		fmt.Fprintf(tw, "%s\t%.4g %s\t%s\t%s\t%s\t%s\n", r.Name, r.Value, r.Unit, base, ratio, r.Goal, met)
	}
	tw.Flush()
	for _, r := range rs {
		if r.Skipped != "" {
			fmt.Printf("skipped: %s: %s\n", r.Name, r.Skipped)
		}
		if r.Note != "" {
			fmt.Printf("note: %s: %s\n", r.Name, r.Note)
		}
	}
}

func suiteNames() string {
	var n []string
	for _, s := range suites {
		n = append(n, s.name)
	}
	return strings.Join(n, ", ")
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if strings.TrimSpace(y) == x {
			return true
		}
	}
	return false
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
