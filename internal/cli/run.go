package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/analyzer"
	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/jobcache"
	"github.com/deltaci/deltaci/internal/orchestrator"
	"github.com/deltaci/deltaci/internal/pipeline"
	"github.com/deltaci/deltaci/internal/planner"
	"github.com/deltaci/deltaci/internal/results"
	"github.com/deltaci/deltaci/internal/runner"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/termsafe"
	"github.com/deltaci/deltaci/internal/workspace"
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
	// workspaces is how each job's view of the snapshot is made.
	workspaces string
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
	f.DurationVar(&o.grace, "grace", defaultGrace, "time a canceled or timed-out job gets between SIGTERM and SIGKILL")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log what deltaci does, to stderr")
	f.StringVar(&o.workspaces, "workspaces", "auto", workspacesUsage)
	f.StringVar(&o.executor, "executor", "shell", "where jobs run: shell (this machine's shell) or sandbox (bubblewrap: no network unless the job asks, only the workspace and a home of the job's own writable)")
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
	method, err := workspace.ParseMethod(o.workspaces)
	if err != nil {
		return usage(fmt.Errorf("--workspaces: %w", err))
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
	x := &localRun{st: st, orch: orch, notifier: notifier, exec: exec, homes: jobHomes(o.executor), log: log, res: res, vars: e.vars,
		jobs: o.jobs, grace: o.grace, workspaces: method, registry: arts.Registry, output: con.job, printf: con.printf}
	var start time.Time
	runID, interrupted, err := x.execute(ctx, top, wt, p, specs, pl, func(runID string, jobs []store.NewJob) {
		con.printf("deltaci: run %s at %s: %s (%d to run, %d reused, %d skipped), %d at a time\n", runID, describeHead(branch, head, len(wt.Changes) > 0),
			plural(len(specs), "job"), countDecision(jobs, ""), countDecision(jobs, core.JobReused), countDecision(jobs, core.JobSkipped), o.jobs)
		con.printf("deltaci: base %s\n", describeBase(pl.Base))
		start = time.Now()
	})
	if err != nil {
		return err
	}

	report := context.WithoutCancel(ctx)
	final, err := st.Run(report, runID)
	if err != nil {
		return err
	}
	if err := printSummary(report, e, st, final, time.Since(start)); err != nil {
		return err
	}
	if final.State == core.RunFailed {
		drainCtx, cancel := context.WithTimeout(report, localAnalysisWait)
		err := x.analyzer().Drain(drainCtx, runID)
		cancel()
		if err != nil {
			con.printf("deltaci: the failures could not all be analyzed: %v\n", err)
		}
		view, err := analyzer.RunView(report, st, runID)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout)
		printWhy(e.stdout, view)
	}
	if interrupted {
		return &exitError{code: ExitCanceled}
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

// localRun runs planned runs on this machine, in-process: deltaci run, and
// the two runs of deltaci plan --check-inputs.
type localRun struct {
	st       *store.Store
	orch     *orchestrator.Orchestrator
	notifier *orchestrator.Notifier
	exec     executor.Executor
	// homes gives each job a home of its own (see jobHomes).
	homes bool
	log   *slog.Logger
	res   *results.Store
	vars  []string // the environment jobs start from
	jobs  int      // attempts at once
	grace time.Duration
	// workspaces is how each job's view of the snapshot is made.
	workspaces workspace.Method
	// registry holds the attempts' reports and logs, for the analyzer.
	registry *registry.Registry
	// output is where a job's log goes; printf prints deltaci's own lines.
	output func(job string) io.WriteCloser
	printf func(format string, args ...any)
}

// execute records the run of specs (with pipeline p, at the working tree
// wt read) as pl decided, takes the snapshot when a job is to run, calls
// started, and runs the jobs to the run's end. It returns the run's id,
// and whether ctx ended meanwhile, which cancels the run.
func (x *localRun) execute(ctx context.Context, top string, wt *gitx.WorkTree, p *core.Pipeline, specs []core.JobSpec, pl *planner.Plan,
	started func(runID string, jobs []store.NewJob)) (string, bool, error) {
	st, orch, log := x.st, x.orch, x.log
	nr := store.NewRun{Repo: top, Ref: wt.Branch, Commit: wt.Head, Event: core.EventManual, Trusted: true, Base: pl.Base.Commit, ChangedPaths: &pl.ChangedFiles}
	for _, s := range specs {
		nj := store.NewJob{Spec: s}
		if pj, ok := pl.Job(s.Name); ok {
			pj.SetCache(&nj.Spec)
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
		return "", false, err
	}
	// From here the run exists: a signal must end it, not leave it queued.
	bg := context.WithoutCancel(ctx)
	if err := orch.BeginPlanning(bg, run.ID); err != nil {
		return "", false, err
	}
	// A run with no job to run needs no workspace: nothing is copied.
	var (
		src, ws string
		views   *workspace.Builder
	)
	if countDecision(nr.Jobs, "") > 0 {
		work := workDir(run.ID)
		if err := os.Mkdir(work, 0o700); err != nil {
			_ = orch.FailPlanning(bg, run.ID, core.ReasonInfraError)
			return "", false, fmt.Errorf("workspace: %w", err)
		}
		defer func() {
			if err := workspace.RemoveAll(bg, work); err != nil {
				log.Warn("removing the run's workspaces", "dir", work, "err", err)
			}
		}()
		src, ws = filepath.Join(work, "src"), filepath.Join(work, "ws")
		// One snapshot for the run; each job gets a copy-on-write view.
		if views, err = workspace.New(ctx, log, x.workspaces, ws); err != nil {
			_ = orch.FailPlanning(bg, run.ID, core.ReasonInfraError)
			return "", false, fmt.Errorf("--workspaces: %w", err)
		}
		if err := takeSnapshot(ctx, wt, p, specs, src); err != nil {
			_ = orch.FailPlanning(bg, run.ID, core.ReasonInfraError)
			return "", false, err
		}
	}
	started(run.ID, nr.Jobs)
	if err := orch.StartRun(bg, run.ID); err != nil {
		return "", false, err
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
			x.printf("deltaci: interrupted: canceling the run (SIGTERM, then SIGKILL after %s)\n", x.grace)
			if err := orch.Cancel(context.WithoutCancel(ctx), "cli", run.ID); err != nil {
				log.Warn("cancel run", "err", err)
			}
			stopRunner()
		case <-runCtx.Done():
		}
	}()
	local := &runner.Local{
		Orch: orch, Notifier: x.notifier, Exec: x.exec, Log: log,
		Slots: x.jobs, Source: src, Workspaces: views, WorkDir: ws, BaseEnv: x.vars, Homes: x.homes, FixedEnv: runEnv(wt),
		Output: x.output, Grace: x.grace, ID: "local", Results: x.res, InputFiles: pl.InputFiles,
	}
	// The analyzer runs beside the jobs: a job with retry.flaky waits
	// for its failed attempt's analysis.
	az := x.analyzer()
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
		return "", false, runErr
	}
	select {
	case <-interrupted:
		return run.ID, true, nil
	default:
		return run.ID, false, nil
	}
}

