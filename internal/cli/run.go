package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/deltaci/deltaci/internal/analyzer"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/orchestrator"
	"github.com/deltaci/deltaci/internal/pipeline"
	"github.com/deltaci/deltaci/internal/planner"
	"github.com/deltaci/deltaci/internal/runner"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/termsafe"
)

// ConfigFile is the pipeline file at the root of a repository.
const ConfigFile = pipeline.FileName

type runOptions struct {
	plan     planOptions
	executor string
	repo     string
	jobs     int
	only     []string
	database string
	grace    time.Duration
	verbose  bool
}

func newRunCmd(e env) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run this repository's pipeline locally",
		Long: `Run the pipeline of the git repository in the current directory (or --repo)
on this machine. Jobs run in a snapshot of the working tree, uncommitted and
untracked (not ignored) files included; your files are never modified. Files
marked assume-unchanged or skip-worktree, and those sparse checkout leaves
out, are taken as the index holds them, as git status sees them.

Exit status: 0 when every job succeeded, 1 when a job failed, 2 for a usage or
configuration error, 130 when interrupted.`,
		Example: `  deltaci run                     # every job, as many at once as there are CPUs
  deltaci run --job test          # one job and the jobs it needs
  deltaci run --jobs 1            # one job at a time
  deltaci run --database postgres://postgres@127.0.0.1:5432/deltaci`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPipeline(cmd.Context(), e, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.repo, "repo", ".", "directory inside the git repository to run")
	f.IntVar(&o.jobs, "jobs", runtime.NumCPU(), "number of jobs to run at once")
	f.StringArrayVar(&o.only, "job", nil, "run only this job and the jobs it needs (repeatable)")
	f.StringVar(&o.database, "database", "", "SQLite file path or postgres:// URL (env DELTACI_DATABASE; default .deltaci/state.db in the repository)")
	f.DurationVar(&o.grace, "grace", 10*time.Second, "time a canceled or timed-out job gets between SIGTERM and SIGKILL")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log what deltaci does, to stderr")
	f.StringVar(&o.executor, "executor", "shell", "where jobs run: shell (this machine's shell) or sandbox (bubblewrap: no network unless the job asks, only the workspace writable)")
	f.BoolVar(&o.plan.noReuse, "no-reuse", false, "run every job, even those with a recorded result for the same inputs")
	f.StringVar(&o.plan.base, "base", "", "compare with this revision instead of the merge-base with the default branch")
	f.BoolVar(&o.plan.strict, "strict", false, "make warnings (an input glob that matches no file) errors, as strict: true in .deltaci.yml does")
	return cmd
}

func usage(err error) error { return &exitError{code: ExitUsage, err: err} }

