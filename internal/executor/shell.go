//go:build unix

package executor

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// shellPath is absolute because the job's Env (and so its PATH) belongs to
// the job, not to the lookup of the shell itself.
const shellPath = "/bin/sh"

// Shell runs jobs with the host's /bin/sh, for trusted runners.
//
// The job's process tree is the process group that Run starts the shell in,
// in a session of its own: without a controlling terminal, a job cannot
// push keystrokes into the terminal the runner was started from (TIOCSTI).
// A process that leaves that group (setsid, or a nested shell with job
// control) escapes the kill, and its output is cut off after a short drain;
// the sandbox executor closes that gap with a PID namespace.
//
// A Shell may run many jobs at once. The zero Shell is usable and logs nothing.
type Shell struct {
	logger *slog.Logger
}

// NewShell returns a Shell that logs its lifecycle decisions to logger; a nil
// logger discards them.
func NewShell(logger *slog.Logger) *Shell {
	return &Shell{logger: logger}
}

var _ Executor = (*Shell)(nil)

// Run implements Executor. See Executor for the lifecycle.
func (s *Shell) Run(ctx context.Context, spec Spec, out io.Writer) (Result, error) {
	res, done, err := begin(ctx, spec, out)
	if done {
		return res, err
	}
	if msg := checkDirs(spec); msg != "" {
		return res.end(core.AttemptErrored, core.ReasonInfraError, msg), nil
	}

	// One pipe for stdout and stderr keeps their interleaving and lets us
	// decide when to stop reading, which exec.Cmd's own copying does not.
	pr, pw, err := os.Pipe()
	if err != nil {
		return res.end(core.AttemptErrored, core.ReasonInfraError, "creating output pipe: "+err.Error()), nil
	}
	enlarge(pw)
	cmd := &exec.Cmd{
		Path:        shellPath,
		Args:        []string{"sh", "-e", "-c", spec.Script},
		Dir:         spec.Dir,
		Env:         append(make([]string, 0, len(spec.Env)+2), spec.env()...), // non-nil: nil would inherit ours
		Stdout:      pw,
		Stderr:      pw,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	res.StartedAt = time.Now()
	err = cmd.Start()
	pw.Close() // the child has its copy; ours would keep the pipe open forever
	if err != nil {
		pr.Close()
		return res.end(core.AttemptErrored, core.ReasonInfraError, "starting shell: "+err.Error()), nil
	}
	pid := cmd.Process.Pid // also the process group id: Setsid makes a new session and group
	if spec.Started != nil {
		spec.Started(pid)
	}
	log := orDiscard(s.logger).With(slog.Int("pid", pid))
	log.LogAttrs(ctx, slog.LevelDebug, "job started", slog.String("dir", spec.Dir))

	w := watch(ctx, log, spec, cmd, pr, out, func(sig syscall.Signal) {
		signalGroup(ctx, log, pid, sig)
	}, nil, nil)
	if w.cutOff {
		log.LogAttrs(ctx, slog.LevelWarn, "job output still open after its process group was killed; a process left the group and was not stopped")
	}

	res.FinishedAt = time.Now()
	res.classify(w.cause, exitCode(w.state), "shell", w.waitErr, w.outErr)
	log.LogAttrs(ctx, slog.LevelDebug, "job finished",
		slog.String("state", string(res.State)), slog.Int("exit_code", res.ExitCode))
	return res, nil
}
