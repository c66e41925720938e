// Package runner executes attempts. Local is the in-process runner of the
// embedded mode (deltaci run): it leases attempts of one run straight from
// the orchestrator, with the same leases, heartbeats and fencing that remote
// runners use over HTTP.
package runner

import (
	"context"
	"errors"
	"fmt"
	"github.com/deltaci/deltaci/internal/analysis"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/jobcache"
	"github.com/deltaci/deltaci/internal/orchestrator"
	"github.com/deltaci/deltaci/internal/results"
	"github.com/deltaci/deltaci/internal/secret"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/workspace"
)

// DefaultTTL is the lease time-to-live; runners heartbeat every TTL/3.
const DefaultTTL = 20 * time.Second

// Local runs one run's attempts in Slots parallel slots.
type Local struct {
	Orch     *orchestrator.Orchestrator
	Notifier *orchestrator.Notifier
	Exec     executor.Executor
	Log      *slog.Logger
	// Slots is the number of attempts run at once (at least 1).
	Slots int
	// Source is the run's snapshot: each attempt's workspace is a
	// copy-on-write view of it, which it never changes.
	Source string
	// Workspaces makes those views; nil copies the snapshot instead.
	Workspaces *workspace.Builder
	// WorkDir holds the per-attempt workspaces; each is removed afterwards.
	WorkDir string
	// BaseEnv is the environment every job starts from (KEY=VALUE).
	BaseEnv []string
	// Homes gives each attempt's job a home of its own, made empty in its
	// work area beside its workspace and removed after it (executor.Spec.Home;
	// see home.go), whose HOME and XDG_CACHE_HOME replace BaseEnv's. Without
	// it jobs keep BaseEnv's HOME: the user's own, for deltaci run with the
	// shell executor.
	Homes bool
	// FixedEnv is set last, over the job's env, as a remote runner sets CI,
	// DELTACI_COMMIT and DELTACI_REF: a job cannot override these.
	FixedEnv map[string]string
	// Output returns the writer one attempt's log goes to; the runner closes
	// it when the attempt ends, so a last partial line can be flushed.
	Output func(job string) io.WriteCloser
	// TTL of leases; DefaultTTL when zero.
	TTL time.Duration
	// Grace between SIGTERM and SIGKILL; the executor's default when zero.
	Grace time.Duration
	// ID names this runner in events.
	ID string
	// Results, when set, receives each successful attempt's outputs and
	// gives each attempt the outputs of the jobs it needs.
	Results *results.Store
	// InputFiles lists the files of a hermetic job (planner.Plan.InputFiles):
	// its workspace holds only those, copied from Source.
	InputFiles func(job string) ([]gitx.TreeEntry, error)
	// ReportLimits bound the report files kept of an attempt
	// (analysis.DefaultLimits when zero).
	ReportLimits analysis.Limits
}

// Run executes queued attempts of runID until the run ends or ctx is
// canceled. Attempts running when ctx ends are stopped and reported canceled.
func (l *Local) Run(ctx context.Context, runID string) error {
	if l.Slots < 1 {
		return core.E(core.KindInvalid, "local runner", "slots must be at least 1, got %d", l.Slots)
	}
	var wg sync.WaitGroup
	errs := make([]error, l.Slots)
	for i := 0; i < l.Slots; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = l.slot(ctx, runID, fmt.Sprintf("%s/%d", l.ID, i))
		}(i)
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *Local) ttl() time.Duration {
	if l.TTL > 0 {
		return l.TTL
	}
	return DefaultTTL
}

func (l *Local) slot(ctx context.Context, runID, slotID string) error {
	wake, stop := l.Notifier.Subscribe()
	defer stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		a, j, err := l.Orch.Lease(ctx, runID, slotID, l.ttl())
		if core.KindOf(err) == core.KindNotFound {
			run, err := l.Orch.Store().Run(ctx, runID)
			if ctx.Err() != nil {
				return nil // interrupted: the caller ends the run
			}
			if err != nil {
				return err
			}
			if run.State.Terminal() {
				return nil
			}
			// A run whose last completion could not advance it (the
			// database failed just then) moves on here.
			if err := l.Orch.Advance(ctx, runID); err != nil && ctx.Err() == nil {
				return err
			}
			select {
			case <-wake:
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second): // safety net for a missed wake-up
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := l.execute(ctx, slotID, a, j); err != nil {
			return err
		}
	}
}