func runPipeline(ctx context.Context, e env, o runOptions) error {
	log := newLogger(e.stderr, o.verbose)
	if o.jobs < 1 {
		return usage(fmt.Errorf("--jobs must be at least 1, got %d", o.jobs))
	}
	exec, err := newExecutor(o.executor, log, executor.Limits{})
	if err != nil {
		return err
	}
	o.plan.executor = o.executor
	top, err := gitx.TopLevel(ctx, o.repo)
	if err != nil {
		return usage(err)
	}
	// One git status serves the plan, the snapshot and the check after it.
	// It is the slowest read of a plan: it runs while the stores open.
	var (
		wt      *gitx.WorkTree
		wtErr   error
		reading sync.WaitGroup
	)
	reading.Go(func() { wt, wtErr = gitx.ReadWorkTree(ctx, top) })
	defer reading.Wait()
	p, err := pipeline.Load(filepath.Join(top, ConfigFile))
	if err != nil {
		if os.IsNotExist(err) || core.KindOf(err) == core.KindNotFound {
			return usage(fmt.Errorf("no %s at %s: create one (see docs/configuration.md)", ConfigFile, top))
		}
		return usage(err)
	}
	specs, err := selectJobs(p, o.only)
	if err != nil {
		return usage(err)
	}
	database := o.database
	if database == "" {
		database = e.get("DELTACI_DATABASE")
	}
	if database == "" {
		database = filepath.Join(top, ".deltaci", "state.db")
	}
	st, err := openStore(ctx, database, true)
	if err != nil {
		return err
	}
	defer st.Close()
	arts, err := open.Open(ctx, open.Config{Database: database, Store: filepath.Join(top, gitx.StateDir, "store"), Log: log})
	if err != nil {
		return fmt.Errorf("artifact store: %w", err)
	}
	defer arts.Close()
	res := localResults(arts)
	notifier := orchestrator.NewNotifier()
	orch := orchestrator.New(st, log, notifier)
	con := newConsole(e.stdout, names(specs))
	recoverAbandoned(ctx, e, orch, con)

	if reading.Wait(); wtErr != nil {
		return wtErr
	}
	head, branch := wt.Head, wt.Branch
	pl, err := makePlan(ctx, top, wt, p, o.plan, res)
	if core.KindOf(err) == core.KindInvalid {
		return usage(err)
	}
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	for _, w := range pl.Warnings {
		con.printf("deltaci: warning: %s\n", termsafe.String(w.String()))
	}
	nr := store.NewRun{Repo: top, Ref: branch, Commit: head, Event: core.EventManual, Trusted: true, Base: pl.Base.Commit}
	for _, s := range specs {
		nj := store.NewJob{Spec: s}
		if pj, ok := pl.Job(s.Name); ok {
			nj.Digest, nj.Explain = pj.Digest, pj.Explain()
			switch pj.Decision {
			case planner.Reuse:
				nj.Decision, nj.ReusedFrom = core.JobReused, pj.ReusedFrom.AttemptID
			case planner.Skip:
				nj.Decision = core.JobSkipped
			}
		}
		nr.Jobs = append(nr.Jobs, nj)
	}
	run, _, err := st.CreateRun(ctx, "cli", nr)
	if err != nil {
		return err
	}
	// From here the run exists: a signal must end it, not leave it queued.
	bg := context.WithoutCancel(ctx)
	if err := orch.BeginPlanning(bg, run.ID); err != nil {
		return err
	}
	// A run with no job to run needs no workspace: nothing is copied.
	var src, ws string
	if countDecision(nr.Jobs, "") > 0 {
		work := workDir(run.ID)
		if err := os.Mkdir(work, 0o700); err != nil {
			_ = orch.FailPlanning(bg, run.ID, core.ReasonInfraError)
			return fmt.Errorf("workspace: %w", err)
		}
		defer os.RemoveAll(work)
		src, ws = filepath.Join(work, "src"), filepath.Join(work, "ws")
		if err := takeSnapshot(ctx, wt, p, specs, src); err != nil {
			_ = orch.FailPlanning(bg, run.ID, core.ReasonInfraError)
			return err
		}
	}
	con.printf("deltaci: run %s at %s: %s (%d to run, %d reused, %d skipped), %d at a time\n", run.ID, describeHead(branch, head, len(wt.Changes) > 0),
		plural(len(specs), "job"), countDecision(nr.Jobs, ""), countDecision(nr.Jobs, core.JobReused), countDecision(nr.Jobs, core.JobSkipped), o.jobs)
	con.printf("deltaci: base %s\n", describeBase(pl.Base))
	start := time.Now()
	if err := orch.StartRun(bg, run.ID); err != nil {
		return err
	}

	// A signal cancels the run first, so running attempts report canceled
	// rather than failed, then stops the executors.
	runCtx, stopRunner := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRunner()
	interrupted := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			close(interrupted)
			con.printf("deltaci: interrupted: canceling the run (SIGTERM, then SIGKILL after %s)\n", o.grace)
			if err := orch.Cancel(context.WithoutCancel(ctx), "cli", run.ID); err != nil {
				log.Warn("cancel run", "err", err)
			}
			stopRunner()
		case <-runCtx.Done():
		}
	}()
	local := &runner.Local{
		Orch: orch, Notifier: notifier, Exec: exec, Log: log,
		Slots: o.jobs, Source: src, WorkDir: ws, BaseEnv: e.vars, FixedEnv: runEnv(wt),
		Output: con.job, Grace: o.grace, ID: "local", Results: res,
	}
	// The analyzer runs beside the jobs: a job with retry.flaky waits
	// for its failed attempt's analysis.
	az := &analyzer.Analyzer{Store: st, Registry: arts.Registry, Log: log, Settler: orch,
		Settings: analyzer.Settings{Poll: localAnalysisPoll}}
	azCtx, stopAnalyzer := context.WithCancel(runCtx)
	azDone := make(chan struct{})
	go func() {
		defer close(azDone)
		az.Run(azCtx)
	}()
	runErr := local.Run(runCtx, run.ID)
	stopAnalyzer()
	<-azDone
	stopRunner()
	if runErr != nil {
		return runErr
	}

	report := context.WithoutCancel(ctx)
	final, err := st.Run(report, run.ID)
	if err != nil {
		return err
	}
	if err := printSummary(report, e, st, final, time.Since(start)); err != nil {
		return err
	}
	if final.State == core.RunFailed {
		drainCtx, cancel := context.WithTimeout(report, localAnalysisWait)
		err := az.Drain(drainCtx, run.ID)
		cancel()
		if err != nil {
			con.printf("deltaci: the failures could not all be analyzed: %v\n", err)
		}
		view, err := analyzer.RunView(report, st, run.ID)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout)
		printWhy(e.stdout, view)
	}
	select {
	case <-interrupted:
		return &exitError{code: ExitCanceled}
	default:
	}
	switch final.State {
	case core.RunSucceeded:
		return nil
	case core.RunCanceled:
		return &exitError{code: ExitCanceled}
	default:
		return &exitError{code: ExitFailed}
	}
}

