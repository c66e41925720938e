package runner

import (
	"context"
	"errors"
	"fmt"
	"github.com/deltaci/deltaci/internal/analysis"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/jobcache"
	"github.com/deltaci/deltaci/internal/logstream"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/results"
	"github.com/deltaci/deltaci/internal/secret"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/telemetry"
	"github.com/deltaci/deltaci/internal/workspace"

	"go.opentelemetry.io/otel/trace"
)

// Remote is the runner agent of `deltaci runner`: it leases attempts from
// a server over HTTP, runs each in a fresh checkout of its commit, ships
// the log as it is written, uploads the outputs and reports the outcome.
type Remote struct {
	// Client talks to the server with the runner's session (see Session).
	Client *protocol.Client
	// Store is the server's artifact store API (its /store mount); the
	// runner authenticates to it with each attempt's job token.
	StoreURL string
	Exec     executor.Executor
	Mirrors  gitx.Mirrors
	// Workspaces makes each attempt's view of the shared checkout of its
	// commit; nil copies the checkout instead.
	Workspaces *workspace.Builder
	// WorkDir holds the shared checkouts and the per-attempt workspaces.
	WorkDir string
	// Capacity is how many attempts run at once (at least 1).
	Capacity int
	// BaseEnv is the environment every job starts from (KEY=VALUE); the
	// runner's own environment is not passed on. A HOME or XDG_CACHE_HOME
	// in it is replaced: each job has a home of its own (see home.go).
	BaseEnv []string
	Grace   time.Duration
	Log     *slog.Logger
	// LeaseWait is a long-poll's length (30 s when 0).
	LeaseWait time.Duration
	// Tracer records each attempt's spans (tracing.go), children of the
	// server's span of its lease; nil is tracing off.
	Tracer trace.TracerProvider

	checkouts *checkouts
	// ReportLimits bound the report files uploaded of an attempt
	// (analysis.DefaultLimits when zero).
	ReportLimits analysis.Limits
}

// Run leases and executes attempts until drain is done, then waits for the
// attempts in progress. When ctx ends, running jobs are stopped and left
// unreported: their leases expire and the server retries them elsewhere.
func (r *Remote) Run(ctx, drain context.Context) error {
	if r.Capacity < 1 {
		return core.E(core.KindInvalid, "runner", "capacity must be at least 1, got %d", r.Capacity)
	}
	if r.Workspaces == nil {
		r.Workspaces = workspace.Copying()
	}
	r.checkouts = newCheckouts(r.Mirrors, filepath.Join(r.WorkDir, checkoutsDir), r.Log)
	r.cleanWorkspaces(ctx)
	defer r.checkouts.close(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for i := 0; i < r.Capacity; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.slot(ctx, drain)
		}()
	}
	wg.Wait()
	return nil
}

// cleanWorkspaces removes what a runner killed mid-job left: the
// processes of its jobs, workspaces (unmounting their views first), the
// shared checkouts under them, their worktree records in the mirrors,
// and log spools.
func (r *Remote) cleanWorkspaces(ctx context.Context) {
	killOrphans(ctx, r.Log, r.WorkDir)
	logs := filepath.Join(r.WorkDir, "logs")
	_ = os.RemoveAll(logs)
	if err := os.MkdirAll(logs, 0o700); err != nil {
		r.Log.WarnContext(ctx, "making the log spool directory", slog.Any("err", err))
	}
	stale := 0
	// The views first: the checkouts are their lower layers.
	for _, name := range []string{"ws", checkoutsDir} {
		dir := filepath.Join(r.WorkDir, name)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			stale++
			if err := workspace.RemoveAll(ctx, filepath.Join(dir, e.Name())); err != nil {
				r.Log.WarnContext(ctx, "removing a stale workspace", slog.String("dir", filepath.Join(name, e.Name())), slog.Any("err", err))
			}
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			r.Log.WarnContext(ctx, "making the workspace directory", slog.Any("err", err))
		}
	}
	if stale > 0 {
		if err := r.Mirrors.Prune(ctx); err != nil {
			r.Log.WarnContext(ctx, "pruning mirror worktrees", slog.Any("err", err))
		}
	}
}