// execute runs one leased attempt to its end and reports the outcome.
func (l *Local) execute(ctx context.Context, slotID string, a core.Attempt, j core.Job) error {
	log := l.Log.With(slog.String("run_id", a.RunID), slog.String("job", j.Name), slog.String("attempt_id", a.ID))
	fence := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
	// Reports must reach the store even when ctx was canceled by the user.
	report := context.WithoutCancel(ctx)
	console := l.Output(j.Name)
	defer console.Close()
	// The attempt's log: what the console shows, kept in the artifact
	// store as logs/<attempt> once the attempt ends.
	var out io.Writer = console
	// saveLog keeps the log once: before the completion, which queues the
	// attempt's analysis, so the analysis finds it.
	saveLog := func() {}
	if l.Results != nil {
		logFile, err := l.openLog(a)
		if err != nil {
			fmt.Fprintf(console, "deltaci: cannot keep the log: %v\n", err)
		} else {
			out = io.MultiWriter(console, logFile)
			var once sync.Once
			saveLog = func() {
				once.Do(func() {
					logFile.Close()
					if err := l.Results.SaveLog(report, a, logFile.Name()); err != nil {
						log.WarnContext(report, "storing the log", slog.Any("err", err))
					}
					os.RemoveAll(filepath.Dir(logFile.Name()))
				})
			}
			defer saveLog()
		}
	}
	complete := func(o orchestrator.Outcome) error {
		saveLog()
		return l.complete(report, slotID, fence, o)
	}

	w, err := l.workspace(ctx, a, j)
	if err != nil {
		fmt.Fprintf(out, "deltaci: cannot prepare the workspace: %v\n", err)
		return complete(orchestrator.Outcome{State: core.AttemptErrored, Reason: core.ReasonInfraError})
	}
	defer func() {
		if err := w.Remove(report); err != nil {
			log.WarnContext(report, "removing workspace", slog.String("dir", w.Dir), slog.Any("err", err))
		}
	}()
	ws := w.Dir
	// The job's home, when it has one; see home.go. Caches restored into
	// it before the job and saved from it after belong in this function.
	home := ""
	if l.Homes {
		if home, err = newHome(l.attemptRoot(a, j)); err != nil {
			fmt.Fprintf(out, "deltaci: %v\n", err)
			return complete(orchestrator.Outcome{State: core.AttemptErrored, Reason: core.ReasonInfraError})
		}
		defer removeHome(report, log, home)
	}
	if err := l.Orch.StartAttempt(report, slotID, a, fence); err != nil {
		return lostOrErr(log, err)
	}
	if err := l.restoreNeeds(report, a, j, ws); err != nil {
		fmt.Fprintf(out, "deltaci: cannot restore the outputs of the jobs it needs: %v\n", err)
		return complete(orchestrator.Outcome{State: core.AttemptErrored, Reason: core.ReasonInfraError})
	}
	if a.Number > 1 {
		fmt.Fprintf(out, "deltaci: attempt %d\n", a.Number)
	}
	env, secrets, err := l.env(ctx, a, j)
	if err != nil {
		fmt.Fprintf(out, "deltaci: %v\n", err)
		return complete(orchestrator.Outcome{State: core.AttemptErrored, Reason: core.ReasonInfraError})
	}
	cache := l.restoreLocalCache(report, a, j, jobcache.Roots{Home: home, Workspace: ws}, out)
	// The job's output passes through the masker; closing it flushes the
	// held-back tail before the attempt's writer is closed.
	masked := secret.NewMasker(out, secrets)
	defer masked.Close()

	execCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Heartbeats go on until the outcome is reported: storing the outputs
	// can take longer than a lease.
	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	defer stopHeartbeat()
	lost := make(chan struct{})
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		l.heartbeat(hbCtx, log, fence, cancel, lost)
	}()
	res, err := l.Exec.Run(execCtx, executor.Spec{
		Script: j.Spec.Run, Dir: ws, WrittenDir: w.Written, Home: home, Env: env, Timeout: j.Spec.Timeout, Grace: l.Grace,
		Network: j.Spec.Sandbox.Network,
	}, masked)
	_ = masked.Close() // the job has ended: emit the held-back tail before deltaci's own lines
	select {
	case <-lost:
		stopHeartbeat()
		<-hbDone
		log.WarnContext(report, "lease lost: result dropped")
		return nil
	default:
	}
	if err != nil {
		fmt.Fprintf(out, "deltaci: cannot start the job: %v\n", err)
		return complete(orchestrator.Outcome{State: core.AttemptErrored, Reason: core.ReasonInfraError})
	}
	switch {
	case res.Err != "":
		fmt.Fprintf(out, "deltaci: %s\n", res.Err)
	case res.State == core.AttemptTimedOut:
		fmt.Fprintf(out, "deltaci: timed out after %s; the job's processes were killed\n", j.Spec.Timeout)
	case res.State == core.AttemptFailed:
		fmt.Fprintf(out, "deltaci: exited with code %d\n", res.ExitCode)
	}
	outcome := orchestrator.Outcome{State: res.State, Reason: res.Reason}
	if cache != nil {
		cache.save(report, res.State == core.AttemptSucceeded, out)
	}
	if l.Results != nil && res.State != core.AttemptCanceled {
		refused, err := l.Results.SaveReports(report, a, j, ws, l.reportLimits())
		for _, r := range refused {
			fmt.Fprintf(out, "deltaci: report not kept: %s\n", r)
		}
		if err != nil {
			fmt.Fprintf(out, "deltaci: cannot store the reports: %v\n", err)
		}
	}
	if res.State == core.AttemptSucceeded && l.Results != nil {
		if _, err := l.Results.Save(report, a, j, ws); err != nil {
			fmt.Fprintf(out, "deltaci: cannot store the outputs: %v\n", err)
			outcome = orchestrator.Outcome{State: core.AttemptErrored, Reason: core.ReasonInfraError}
		}
	}
	if res.ExitCode >= 0 && res.State != core.AttemptErrored {
		code := res.ExitCode
		outcome.ExitCode = &code
	}
	stopHeartbeat()
	<-hbDone
	return complete(outcome)
}

