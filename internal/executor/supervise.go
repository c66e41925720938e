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

// Once the job's process tree is dead, the output pipe can only stay open
// if a process left the tree. Reading stops after drainIdle without data, or
// drainMax in total, so such a process cannot hold Run forever.
const (
	drainIdle = 2 * time.Second
	drainMax  = 10 * time.Second
)

// stopCause is why Run had to stop a job that had not exited on its own.
type stopCause int

const (
	notStopped stopCause = iota
	stopTimeout
	stopCanceled
	stopOutputFailed
	stopResourceLimit
)

func (c stopCause) String() string {
	return [...]string{"none", "timeout", "canceled", "output failed", "resource limit"}[c]
}

// begin is the part of Run that every executor shares before it starts
// anything: misuse is an error, and a done ctx ends the job before it begins.
func begin(ctx context.Context, spec Spec, out io.Writer) (res Result, done bool, err error) {
	if err := spec.validate(out); err != nil {
		return Result{}, true, err
	}
	res = Result{ExitCode: -1, StartedAt: time.Now()}
	if ctx.Err() != nil {
		return res.end(core.AttemptCanceled, core.ReasonCanceled, ""), true, nil
	}
	return res, false, nil
}

// signalFunc sends a signal to every process of a started job that the
// executor can reach.
type signalFunc func(sig syscall.Signal)

// watched is what watch learned while it supervised a job to its end.
type watched struct {
	cause    stopCause
	state    *os.ProcessState // of the process Run started; nil if Wait failed early
	waitErr  error
	outErr   error // first error writing to out
	setupErr error // the setup hook failed; the job was killed without a grace
	cutOff   bool  // reading output stopped on the drain deadline
}

// watch supervises a started job until all of it is gone or killed, and
// reaps cmd. It copies pr, the read end of the job's only output pipe, to
// out, and closes pr. signal must reach the job's whole process tree.
//
// setup, if not nil, runs once the output is being read and before the
// timeout starts; if it fails, the job is killed at once and the error is
// returned in watched.setupErr.
//
// overLimit, if not nil, is closed when the job has gone past a resource
// limit; the job is then killed at once.
//
// After the started process has exited (on its own or because the job was
// stopped), whatever remains of the tree is killed: a job may not leave
// processes behind.
func watch(ctx context.Context, log *slog.Logger, spec Spec, cmd *exec.Cmd, pr *os.File, out io.Writer, signal signalFunc, setup func() error, overLimit <-chan struct{}) watched {
	pid := cmd.Process.Pid
	p := &pump{r: pr, out: out, failed: make(chan struct{}), done: make(chan struct{})}
	go p.run()

	exited := make(chan struct{})
	var reaped bool
	var waitErr error
	go func() {
		defer close(exited)
		if waitExited(pid) != nil {
			// This platform cannot wait without reaping: the final kill below
			// then has a small window in which the process id could be reused.
			waitErr, reaped = cmd.Wait(), true
		}
	}()

	var w watched

	if setup != nil {
		w.setupErr = setup()
	}
	if w.setupErr == nil {
		w.cause = supervise(ctx, log, spec, signal, exited, p.failed, overLimit)
	} else {
		signal(syscall.SIGKILL)
		<-exited
	}
	// The started process is not reaped yet, so its pid, and so a process
	// group named after it, still belongs to this job.
	signal(syscall.SIGKILL)
	if !reaped {
		waitErr = cmd.Wait()
	}
	w.state, w.waitErr = cmd.ProcessState, waitErr
	w.cutOff = p.drain()
	w.outErr = p.err
	return w
}

// supervise waits for the started process to exit, stopping the job first
// if the timeout elapses, ctx is canceled, the output fails or overLimit is
// closed. It returns only after that process has exited.
func supervise(ctx context.Context, log *slog.Logger, spec Spec, signal signalFunc, exited, outFailed, overLimit <-chan struct{}) stopCause {
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
	case <-overLimit:
		cause = stopResourceLimit
	}

	log.LogAttrs(ctx, slog.LevelInfo, "stopping job", slog.String("cause", cause.String()))
	if cause == stopResourceLimit {
		// No grace: a job past a disk limit would go on writing through it.
		signal(syscall.SIGKILL)
		<-exited
		return cause
	}
	signal(syscall.SIGTERM)
	grace := time.NewTimer(spec.grace())
	defer grace.Stop()
	select {
	case <-exited:
	case <-grace.C:
		log.LogAttrs(ctx, slog.LevelInfo, "job ignored SIGTERM for the grace period; killing it",
			slog.Duration("grace", spec.grace()))
		signal(syscall.SIGKILL)
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

// checkDirs checks that the job's working directory and, when it has one,
// its home are directories; it returns what is wrong, or "".
func checkDirs(spec Spec) string {
	if msg := checkDir("working directory", spec.Dir); msg != "" || spec.Home == "" {
		return msg
	}
	return checkDir("home directory", spec.Home)
}

func checkDir(what, dir string) string {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return what + " does not exist: " + dir
	case err != nil:
		return what + ": " + err.Error()
	case !fi.IsDir():
		return what + " is not a directory: " + dir
	}
	return ""
}

// orDiscard lets the zero value of an executor log nothing.
func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

func (r Result) end(state core.AttemptState, reason core.Reason, msg string) Result {
	r.State, r.Reason, r.Err = state, reason, msg
	r.FinishedAt = time.Now()
	return r
}

// exitCode is the status a process exited with, or -1 if a signal ended it
// or it was never waited for.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	return ps.ExitCode()
}

// classify fills in how the job ended. Why Run stopped the job wins over the
// exit status it died with. waited names the process Run waited for.
func (r *Result) classify(cause stopCause, code int, waited string, waitErr, outErr error) {
	r.ExitCode = code
	var exitErr *exec.ExitError
	switch {
	case cause == stopTimeout:
		r.State, r.Reason = core.AttemptTimedOut, core.ReasonTimeout
	case cause == stopCanceled:
		r.State, r.Reason = core.AttemptCanceled, core.ReasonCanceled
	case cause == stopResourceLimit:
		r.State, r.Reason = core.AttemptFailed, core.ReasonResourceLimit
	case outErr != nil:
		r.State, r.Reason, r.Err = core.AttemptErrored, core.ReasonInfraError, "writing job output: "+outErr.Error()
	case waitErr != nil && !errors.As(waitErr, &exitErr):
		r.State, r.Reason, r.Err = core.AttemptErrored, core.ReasonInfraError, "waiting for "+waited+": "+waitErr.Error()
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
	// As large as the pipe, so that one read takes what a fast job left.
	buf := make([]byte, 1<<20)
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
// off, which means a process outside the job's tree still held the pipe.
func (p *pump) drain() bool {
	start := time.Now()
	p.draining.Store(start.UnixNano())
	p.setDeadline(start) // the pump may be blocked in a read without one
	<-p.done
	p.r.Close()
	return p.timedOut
}