func (r *Remote) slot(ctx, drain context.Context) {
	wait := r.LeaseWait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	backoff := time.Duration(0)
	for drain.Err() == nil && ctx.Err() == nil {
		l, err := r.Client.Lease(drain, wait)
		if err != nil {
			if drain.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, 250*time.Millisecond), 10*time.Second)
			r.Log.WarnContext(ctx, "lease request failed; retrying", slog.Duration("in", backoff), slog.Any("err", err))
			sleep(drain, backoff)
			continue
		}
		backoff = 0
		if l == nil {
			continue
		}
		if drain.Err() != nil {
			// Asked to stop while the answer was on its way: hand it back.
			r.release(ctx, l)
			return
		}
		r.execute(ctx, l)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (r *Remote) release(ctx context.Context, l *protocol.Lease) {
	if err := r.Client.Release(context.WithoutCancel(ctx), l.AttemptID, l.LeaseToken); err != nil {
		r.Log.WarnContext(ctx, "releasing a lease", slog.String("attempt_id", l.AttemptID), slog.Any("err", err))
	}
}

// attempt is one leased attempt in progress.
type attempt struct {
	r        *Remote
	l        *protocol.Lease
	log      *slog.Logger
	tracer   trace.Tracer
	jobToken atomic.Value // string: refreshed by each heartbeat
	// home is the job's home (executor.Spec.Home), made empty before the
	// job and there until run returns: caches restored into it before the
	// job and saved from it after belong in run. See home.go.
	home string
}

func (a *attempt) token() string { return a.jobToken.Load().(string) }

// Append implements logstream.Sink over the log route. The job token
// expires with the lease; after an outage that outlived it, the runner's
// session still lets the tail through (the lease token fences it anyway).
func (a *attempt) Append(ctx context.Context, offset int64, data []byte) (int64, error) {
	n, err := a.r.Client.AppendLog(ctx, a.l.AttemptID, a.l.LeaseToken, a.token(), offset, data)
	if core.KindOf(err) == core.KindUnauthorized && a.r.Client.Token != nil {
		tok, terr := a.r.Client.Token(ctx)
		if terr != nil {
			return 0, err
		}
		return a.r.Client.AppendLog(ctx, a.l.AttemptID, a.l.LeaseToken, tok, offset, data)
	}
	return n, err
}

// transfer moves outputs through the server's artifact store with the
// attempt's job token.
func (a *attempt) transfer() *registry.Transfer {
	c := &httpapi.Client{BaseURL: a.r.StoreURL, HTTP: &http.Client{Transport: bearerTransport{a.token}}}
	return &registry.Transfer{Data: c, Catalog: httpapi.Catalog{C: c}}
}

// bearerTransport adds the current token to every request.
type bearerTransport struct{ token func() string }

func (t bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+t.token())
	return http.DefaultTransport.RoundTrip(req)
}