// restoreNeeds writes the outputs of the job's needs into its workspace:
// those of the attempt that succeeded, or of the result a reused job stands for.
func (l *Local) restoreNeeds(ctx context.Context, a core.Attempt, j core.Job, ws string) error {
	if l.Results == nil || len(j.Spec.Needs) == 0 {
		return nil
	}
	jobs, err := l.Orch.Store().Jobs(ctx, a.RunID)
	if err != nil {
		return err
	}
	attempts, err := l.Orch.Store().Attempts(ctx, a.RunID)
	if err != nil {
		return err
	}
	succeeded := map[string]string{}
	for _, at := range attempts {
		if at.State == core.AttemptSucceeded {
			succeeded[at.JobID] = at.ID
		}
	}
	var ids []string
	for _, up := range jobs {
		if !slices.Contains(j.Spec.Needs, up.Name) {
			continue
		}
		switch {
		case up.State == core.JobReused && up.ReusedFrom != "":
			ids = append(ids, up.ReusedFrom)
		case succeeded[up.ID] != "":
			ids = append(ids, succeeded[up.ID])
		}
	}
	return l.Results.Restore(ctx, ids, ws)
}

func (l *Local) complete(ctx context.Context, slotID string, f store.Fence, out orchestrator.Outcome) error {
	err := l.Orch.CompleteAttempt(ctx, slotID, core.Attempt{}, f, out)
	return lostOrErr(l.Log, err)
}

