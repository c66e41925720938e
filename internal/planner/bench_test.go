package planner_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/planner"
)

// Size of the benchmark repository, as in DESIGN.md section 8.
const (
	benchDirs        = 1000
	benchFilesPerDir = 100
	benchJobs        = 1000
	benchChanged     = 100
)

// benchRepo generates the benchmark repository with git fast-import,
// which writes 100,000 blobs into one pack without touching the file
// system for each: a first commit, and a second that changes benchChanged
// files in ten directories.
func benchRepo(b *testing.B) (r repo, first, second string) {
	b.Helper()
	r = newRepo(b)
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
	file := func(path, content string) {
		fmt.Fprintf(w, "M 100644 inline %s\n", path)
		data(content)
	}
	fmt.Fprintf(w, "commit refs/heads/main\nmark :1\ncommitter T <t@example.com> 1735689600 +0000\n")
	data("generated")
	file("go.mod", "module example.com/bench\n")
	for d := range benchDirs {
		for f := range benchFilesPerDir {
			file(benchPath(d, f), fmt.Sprintf("content of %d/%d\n", d, f))
		}
	}
	fmt.Fprintf(w, "commit refs/heads/main\nmark :2\ncommitter T <t@example.com> 1735689601 +0000\n")
	data("change")
	fmt.Fprintf(w, "from :1\n")
	// A change touches a few directories, as a pull request does.
	for i := range benchChanged {
		d := (i / 10) * (benchDirs / 10)
		file(benchPath(d, i%10*7), "changed\n")
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := stdin.Close(); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("git fast-import: %v", err)
	}
	return r, r.git("rev-parse", "main~1"), r.git("rev-parse", "main")
}

// benchPath names file f of directory d: Go, Markdown and text files.
func benchPath(d, f int) string {
	ext := [...]string{".go", ".go", ".md", ".txt", ".go"}[f%5]
	return fmt.Sprintf("d%03d/f%02d%s", d, f, ext)
}

// benchPipeline has 1,000 jobs of the kinds a monorepo has: most own a
// directory, some take one file type of it, a few span the tree, and jobs
// form chains of needs.
//
// With ordered, a tenth of the jobs exclude their Markdown files, a tenth
// take the inputs of the job before, and a few expand the root Go module.
func benchPipeline(ordered bool) *core.Pipeline {
	p := &core.Pipeline{Version: 1}
	for i := range benchJobs {
		j := core.JobSpec{Name: fmt.Sprintf("job%04d", i), Run: fmt.Sprintf("make %d", i), Reuse: true, RunsOn: []string{"linux"}}
		d := i % benchDirs
		switch {
		case i < 5:
			j.Inputs = []string{"**/*.go", "go.mod"} // linters
		case i < 8:
			// no inputs: the whole tree
		case i%10 == 1:
			j.Inputs = []string{fmt.Sprintf("d%03d/**/*.go", d), "go.mod"}
		case i%10 == 2:
			j.Inputs = []string{fmt.Sprintf("d%03d/*.md", d), fmt.Sprintf("d%03d/f0?.txt", d)}
		case ordered && i%10 == 3:
			j.Inputs = []string{fmt.Sprintf("d%03d/**", d), fmt.Sprintf("!d%03d/*.md", d), "go.mod"}
		case ordered && i%100 == 4:
			j.Inputs = []string{core.Input{Kind: core.InputGo, Value: "."}.String(), "!**/*.md"}
		default:
			j.Inputs = []string{fmt.Sprintf("d%03d/**", d), "go.mod"}
		}
		switch {
		case ordered && i%10 == 5:
			j.InputsFrom = []string{fmt.Sprintf("job%04d", i-1)}
		case i%10 != 0 && i > 8:
			j.Needs = []string{fmt.Sprintf("job%04d", i-1)}
		}
		p.Jobs = append(p.Jobs, j)
	}
	return p
}

// BenchmarkPlan plans a push of 100 changed files in a repository of
// 100,000 files with 1,000 jobs, next to `git ls-tree -r -z` of the same
// commit in the same loop. Goal (DESIGN.md section 8): plan ≤ 3× ls-tree
// and ≤ 0.5 s.
func BenchmarkPlan(b *testing.B) { benchPlan(b, benchPipeline(false)) }

// BenchmarkPlanOrdered is BenchmarkPlan with exclusions, inputs_from and
// a Go module expanded among the jobs' inputs.
func BenchmarkPlanOrdered(b *testing.B) { benchPlan(b, benchPipeline(true)) }

func benchPlan(b *testing.B, p *core.Pipeline) {
	if testing.Short() {
		b.Skip("generates a 100,000-file repository")
	}
	r, first, second := benchRepo(b)
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
	if last.Summary.Run == 0 || last.Summary.Reuse == 0 || last.ChangedFiles != benchChanged {
		b.Fatalf("unexpected plan: %+v, %d changed files", last.Summary, last.ChangedFiles)
	}
	b.ReportMetric(float64(last.Summary.Run), "jobs-run")
}