// execute runs one leased attempt to its end and reports it.
func (r *Remote) execute(ctx context.Context, l *protocol.Lease) {
	a := &attempt{r: r, l: l, log: r.Log.With(slog.String("run_id", l.RunID), slog.String("job", l.Job), slog.String("attempt_id", l.AttemptID)),
		tracer: telemetry.Tracer(r.Tracer)}
	a.jobToken.Store(l.JobToken)
	ctx, span := a.startAttemptSpan(ctx)
	defer span.End()
	report := context.WithoutCancel(ctx)
	a.log.InfoContext(ctx, "attempt leased", slog.Int("attempt", l.AttemptNumber))

	// Heartbeats run from the lease to the report, whatever happens between.
	execCtx, cancelExec := context.WithCancelCause(ctx)
	defer cancelExec(nil)
	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	lost := make(chan struct{})
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		a.heartbeat(hbCtx, cancelExec, lost)
	}()
	stop := func() { stopHeartbeat(); <-hbDone }
	defer stop()

	shipper, err := logstream.NewShipper(report, a, filepath.Join(r.WorkDir, "logs"))
	if err != nil {
		// Without a spool the job's output would be lost: do not run it.
		a.log.ErrorContext(ctx, "cannot spool the log", slog.Any("err", err))
		stop()
		a.complete(report, protocol.CompleteRequest{LeaseToken: l.LeaseToken, State: core.AttemptErrored, Reason: core.ReasonInfraError})
		return
	}
	go func() {
		// The job stops once its log cannot be kept: at the cap, or when
		// the lease is gone (the heartbeat reports that one too).
		select {
		case <-shipper.Failed():
			cancelExec(shipper.Err())
		case <-execCtx.Done():
		}
	}()
	outcome := a.run(ctx, execCtx, shipper, lost)
	if errors.Is(context.Cause(execCtx), store.ErrLogCapExceeded) {
		outcome = protocol.CompleteRequest{State: core.AttemptFailed, Reason: core.ReasonResourceLimit}
	}
	select {
	case <-lost:
		stop()
		shipper.Discard()
		a.log.WarnContext(report, "lease lost: the result is dropped")
		return
	default:
	}
	if ctx.Err() != nil {
		// A hard stop: no report; the lease expires and the job is retried.
		stop()
		shipper.Discard()
		return
	}
	_, flushed := a.tracer.Start(report, spanLogFlush)
	err = a.flush(report, shipper)
	telemetry.End(flushed, err)
	if err != nil {
		a.log.WarnContext(report, "the log's tail could not be shipped", slog.Any("err", err))
	}
	outcome.LeaseToken = l.LeaseToken
	a.complete(report, outcome)
	endAttemptSpan(span, outcome)
	stop()
}

