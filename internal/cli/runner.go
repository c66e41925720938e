package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/executor"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/runner"
	"github.com/deltaci/deltaci/internal/workspace"
)

type runnerOptions struct {
	server, registrationToken, workDir, executor, name string
	workspaces                                         string
	labels                                             []string
	capacity                                           int
	grace, drainTimeout                                time.Duration
	workspaceLimit, tmpSize                            byteSize
}

func newRunnerCmd(e env) *cobra.Command {
	var o runnerOptions
	cmd := &cobra.Command{
		Use:   "runner",
		Short: "Run jobs for a Delta CI server",
		Long: `Run the runner agent: register with the server (once; the identity is kept in
--work-dir), lease attempts whose labels this runner has, run each with
--executor in its own copy-on-write view of a checkout of its commit (made
once per commit and shared; see --workspaces), stream its log, upload its
outputs and report how it ended.

The runner always has the label executor:<--executor>, so it only takes jobs
planned for that executor. On SIGINT or SIGTERM it stops taking jobs and
finishes the ones it runs (at most --drain-timeout); a second signal stops
them at once, and the server gives them to another runner.`,
		Example: `  DELTACI_REGISTRATION_TOKEN=secret deltaci runner --server http://ci.example.com:8080
  deltaci runner --server http://127.0.0.1:8080 --executor shell --labels linux,amd64 --capacity 4`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRunner(cmd.Context(), e, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "URL of the Delta CI server (env DELTACI_SERVER)")
	f.StringVar(&o.registrationToken, "registration-token", "", "the server's registration token, needed the first time (env DELTACI_REGISTRATION_TOKEN)")
	f.StringVar(&o.workDir, "work-dir", "", "directory for the identity, the mirror cache and workspaces (env DELTACI_WORK_DIR; default deltaci-runner)")
	f.StringVar(&o.executor, "executor", "sandbox", "where jobs run: sandbox (bubblewrap) or shell (this machine's shell, for trusted jobs)")
	f.StringSliceVar(&o.labels, "labels", nil, "labels of this runner, comma-separated (env DELTACI_LABELS); a job's runs-on labels must all be among them")
	f.IntVar(&o.capacity, "capacity", 1, "attempts run at once")
	f.StringVar(&o.name, "name", "", "name shown for this runner (default the host name)")
	f.DurationVar(&o.grace, "grace", 10*time.Second, "time a canceled job gets between SIGTERM and SIGKILL")
	f.DurationVar(&o.drainTimeout, "drain-timeout", 10*time.Minute, "on shutdown, how long running jobs get to finish")
	f.Var(&o.workspaceLimit, "workspace-limit", "disk space a sandboxed job's workspace and home may take together, e.g. 20GiB; past it the job fails resource_limit (default 10GiB; none for no limit)")
	f.StringVar(&o.workspaces, "workspaces", "auto", workspacesUsage)
	f.Var(&o.tmpSize, "tmp-size", "size of a sandboxed job's /tmp, e.g. 2GiB (default 1GiB; none for the kernel's default)")
	return cmd
}

func runRunner(ctx context.Context, e env, o runnerOptions) error {
	fromEnv(e, &o.server, "DELTACI_SERVER", &o.registrationToken, "DELTACI_REGISTRATION_TOKEN", &o.workDir, "DELTACI_WORK_DIR")
	if err := fromEnvFiles(e, &o.registrationToken, "DELTACI_REGISTRATION_TOKEN"); err != nil {
		return err
	}
	if len(o.labels) == 0 && e.get("DELTACI_LABELS") != "" {
		o.labels = strings.Split(e.get("DELTACI_LABELS"), ",")
	}
	if o.server == "" {
		return usage(fmt.Errorf("--server is required (or DELTACI_SERVER), e.g. http://127.0.0.1:8080"))
	}
	if !strings.HasPrefix(o.server, "http://") && !strings.HasPrefix(o.server, "https://") {
		return usage(fmt.Errorf("--server %q: give an http:// or https:// URL", o.server))
	}
	o.server = strings.TrimRight(o.server, "/")
	if o.capacity < 1 {
		return usage(fmt.Errorf("--capacity must be at least 1, got %d", o.capacity))
	}
	if o.workDir == "" {
		o.workDir = "deltaci-runner"
	}
	if o.name == "" {
		o.name, _ = os.Hostname()
	}
	method, err := workspace.ParseMethod(o.workspaces)
	if err != nil {
		return usage(fmt.Errorf("--workspaces: %w", err))
	}
	log := newJSONLogger(e.stdout)
	exec, err := newExecutor(o.executor, log, executor.Limits{WorkspaceSize: int64(o.workspaceLimit), TmpSize: int64(o.tmpSize)})
	if err != nil {
		return err
	}
	workDir, err := filepath.Abs(o.workDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(workDir, "ws"), 0o700); err != nil {
		return fmt.Errorf("--work-dir: %w", err)
	}
	views, err := workspace.New(ctx, log, method, filepath.Join(workDir, "ws"))
	if err != nil {
		return fmt.Errorf("--workspaces: %w", err)
	}
	log.Info("workspaces", slog.String("method", string(views.Method())))
	labels := append([]string{api.ExecutorLabel(o.executor)}, o.labels...)
	client := &protocol.Client{BaseURL: o.server}
	sess := &runner.Session{
		Client: client, RegistrationToken: o.registrationToken, Dir: workDir,
		Register: protocol.RegisterRequest{Name: o.name, Labels: labels},
	}
	client.Token, client.OnUnauthorized = sess.Token, sess.Invalidate
	id, err := openSession(ctx, sess, log)
	if err != nil {
		return err
	}
	log.Info("runner ready", slog.String("runner_id", id.RunnerID), slog.String("server", o.server),
		slog.Any("labels", labels), slog.Int("capacity", o.capacity))

	// ctx ending starts the drain; a second signal or the drain timeout
	// stops running jobs.
	hard, stopHard := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHard()
	go func() {
		<-ctx.Done()
		log.Info("draining: no new jobs; waiting for the running ones", slog.Duration("timeout", o.drainTimeout))
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		select {
		case <-sig:
		case <-time.After(o.drainTimeout):
		case <-hard.Done():
		}
		stopHard()
	}()
	r := &runner.Remote{
		Client: client, StoreURL: o.server + api.StorePrefix, Exec: exec,
		Mirrors: gitx.Mirrors{Dir: filepath.Join(workDir, "mirrors")}, Workspaces: views, WorkDir: workDir,
		Capacity: o.capacity, BaseEnv: jobBaseEnv(e), Grace: o.grace, Log: log,
	}
	err = r.Run(hard, ctx)
	log.Info("runner stopped")
	return err
}

// openSession registers or loads the identity, retrying while the server
// is unreachable (a runner may start before its server).
func openSession(ctx context.Context, sess *runner.Session, log *slog.Logger) (runner.Identity, error) {
	delay := 500 * time.Millisecond
	for {
		id, err := sess.Open(ctx)
		if err == nil {
			_, err = sess.Token(ctx)
		}
		if err == nil || !protocol.IsTransient(err) || ctx.Err() != nil {
			return id, err
		}
		log.Warn("server unreachable; retrying", slog.Duration("in", delay), slog.Any("err", err))
		select {
		case <-ctx.Done():
			return id, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// jobBaseEnv is what a job's environment starts from on a runner: enough to
// find tools, nothing of the runner's own settings or secrets. Not its
// HOME either, with either executor: each job has a home of its own (see
// runner.Remote), so that no job reads or changes the runner user's files,
// nor another job's caches.
func jobBaseEnv(e env) []string {
	var out []string
	for _, k := range []string{"PATH", "LANG", "LC_ALL", "TZ"} {
		if v := e.get(k); v != "" {
			out = append(out, k+"="+v)
		}
	}
	if e.get("PATH") == "" {
		out = append(out, "PATH=/usr/local/bin:/usr/bin:/bin")
	}
	return out
}
