//go:build unix

package executor

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// shellPath is absolute because the job's Env (and so its PATH) belongs to
// the job, not to the lookup of the shell itself.
const shellPath = "/bin/sh"

// Once the job's process group is dead, the output pipe can only stay open
// if a process left the group. Reading stops after drainIdle without data, or
// drainMax in total, so such a process cannot hold Run forever.
const (
	drainIdle = 2 * time.Second
	drainMax  = 10 * time.Second
)

// Shell runs jobs with the host's /bin/sh, for trusted runners.
//
// The job's process tree is the process group that Run starts the shell in.
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

// stopCause is why Run had to stop a job that had not exited on its own.
type stopCause int

const (
	notStopped stopCause = iota
	stopTimeout
	stopCanceled
	stopOutputFailed
)

func (c stopCause) String() string {
	return [...]string{"none", "timeout", "canceled", "output failed"}[c]
}

// Run implements Executor. See Executor for the lifecycle.
func (s *Shell) Run(ctx context.Context, spec Spec, out io.Writer) (Result, error) {
	if err := spec.validate(out); err != nil {
		return Result{}, err
	}
	res := Result{ExitCode: -1, StartedAt: time.Now()}
	if ctx.Err() != nil {
		return res.end(core.AttemptCanceled, core.ReasonCanceled, ""), nil
	}
	if msg := checkDir(spec.Dir); msg != "" {
		return res.end(core.AttemptErrored, core.ReasonInfraError, msg), nil
	}

	// One pipe for stdout and stderr keeps their interleaving and lets us
	// decide when to stop reading, which exec.Cmd's own copying does not.
	pr, pw, err := os.Pipe()
	if err != nil {
		return res.end(core.AttemptErrored, core.ReasonInfraError, "creating output pipe: "+err.Error()), nil
	}
	cmd := &exec.Cmd{
		Path:        shellPath,
		Args:        []string{"sh", "-e", "-c", spec.Script},
		Dir:         spec.Dir,
		Env:         append(make([]string, 0, len(spec.Env)), spec.Env...), // non-nil: nil would inherit ours
		Stdout:      pw,
		Stderr:      pw,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	res.StartedAt = time.Now()
	err = cmd.Start()
	pw.Close() // the child has its copy; ours would keep the pipe open forever
	if err != nil {
		pr.Close()
		return res.end(core.AttemptErrored, core.ReasonInfraError, "starting shell: "+err.Error()), nil
	}
	pid := cmd.Process.Pid // also the process group id, thanks to Setpgid
	log := s.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.Int("pid", pid))
	log.LogAttrs(ctx, slog.LevelDebug, "job started", slog.String("dir", spec.Dir))

	p := &pump{r: pr, out: out, failed: make(chan struct{}), done: make(chan struct{})}
	go p.run()

	exited := make(chan struct{})
	var reaped bool
	var waitErr error
	go func() {
		defer close(exited)
		if waitExited(pid) != nil {
			// This platform cannot wait without reaping: the final group kill
			// below then has a small window in which the group id could be reused.
			waitErr, reaped = cmd.Wait(), true
		}
	}()

	cause := s.supervise(ctx, log, spec, pid, exited, p.failed)
	// A job may not leave processes behind. The leader is not reaped yet, so
	// its pid, and so the group id, still belongs to this job.
	signalGroup(ctx, log, pid, syscall.SIGKILL)
	if !reaped {
		waitErr = cmd.Wait()
	}
	if p.drain() {
		log.LogAttrs(ctx, slog.LevelWarn, "job output still open after its process group was killed; a process left the group and was not stopped")
	}

	res.FinishedAt = time.Now()
	res.classify(cause, cmd.ProcessState, waitErr, p.err)
	log.LogAttrs(ctx, slog.LevelDebug, "job finished",
		slog.String("state", string(res.State)), slog.Int("exit_code", res.ExitCode))
	return res, nil
}