// run prepares the workspace, runs the job and uploads its outputs, and
// returns the outcome.
func (a *attempt) run(ctx, execCtx context.Context, shipper *logstream.Shipper, lost <-chan struct{}) protocol.CompleteRequest {
	l, r := a.l, a.r
	logw := keepWriting{shipper}
	errored := func(format string, args ...any) protocol.CompleteRequest {
		if errors.Is(context.Cause(execCtx), context.Canceled) && ctx.Err() == nil {
			// The run was canceled while the job was being prepared.
			fmt.Fprintf(logw, "deltaci: the run was canceled\n")
			return protocol.CompleteRequest{State: core.AttemptCanceled, Reason: core.ReasonCanceled}
		}
		fmt.Fprintf(logw, "deltaci: "+format+"\n", args...)
		return protocol.CompleteRequest{State: core.AttemptErrored, Reason: core.ReasonInfraError}
	}
	_, checkout := a.tracer.Start(execCtx, spanCheckout, trace.WithAttributes(attrHermetic.Bool(l.Hermetic)))
	view, done, err := a.workspace(ctx, execCtx)
	telemetry.End(checkout, err)
	if err != nil {
		return errored("%v", err)
	}
	defer done()
	ws := view.Dir
	if a.home, err = newHome(attemptRoot(r.WorkDir, l.AttemptID)); err != nil {
		return errored("%v", err)
	}
	defer removeHome(context.WithoutCancel(ctx), a.log, a.home)
	err = retryTransient(execCtx, a.log, "reporting the start", func() error {
		return r.Client.Start(execCtx, l.AttemptID, l.LeaseToken)
	})
	if err != nil {
		if core.KindOf(err) == core.KindLeaseLost {
			return protocol.CompleteRequest{State: core.AttemptCanceled}
		}
		return errored("cannot report the start: %v", err)
	}
	if l.AttemptNumber > 1 {
		fmt.Fprintf(logw, "deltaci: attempt %d\n", l.AttemptNumber)
	}
	if len(l.WithheldSecrets) > 0 {
		fmt.Fprintf(logw, "deltaci: secrets %v are withheld: this run is not trusted\n", l.WithheldSecrets)
	}
	if l.NetworkDenied {
		fmt.Fprintf(logw, "deltaci: no network: the project does not give it to jobs of untrusted runs\n")
	}
	tr := a.transfer()
	if len(l.Needs) > 0 {
		_, restore := a.tracer.Start(execCtx, spanRestore, trace.WithAttributes(attrNeeds.Int(len(l.Needs))))
		for _, n := range l.Needs {
			err := retryTransient(execCtx, a.log, "restoring the outputs of "+n.Job, func() error {
				_, err := tr.PullInto(execCtx, n.Manifest, ws)
				return err
			})
			if err != nil {
				telemetry.End(restore, err)
				return errored("cannot restore the outputs of %s: %v", n.Job, err)
			}
		}
		restore.End()
	}
	env, secrets := a.env()
	var cache *protocol.CacheReport
	roots := jobcache.Roots{Home: a.home, Workspace: ws}
	if l.Cache != nil {
		cache = a.restoreCache(execCtx, tr, roots, logw)
	}
	masked := secret.NewMasker(logw, secrets)
	forget := func() {}
	_, executed := a.tracer.Start(execCtx, spanExecute)
	res, err := r.Exec.Run(execCtx, executor.Spec{
		Script: l.Script, Dir: ws, WrittenDir: view.Written, Home: a.home, Env: env, Timeout: l.Timeout(), Grace: r.Grace, Network: l.Network,
		Started: func(pid int) { forget = recordJob(r.WorkDir, l.AttemptID, pid) },
	}, masked)
	forget()
	_ = masked.Close()
	endExecuteSpan(executed, res, err)
	select {
	case <-lost:
		return protocol.CompleteRequest{State: core.AttemptCanceled}
	default:
	}
	if err != nil {
		return errored("cannot start the job: %v", err)
	}
	a.log.InfoContext(ctx, "job ended", slog.String("state", string(res.State)), slog.Int("exit_code", res.ExitCode),
		slog.Duration("job", res.FinishedAt.Sub(res.StartedAt)))
	switch {
	case res.Err != "":
		fmt.Fprintf(logw, "deltaci: %s\n", res.Err)
	case res.State == core.AttemptTimedOut:
		fmt.Fprintf(logw, "deltaci: timed out after %s; the job's processes were killed\n", l.Timeout())
	case res.State == core.AttemptFailed:
		fmt.Fprintf(logw, "deltaci: exited with code %d\n", res.ExitCode)
	}
	outcome := protocol.CompleteRequest{State: res.State, Reason: res.Reason, Cache: cache}
	if cache != nil && res.State == core.AttemptSucceeded {
		a.saveCache(execCtx, tr, roots, cache, logw)
	}
	if len(l.Reports) > 0 && res.State != core.AttemptCanceled {
		var m string
		_, upload := a.tracer.Start(execCtx, spanUploadReports)
		err := retryTransient(execCtx, a.log, "storing the reports", func() error {
			var err error
			m, err = a.pushReports(execCtx, tr, ws, logw)
			return err
		})
		telemetry.End(upload, err)
		if err != nil {
			// The outcome stands without them; the analysis says so.
			fmt.Fprintf(logw, "deltaci: cannot store the reports: %v\n", err)
		}
		outcome.ReportsManifest = m
	}
	if res.ExitCode >= 0 && res.State != core.AttemptErrored {
		code := res.ExitCode
		outcome.ExitCode = &code
	}
	if res.State == core.AttemptSucceeded && len(l.Outputs) > 0 {
		var m string
		_, upload := a.tracer.Start(execCtx, spanUploadOutputs)
		err := retryTransient(execCtx, a.log, "storing the outputs", func() error {
			var err error
			m, err = a.pushOutputs(execCtx, tr, ws)
			return err
		})
		telemetry.End(upload, err)
		if err != nil {
			return errored("cannot store the outputs: %v", err)
		}
		outcome.OutputsManifest = m
	}
	return outcome
}

