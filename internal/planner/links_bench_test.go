package planner_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/planner"
)

// benchLinks adds symlinks to the benchmark repository with git
// fast-import: a commit in which every directory links a root
// configuration and every tenth one links another directory, then a commit
// that changes the configuration.
func benchLinks(b *testing.B, r repo) (first, second string) {
	b.Helper()
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = r.dir
	cmd.Env = gitEnv
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	data := func(s string) { fmt.Fprintf(w, "data %d\n%s\n", len(s), s) }
	fmt.Fprintf(w, "commit refs/heads/main\nmark :10\ncommitter T <t@example.com> 1735689602 +0000\n")
	data("links")
	fmt.Fprintf(w, "from refs/heads/main^0\nM 100644 inline root.cfg\n")
	data("rules v1\n")
	for d := range benchDirs {
		fmt.Fprintf(w, "M 120000 inline d%03d/root.cfg\n", d)
		data("../root.cfg")
		if d%10 == 0 {
			fmt.Fprintf(w, "M 120000 inline d%03d/shared\n", d)
			data(fmt.Sprintf("../d%03d", (d+1)%benchDirs))
		}
	}
	fmt.Fprintf(w, "commit refs/heads/main\ncommitter T <t@example.com> 1735689603 +0000\n")
	data("rules")
	fmt.Fprintf(w, "from :10\nM 100644 inline root.cfg\n")
	data("rules v2\n")
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := stdin.Close(); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("git fast-import: %v", err)
	}
	return r.git("rev-parse", "main~1"), r.git("rev-parse", "main")
}

// BenchmarkPlanLinks is BenchmarkPlan on the same repository with 1,100
// symlinks among the inputs of nearly every job, pushing a change to the
// file 1,000 of them lead to.
func BenchmarkPlanLinks(b *testing.B) {
	if testing.Short() {
		b.Skip("generates a 100,000-file repository")
	}
	r, _, _ := benchRepo(b)
	first, second := benchLinks(b, r)
	p := benchPipeline(false)
	ctx := context.Background()
	s := newStore()
	s.record(makePlan(b, planner.Options{Dir: r.dir, Pipeline: p, Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: first}}))
	o := planner.Options{Dir: r.dir, Pipeline: p, Executor: planner.ExecutorSandbox, Lookup: s.lookup,
		Trigger: push(first, second, "main")}

	var lsTree, plan time.Duration
	var last *planner.Plan
	for b.Loop() {
		start := time.Now()
		cmd := exec.Command("git", "ls-tree", "-r", "-z", second)
		cmd.Dir = r.dir
		cmd.Stdout = io.Discard
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		lsTree += time.Since(start)

		start = time.Now()
		pl, err := planner.Make(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		plan += time.Since(start)
		last = pl
	}
	n := float64(b.N)
	b.ReportMetric(plan.Seconds()*1000/n, "plan-ms")
	b.ReportMetric(lsTree.Seconds()*1000/n, "ls-tree-ms")
	b.ReportMetric(float64(plan)/float64(lsTree), "plan/ls-tree")
	// Every job over a directory reaches root.cfg through its link, the
	// others over one file type need one that does, and those without
	// inputs match it: all but the five over every Go file and go.mod run.
	if last.Summary.Run != benchJobs-5 || last.ChangedFiles != 1 {
		b.Fatalf("unexpected plan: %+v, %d changed files", last.Summary, last.ChangedFiles)
	}
	b.ReportMetric(float64(last.Summary.Run), "jobs-run")
}