// localAnalysisPoll is how often deltaci run's analyzer looks for ended
// attempts, and localAnalysisWait how long the summary waits for them.
const (
	localAnalysisPoll = 200 * time.Millisecond
	localAnalysisWait = time.Minute
)

// afterSnapshot runs once the working tree is copied; tests edit the
// working tree there.
var afterSnapshot = func(top string) {}

// takeSnapshot copies the working tree into src for the jobs to run in,
// from the same reading of it as the plan (files git does not compare with
// the working tree written from the index, as the digests took them), and
// checks the copy. (When no job runs, all reused or skipped, there is
// nothing to copy, nor a result to record under a wrong digest.)
func takeSnapshot(ctx context.Context, wt *gitx.WorkTree, p *core.Pipeline, specs []core.JobSpec, src string) error {
	if _, err := wt.Snapshot(ctx, src); err != nil {
		if ctx.Err() != nil {
			return &exitError{code: ExitCanceled, err: errors.New("interrupted while taking the snapshot")}
		}
		return fmt.Errorf("snapshot of the working tree: %w", err)
	}
	afterSnapshot(wt.Top)
	// The plan read the working tree a moment before the copy: an edit in
	// between would run jobs, and record their results, under digests of
	// other content.
	return checkSnapshot(ctx, wt, p, specs)
}

// checkSnapshot refuses the run when the working tree changed, between the
// plan's reading and the end of the copy, in a way that can change the
// digest of one of jobs: then the copy may hold content other than the
// one planned. Changes that no job's inputs match are let through.
func checkSnapshot(ctx context.Context, wt *gitx.WorkTree, p *core.Pipeline, jobs []core.JobSpec) error {
	change, err := wt.Changed(ctx)
	if err != nil {
		return fmt.Errorf("check of the snapshot: %w", err)
	}
	if change.HeadMoved {
		return errors.New("HEAD moved while deltaci copied the working tree: nothing ran; run again")
	}
	if changed := planner.Affected(p, names(jobs), change.Paths); len(changed) > 0 {
		return fmt.Errorf("the working tree changed while deltaci copied it (the inputs of %s): nothing ran; run again once it is still",
			strings.Join(changed, ", "))
	}
	return nil
}

// runEnv is what deltaci run sets, over each job's env, as a runner does
// from its lease: CI, and the commit and ref of the run. The working
// tree's uncommitted changes are on top of DELTACI_COMMIT; DELTACI_REF is
// refs/heads/ and the branch, or empty on a detached HEAD.
func runEnv(wt *gitx.WorkTree) map[string]string {
	ref := ""
	if wt.Branch != "" {
		ref = "refs/heads/" + wt.Branch
	}
	return map[string]string{"CI": "true", "DELTACI_COMMIT": wt.Head, "DELTACI_REF": ref}
}