// pushOutputs uploads the files matching the job's outputs globs as one
// manifest (empty when none matched) and returns its digest; the server
// records it as outputs/<attempt> when the attempt completes. A job
// without outputs globs sends none.
func (a *attempt) pushOutputs(ctx context.Context, tr *registry.Transfer, ws string) (string, error) {
	only, err := results.MatchOutputs(ws, a.l.Outputs)
	if err != nil {
		return "", err
	}
	att := core.Attempt{ID: a.l.AttemptID, RunID: a.l.RunID, Number: a.l.AttemptNumber}
	j := core.Job{Name: a.l.Job, Digest: a.l.Digest}
	res, err := tr.Push(ctx, "", ws, "", registry.PushOptions{Only: only, Annotations: results.Annotations(att, j)})
	if err != nil {
		return "", err
	}
	return res.Manifest.String(), nil
}

// pushReports uploads the files matching the job's reports globs, within
// the analysis limits, as one manifest and returns its digest; the server
// records it as reports/<attempt>. Files over a limit are named in the
// job's log and on the manifest, and not uploaded.
func (a *attempt) pushReports(ctx context.Context, tr *registry.Transfer, ws string, logw io.Writer) (string, error) {
	lim := a.r.ReportLimits
	if lim == (analysis.Limits{}) {
		lim = analysis.DefaultLimits()
	}
	keep, refused, err := results.ReportFiles(ws, a.l.Reports, lim)
	if err != nil {
		return "", err
	}
	for _, r := range refused {
		fmt.Fprintf(logw, "deltaci: report not kept: %s\n", r)
	}
	res, err := tr.Push(ctx, "", ws, "", registry.PushOptions{Only: keep, Annotations: results.ReportAnnotations(a.l.AttemptID, refused)})
	if err != nil {
		return "", err
	}
	return res.Manifest.String(), nil
}

// env builds the job's environment: the runner's base, the secrets, the
// job's variables, then Delta CI's own, which a job cannot override. (The
// executor sets HOME and XDG_CACHE_HOME to the job's home over all of
// them.) It also returns the secret values, for masking.
func (a *attempt) env() ([]string, []secret.Value) {
	m := map[string]string{}
	for _, kv := range a.r.BaseEnv {
		if k, v, ok := cut(kv); ok {
			m[k] = v
		}
	}
	values := make([]secret.Value, 0, len(a.l.Secrets))
	for name, v := range a.l.Secrets {
		m[name] = v
		values = append(values, secret.New(v))
	}
	for k, v := range a.l.Env {
		m[k] = v
	}
	m["CI"] = "true"
	m["DELTACI"] = "true"
	m["DELTACI_RUN_ID"] = a.l.RunID
	m["DELTACI_JOB"] = a.l.Job
	m["DELTACI_ATTEMPT"] = strconv.Itoa(a.l.AttemptNumber)
	m["DELTACI_COMMIT"] = a.l.Commit
	m["DELTACI_REF"] = a.l.Ref
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env, values
}

// heartbeat extends the lease every TTL/3. It stops the job when the run
// is canceled or the log hits its cap, and closes lost when the lease is
// gone.
func (a *attempt) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, lost chan<- struct{}) {
	ttl := a.l.TTL()
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	canceled := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hb, err := a.r.Client.Heartbeat(ctx, a.l.AttemptID, a.l.LeaseToken)
		switch {
		case core.KindOf(err) == core.KindLeaseLost || core.KindOf(err) == core.KindConflict:
			close(lost)
			cancel(errLeaseLost)
			return
		case err != nil:
			if ctx.Err() == nil {
				a.log.WarnContext(ctx, "heartbeat failed", slog.Any("err", err))
			}
		default:
			a.jobToken.Store(hb.JobToken)
			if hb.Cancel && !canceled {
				canceled = true
				a.log.InfoContext(ctx, "the run is canceled: stopping the job")
				cancel(context.Canceled)
			}
		}
	}
}

var errLeaseLost = errors.New("lease lost")