// supervise waits for the shell to exit, stopping the job first if the
// timeout elapses, ctx is canceled or the output fails. It returns only after
// the shell has exited.
func (s *Shell) supervise(ctx context.Context, log *slog.Logger, spec Spec, pgid int, exited, outFailed <-chan struct{}) stopCause {
	var deadline <-chan time.Time
	if spec.Timeout > 0 {
		t := time.NewTimer(spec.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	var cause stopCause
	select {
	case <-exited:
		return notStopped
	case <-deadline:
		cause = stopTimeout
	case <-ctx.Done():
		cause = stopCanceled
	case <-outFailed:
		cause = stopOutputFailed
	}

	log.LogAttrs(ctx, slog.LevelInfo, "stopping job", slog.String("cause", cause.String()))
	signalGroup(ctx, log, pgid, syscall.SIGTERM)
	grace := time.NewTimer(spec.grace())
	defer grace.Stop()
	select {
	case <-exited:
	case <-grace.C:
		log.LogAttrs(ctx, slog.LevelInfo, "job ignored SIGTERM for the grace period; killing it",
			slog.Duration("grace", spec.grace()))
		signalGroup(ctx, log, pgid, syscall.SIGKILL)
		<-exited
	}
	return cause
}

// signalGroup sends sig to every process of the group. ESRCH only means the
// group is already gone.
func signalGroup(ctx context.Context, log *slog.Logger, pgid int, sig syscall.Signal) {
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		log.LogAttrs(ctx, slog.LevelWarn, "signaling job process group",
			slog.String("signal", sig.String()), slog.String("error", err.Error()))
	}
}

func checkDir(dir string) string {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "working directory does not exist: " + dir
	case err != nil:
		return "working directory: " + err.Error()
	case !fi.IsDir():
		return "working directory is not a directory: " + dir
	}
	return ""
}

func (r Result) end(state core.AttemptState, reason core.Reason, msg string) Result {
	r.State, r.Reason, r.Err = state, reason, msg
	r.FinishedAt = time.Now()
	return r
}

// classify fills in how the job ended. Why Run stopped the job wins over the
// exit status it died with.
func (r *Result) classify(cause stopCause, ps *os.ProcessState, waitErr, outErr error) {
	if ps != nil {
		r.ExitCode = ps.ExitCode()
	}
	var exitErr *exec.ExitError
	switch {
	case cause == stopTimeout:
		r.State, r.Reason = core.AttemptTimedOut, core.ReasonTimeout
	case cause == stopCanceled:
		r.State, r.Reason = core.AttemptCanceled, core.ReasonCanceled
	case outErr != nil:
		r.State, r.Reason, r.Err = core.AttemptErrored, core.ReasonInfraError, "writing job output: "+outErr.Error()
	case waitErr != nil && !errors.As(waitErr, &exitErr):
		r.State, r.Reason, r.Err = core.AttemptErrored, core.ReasonInfraError, "waiting for shell: "+waitErr.Error()
	case r.ExitCode == 0:
		r.State, r.Reason = core.AttemptSucceeded, core.ReasonNone
	default:
		r.State, r.Reason = core.AttemptFailed, core.ReasonExitCode
	}
}

// pump copies the job's output pipe to out. After out fails it keeps reading
// and discards, so that a full pipe never blocks the job before it is stopped.
type pump struct {
	r        *os.File
	out      io.Writer
	failed   chan struct{} // closed on the first write error
	done     chan struct{} // closed when reading has stopped
	draining atomic.Int64  // unix nanos when drain began; 0 before
	err      error         // first write error; read after failed or done
	timedOut bool          // reading stopped on the drain deadline; read after done
}

func (p *pump) run() {
	defer close(p.done)
	buf := make([]byte, 32<<10)
	for {
		if start := p.draining.Load(); start != 0 {
			p.setDeadline(time.Unix(0, start))
		}
		n, rerr := p.r.Read(buf)
		if n > 0 && p.err == nil {
			if w, werr := p.out.Write(buf[:n]); werr != nil || w < n {
				if werr == nil {
					werr = io.ErrShortWrite
				}
				p.err = werr
				close(p.failed)
			}
		}
		if rerr != nil {
			p.timedOut = errors.Is(rerr, os.ErrDeadlineExceeded)
			return
		}
	}
}

// setDeadline bounds the next read: data already in the pipe is always read,
// only waiting for more is limited.
func (p *pump) setDeadline(drainStart time.Time) {
	d := time.Now().Add(drainIdle)
	if limit := drainStart.Add(drainMax); d.After(limit) {
		d = limit
	}
	_ = p.r.SetReadDeadline(d) // pipes from os.Pipe support deadlines
}

// drain waits for the pump to reach the end of the output, bounded by the
// drain deadlines, and closes the pipe. It reports whether reading was cut
// off, which means a process outside the job's group still held the pipe.
func (p *pump) drain() bool {
	start := time.Now()
	p.draining.Store(start.UnixNano())
	p.setDeadline(start) // the pump may be blocked in a read without one
	<-p.done
	p.r.Close()
	return p.timedOut
}