// workspacesUsage is the help of --workspaces, for deltaci run and
// deltaci runner.
const workspacesUsage = "how each job's writable view of the shared tree is made: auto (the first that works of " +
	"overlay, fuse-overlayfs and copy), overlay (the kernel's overlayfs; needs root), fuse-overlayfs (the " +
	"fuse-overlayfs package and /dev/fuse), or copy (a full copy per job)"

// localAnalysisPoll is how often deltaci run's analyzer looks for ended
// attempts, and localAnalysisWait how long the summary waits for them.
const (
	localAnalysisPoll = 200 * time.Millisecond
	localAnalysisWait = time.Minute
)

// analyzer returns an analyzer of the run's failures: it runs beside the
// jobs, since a job with retry.flaky waits for its failed attempt's
// analysis.
func (x *localRun) analyzer() *analyzer.Analyzer {
	return &analyzer.Analyzer{Store: x.st, Registry: x.registry, Log: x.log, Settler: x.orch,
		Settings: analyzer.Settings{Poll: localAnalysisPoll}}
}

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

// jobHomes says whether deltaci run gives each job a home of its own, in
// its work area beside its workspace (HOME, XDG_CACHE_HOME): in the
// sandbox, where the user's home is absent and the root read-only, so
// that tools can keep their caches. The shell executor keeps the user's
// own HOME, as the commands the user types do: its tools' configuration,
// credentials and warm caches (git, go, npm, pip) are what a developer
// means to run with on their own machine.
func jobHomes(executorName string) bool { return executorName == planner.ExecutorSandbox }

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
		// Its workspaces may still be mounted.
		if err := workspace.RemoveAll(ctx, workDir(id)); err != nil {
			con.printf("deltaci: warning: could not remove the workspaces of run %s: %v\n", id, err)
		}
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
	if err := printCaches(ctx, e, st, run, jobs, last); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nrun %s %s in %s\n", run.ID, run.State, elapsed.Round(10*time.Millisecond))
	return nil
}

// printCaches lists what the jobs with a cache did with it: the key, how
// it was restored and the bytes restored and saved.
func printCaches(ctx context.Context, e env, st *store.Store, run core.Run, jobs []core.Job, last map[string]core.Attempt) error {
	if !slices.ContainsFunc(jobs, func(j core.Job) bool { return j.Spec.Cache != nil }) {
		return nil
	}
	rows, err := st.RunAttemptCaches(ctx, run.ID)
	if err != nil {
		return err
	}
	byAttempt := map[string]store.AttemptCache{}
	for _, r := range rows {
		byAttempt[r.AttemptID] = r
	}
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CACHE OF\tKEY\tRESTORED\tSAVED")
	for _, j := range jobs {
		c := j.Spec.Cache
		if c == nil {
			continue
		}
		restored, saved := "-", "-"
		if r, ok := byAttempt[last[j.ID].ID]; ok {
			restored = r.Outcome
			if r.Outcome != jobcache.Cold {
				restored = fmt.Sprintf("%s (%s, %s)", r.Outcome, r.RestoredKey, jobcache.Size(r.RestoredBytes))
			}
			switch r.Saved {
			case "saved":
				saved = fmt.Sprintf("%s (%s uploaded)", jobcache.Size(r.SavedBytes), jobcache.Size(r.UploadedBytes))
			case "unchanged":
				saved = "unchanged"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.Name, c.Key, restored, saved)
	}
	return tw.Flush()
}