// retryTransient calls fn until it succeeds, fails for good, or about a
// minute of failures that may pass (the server restarting) has gone by.
func retryTransient(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	err := fn()
	for delay := time.Second; err != nil && protocol.IsTransient(err) && delay <= 32*time.Second && ctx.Err() == nil; delay *= 2 {
		log.WarnContext(ctx, what+" failed; retrying", slog.Duration("in", delay), slog.Any("err", err))
		sleep(ctx, delay)
		err = fn()
	}
	return err
}

// flush ships the log's tail, retrying while the server is unreachable.
func (a *attempt) flush(ctx context.Context, s *logstream.Shipper) error {
	err := s.Close()
	for i := 0; err != nil && protocol.IsTransient(err) && i < 60; i++ {
		sleep(ctx, time.Second)
		err = s.Flush()
	}
	if err != nil {
		s.Discard()
	}
	return err
}

// complete reports the outcome, retrying while the server is unreachable;
// a lost lease ends it quietly, since the attempt's successor owns the job.
func (a *attempt) complete(ctx context.Context, req protocol.CompleteRequest) {
	ctx, span := a.tracer.Start(ctx, spanComplete, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	delay := 250 * time.Millisecond
	deadline := time.Now().Add(5 * time.Minute)
	for {
		_, err := a.r.Client.Complete(ctx, a.l.AttemptID, req)
		switch {
		case err == nil:
			a.log.InfoContext(ctx, "attempt completed", slog.String("state", string(req.State)))
			return
		case core.KindOf(err) == core.KindLeaseLost:
			a.log.WarnContext(ctx, "lease lost before completion: the result is dropped", slog.Any("err", err))
			return
		case !protocol.IsTransient(err) || time.Now().After(deadline):
			a.log.ErrorContext(ctx, "completion refused", slog.Any("err", err))
			return
		}
		a.log.WarnContext(ctx, "completion failed; retrying", slog.Any("err", err))
		sleep(ctx, delay)
		delay = min(2*delay, 5*time.Second)
	}
}

// keepWriting passes writes on and never fails them: the job must not
// stall on its output. A shipper that failed for good stops the job through
// its Failed channel instead (see execute).
type keepWriting struct{ w io.Writer }

func (k keepWriting) Write(p []byte) (int, error) {
	_, _ = k.w.Write(p)
	return len(p), nil
}

// workspace makes the attempt's workspace and returns it with the function
// that removes it. A hermetic job's holds only its files, checked out of
// the mirror; any other job's is a view of the commit's shared checkout,
// which is released once the view is gone.
func (a *attempt) workspace(ctx, execCtx context.Context) (*workspace.Workspace, func(), error) {
	l, r := a.l, a.r
	root := attemptRoot(r.WorkDir, l.AttemptID)
	remove := func(w *workspace.Workspace) {
		if err := w.Remove(context.WithoutCancel(ctx)); err != nil {
			a.log.WarnContext(ctx, "removing the workspace", slog.String("dir", w.Dir), slog.Any("err", err))
		}
	}
	if l.Hermetic {
		mirror, err := r.Mirrors.Ensure(execCtx, l.Repo, l.Commit)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot fetch %s at %s: %w", l.Repo, l.Commit, err)
		}
		w, err := workspace.Empty(root)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot prepare the workspace: %w", err)
		}
		if err := a.hermeticCheckout(execCtx, mirror, w.Dir); err != nil {
			remove(w)
			return nil, nil, fmt.Errorf("cannot check out %s: %w", l.Commit, err)
		}
		return w, func() { remove(w) }, nil
	}
	// The commit's checkout is shared; the attempt writes in its own view.
	co, err := r.checkouts.acquire(execCtx, l.Repo, l.Commit)
	if err != nil {
		return nil, nil, err
	}
	w, err := newView(execCtx, r.Workspaces, co, root)
	if err != nil {
		r.checkouts.release(context.WithoutCancel(ctx), co)
		return nil, nil, fmt.Errorf("cannot prepare the workspace: %w", err)
	}
	return w, func() {
		remove(w)
		r.checkouts.release(context.WithoutCancel(ctx), co)
	}, nil
}