// lostOrErr drops the attempt quietly when its lease is gone: its successor
// owns the job now.
func lostOrErr(log *slog.Logger, err error) error {
	if core.KindOf(err) == core.KindLeaseLost {
		log.Warn("lease lost", slog.Any("err", err))
		return nil
	}
	return err
}

// heartbeat extends the lease every TTL/3 until ctx ends. It cancels the
// job when the run is being canceled, and also closes lost when the lease is gone.
func (l *Local) heartbeat(ctx context.Context, log *slog.Logger, f store.Fence, cancel func(), lost chan<- struct{}) {
	t := time.NewTicker(l.ttl() / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stop, _, err := l.Orch.Heartbeat(ctx, f, l.ttl(), core.Attempt{})
		switch {
		case core.KindOf(err) == core.KindLeaseLost:
			close(lost)
			cancel()
			return
		case err != nil:
			log.WarnContext(ctx, "heartbeat failed", slog.Any("err", err))
		case stop:
			cancel()
			return
		}
	}
}

// reportLimits bound the report files kept of one attempt.
func (l *Local) reportLimits() analysis.Limits {
	if l.ReportLimits != (analysis.Limits{}) {
		return l.ReportLimits
	}
	return analysis.DefaultLimits()
}

// openLog creates the file an attempt's log is kept in while it runs.
func (l *Local) openLog(a core.Attempt) (*os.File, error) {
	dir := filepath.Join(l.WorkDir, "logs", a.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return os.Create(filepath.Join(dir, "log"))
}

// attemptRoot is the attempt's work area, <job>-<attempt number> under
// WorkDir: its workspace and its home.
func (l *Local) attemptRoot(a core.Attempt, j core.Job) string {
	return filepath.Join(l.WorkDir, fmt.Sprintf("%s-%d", j.Name, a.Number))
}

// workspace makes the attempt's workspace in its work area: a view of the
// snapshot, or for a hermetic job a directory of only its files.
func (l *Local) workspace(ctx context.Context, a core.Attempt, j core.Job) (*workspace.Workspace, error) {
	if err := os.MkdirAll(l.WorkDir, 0o700); err != nil {
		return nil, err
	}
	root := l.attemptRoot(a, j)
	if j.Spec.Hermetic {
		w, err := workspace.Empty(root)
		if err != nil {
			return nil, err
		}
		if err := l.hermeticWorkspace(j, w.Dir); err != nil {
			_ = w.Remove(context.WithoutCancel(ctx))
			return nil, err
		}
		return w, nil
	}
	b := l.Workspaces
	if b == nil {
		b = workspace.Copying()
	}
	return b.Create(ctx, l.Source, root)
}

// env builds the job's environment: the base, then the job's secrets and
// variables, then Delta CI's own, which a job cannot override. It also
// returns the secret values, for masking the job's output.
func (l *Local) env(ctx context.Context, a core.Attempt, j core.Job) ([]string, []secret.Value, error) {
	m := map[string]string{}
	for _, kv := range l.BaseEnv {
		if k, v, ok := cut(kv); ok {
			m[k] = v
		}
	}
	secrets, err := secret.Resolve(ctx, secret.NewEnv(l.BaseEnv), j.Spec.Secrets)
	if err != nil {
		return nil, nil, err
	}
	values := make([]secret.Value, 0, len(secrets))
	for name, v := range secrets {
		m[name] = v.Reveal()
		values = append(values, v)
	}
	for k, v := range j.Spec.Env {
		m[k] = v
	}
	m["DELTACI"] = "true"
	m["DELTACI_RUN_ID"] = a.RunID
	m["DELTACI_JOB"] = j.Name
	m["DELTACI_ATTEMPT"] = strconv.Itoa(a.Number)
	for k, v := range l.FixedEnv {
		m[k] = v
	}
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env, values, nil
}

func cut(kv string) (string, string, bool) {
	for i := 1; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return "", "", false
}