// selectJobs returns the jobs to run in pipeline order: all of them, or the
// named ones together with everything they need.
func selectJobs(p *core.Pipeline, only []string) ([]core.JobSpec, error) {
	if len(only) == 0 {
		return p.Jobs, nil
	}
	want := map[string]bool{}
	var add func(string) error
	add = func(name string) error {
		if want[name] {
			return nil
		}
		j, ok := p.Job(name)
		if !ok {
			var known []string
			for _, j := range p.Jobs {
				known = append(known, j.Name)
			}
			return fmt.Errorf("--job %s: no such job in %s (jobs: %s)", name, ConfigFile, strings.Join(known, ", "))
		}
		want[name] = true
		for _, n := range j.Needs {
			if err := add(n); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range only {
		if err := add(n); err != nil {
			return nil, err
		}
	}
	var out []core.JobSpec
	for _, j := range p.Jobs {
		if want[j.Name] {
			out = append(out, j)
		}
	}
	return out, nil
}

// newExecutor builds the executor --executor names. An unusable sandbox is
// an error, never a quiet fallback to the shell.
func newExecutor(name string, log *slog.Logger, limits executor.Limits) (executor.Executor, error) {
	switch name {
	case planner.ExecutorShell:
		return executor.NewShell(log), nil
	case planner.ExecutorSandbox:
		sb, err := executor.NewSandbox(log, executor.SandboxOptions{Limits: limits})
		if err != nil {
			return nil, fmt.Errorf("--executor sandbox: %w", err)
		}
		return sb, nil
	}
	return nil, usage(fmt.Errorf("--executor %q: use shell or sandbox", name))
}

// defaultAbandonAfter is how long a run must have shown no sign of life (no
// live lease, nothing queued) before another deltaci run ends it; the
// environment variable DELTACI_ABANDON_AFTER overrides it.
const defaultAbandonAfter = 2 * time.Minute

// recoverAbandoned ends runs of this database whose deltaci process died
// (kill -9, a crash, a closed laptop) and removes their workspaces.
func recoverAbandoned(ctx context.Context, e env, orch *orchestrator.Orchestrator, con *console) {
	after := defaultAbandonAfter
	if v := e.get("DELTACI_ABANDON_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			con.printf("deltaci: warning: DELTACI_ABANDON_AFTER=%q is not a positive duration; using %s\n", v, after)
		} else {
			after = d
		}
	}
	ended, err := orch.RecoverAbandoned(ctx, "cli", after)
	for _, id := range ended {
		con.printf("deltaci: run %s was abandoned by a deltaci process that died; marked canceled\n", id)
		_ = os.RemoveAll(workDir(id))
	}
	if err != nil {
		con.printf("deltaci: warning: could not check for abandoned runs: %v\n", err)
	}
}

// workDir is where a run keeps its snapshot and workspaces: named by run so
// that a later run can remove it when its process died.
func workDir(runID string) string { return filepath.Join(os.TempDir(), "deltaci-run-"+runID) }

// decidingReason is the last reason of a planner explanation, which says
// why the job runs, is reused or is skipped.
func decidingReason(explain string) string {
	if i := strings.LastIndex(explain, "; "); i >= 0 {
		explain = explain[i+2:]
	}
	if explain == "" {
		return "-"
	}
	if len(explain) > 80 {
		explain = explain[:77] + "..."
	}
	return explain
}

func countDecision(jobs []store.NewJob, d core.JobState) int {
	n := 0
	for _, j := range jobs {
		if j.Decision == d {
			n++
		}
	}
	return n
}

func names(specs []core.JobSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

func describeHead(branch, head string, dirty bool) string {
	at := "no commits yet"
	if head != "" {
		at = head[:min(12, len(head))]
	}
	if branch != "" {
		at = branch + "@" + at
	}
	if dirty {
		at += " + uncommitted changes"
	}
	return at
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func printSummary(ctx context.Context, e env, st *store.Store, run core.Run, elapsed time.Duration) error {
	jobs, err := st.Jobs(ctx, run.ID)
	if err != nil {
		return err
	}
	attempts, err := st.Attempts(ctx, run.ID)
	if err != nil {
		return err
	}
	last := map[string]core.Attempt{}
	for _, a := range attempts {
		if a.Number >= last[a.JobID].Number {
			last[a.JobID] = a
		}
	}
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATUS\tREASON\tDURATION\tATTEMPT\tWHY")
	for _, j := range jobs {
		a, ran := last[j.ID]
		reason := string(j.Reason)
		if reason == "" {
			reason = "-"
		}
		if j.Reason == core.ReasonExitCode && a.ExitCode != nil {
			reason = fmt.Sprintf("exit code %d", *a.ExitCode)
		}
		dur, num := "-", "-"
		if ran {
			num = fmt.Sprint(a.Number)
			if d := a.Duration(); d > 0 {
				dur = d.Round(10 * time.Millisecond).String()
			}
		}
		// The plan's reason can name files of the repository, whose names
		// may hold control characters.
		why := termsafe.String(decidingReason(j.Explain))
		if j.State == core.JobUpstreamFailed || j.State == core.JobCanceled {
			why = "-" // the plan did not decide its end
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, j.State, reason, dur, num, why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nrun %s %s in %s\n", run.ID, run.State, elapsed.Round(10*time.Millisecond))
	return nil
}
