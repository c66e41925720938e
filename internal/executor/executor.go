// Package executor runs one job script and reports how it ended. It owns the
// Executor contract and its two implementations: Shell runs the script with
// the host's /bin/sh, for trusted runners; Sandbox runs it inside a
// bubblewrap (bwrap) sandbox, for untrusted runs.
//
// # What the sandbox covers
//
// A Sandbox job runs in new user, mount, PID, IPC, UTS, cgroup and network
// namespaces, with every capability dropped and without the right to make
// user namespaces of its own. That keeps a hostile job from:
//
//   - changing the host: the workspace (Spec.Dir) and the job's home
//     (Spec.Home) are the only writable host paths; /usr, the system directories and a short list of /etc files are
//     read-only, /tmp and /dev/shm are private tmpfs mounts of limited size,
//     and the rest of the filesystem (home directories, other workspaces,
//     the runner's own files) is absent;
//   - filling the disk through its workspace or home: a job whose
//     workspace and home together grow past Limits.WorkspaceSize (10 GiB
//     by default) is killed;
//   - reading what it was not given: its environment is exactly Spec.Env, and
//     /etc/shadow, SSH host keys and TLS private keys are not mounted;
//   - using the network unless Spec.Network is set, including the runner's
//     loopback services, the cloud metadata address and abstract Unix
//     sockets (D-Bus, X11);
//   - reaching the runner's host even with Spec.Network: the job's network
//     namespace is its own, connected by a user-mode network stack that
//     forwards no port, and the host's loopback and every address of its
//     interfaces lead back into the sandbox, whatever interface or address
//     form the job uses;
//   - seeing or signaling the runner's processes or other jobs (PID and IPC
//     namespaces);
//   - pushing keystrokes into the runner's terminal with TIOCSTI
//     (CVE-2017-5226): it runs in a new session without a controlling
//     terminal, and its stdin is /dev/null;
//   - outliving its attempt: every process of the job, even one that called
//     setsid or daemonized, dies with the PID namespace;
//   - fork bombs, descriptor leaks and runaway files: rlimits bound processes,
//     open files, address space and file size (see Limits).
//
// It does not cover:
//
//   - kernel exploits: there is no seccomp filter yet;
//   - exhausting memory, CPU or I/O: there is no cgroup yet. The address
//     space limit is per process and not a memory limit, the tmpfs mounts
//     take memory up to their sizes, and the kernel does not enforce the
//     process limit for root. The workspace's size is measured every 2
//     seconds, so a job can write past its cap for that long;
//   - a runner that runs as root: the job is then uid 0 without capabilities,
//     mapped to root on the host, so a sandbox escape is root. Run runners as
//     an unprivileged user;
//   - what a job with Spec.Network reaches beside the host's addresses:
//     anything the host can reach, such as its local network, the cloud
//     metadata address (169.254.169.254), and containers or virtual machines
//     on the host at their own addresses (its multicast and broadcast
//     are dropped, since the stack would repeat them on the host). With
//     pasta, DNS queries go to the host's name
//     server, even one on the host's loopback (UDP port 53 of that address
//     only). An address the host gains after the job started is not kept
//     from it;
//   - secrets in what is mounted: everything in the workspace, the system
//     directories and any extra read-only path the operator configured is
//     readable by the job;
//   - side channels (timing, CPU and kernel information in /proc and uname).
package executor

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// DefaultGrace is how long a job gets between SIGTERM and SIGKILL when
// Spec.Grace is zero.
const DefaultGrace = 10 * time.Second

// Executor runs a job's script to completion.
//
// Lifecycle of Run:
//
//   - Run validates spec. Misuse (an empty script, an empty Dir, a relative
//     Home, a negative Timeout or Grace, a nil out) returns a *core.Error of KindInvalid and
//     starts nothing. Every other outcome is a Result with a nil error: a job
//     that fails is a Result, not an error.
//   - If ctx is already done, nothing is started and the Result is
//     AttemptCanceled/ReasonCanceled.
//   - Setup failure (Dir or Home missing or not a directory, the shell
//     cannot be started) gives AttemptErrored/ReasonInfraError with a short
//     message in Result.Err and ExitCode -1.
//   - The script's stdout and stderr both go to out, interleaved in the order
//     the job wrote them; writes to out are serialized (never concurrent).
//     If out returns an error the job is stopped as below and the Result is
//     AttemptErrored/ReasonInfraError, because its log is lost.
//   - Exit status 0 gives AttemptSucceeded/ReasonNone; any other status gives
//     AttemptFailed/ReasonExitCode with ExitCode set.
//   - An implementation that enforces a resource limit (Sandbox, for the
//     workspace's size) kills a job past it at once, without a grace: the
//     Result is AttemptFailed/ReasonResourceLimit with ExitCode -1 and Err
//     saying which limit.
//   - When Spec.Timeout elapses the job is stopped and the Result is
//     AttemptTimedOut/ReasonTimeout. When ctx is canceled the job is stopped
//     and the Result is AttemptCanceled/ReasonCanceled. Stopping means SIGTERM
//     to the job's whole process tree (for Shell, its process group), up to
//     Spec.Grace for it to exit, then SIGKILL to what remains. ExitCode is
//     the script's own status if it exited during the grace, or -1 if a
//     signal ended it.
//   - A job may not leave processes behind: whatever remains of its process
//     tree when the script exits is killed, even after a success.
//   - Run returns only after every process of the job is gone or killed and
//     out will not be written again, so the caller may close or reuse out.
//
// Implementations say how far their "process tree" reaches.
type Executor interface {
	Run(ctx context.Context, spec Spec, out io.Writer) (Result, error)
}

// Spec is what to run and under which limits.
type Spec struct {
	// Script is run as `sh -e -c Script`.
	Script string
	// Dir is the working directory. It must exist; a missing one is an
	// infra error, not misuse, because workspaces are prepared at run time.
	Dir string
	// WrittenDir, when set, is where what the job writes to Dir lands on
	// disk: the upper layer of a copy-on-write workspace, whose Dir also
	// shows the shared tree under it. Sandbox measures it, not Dir, against
	// Limits.WorkspaceSize, so the shared tree does not count, and walking
	// it costs what the job wrote.
	WrittenDir string
	// Env is the complete environment as KEY=VALUE. The executor adds nothing
	// from its own environment, so that jobs see only what the caller chose
	// (no runner secrets leak in), except HOME and XDG_CACHE_HOME with a
	// Home. A nil Env means an empty environment.
	Env []string
	// Home, when set, is the job's home directory on the host, an absolute
	// path that the caller created (empty) before Run and removes after
	// it: where tools keep their caches (Go's build and module caches,
	// ~/.npm, ~/.cache/pip), kept apart from the workspace so that the job's
	// outputs stay clean and the home can be restored and saved whole. The
	// job gets HOME=Home and XDG_CACHE_HOME=Home/.cache, over any value of
	// those in Env. Sandbox mounts it read-write at the same path, and
	// counts it with the workspace against Limits.WorkspaceSize. Empty
	// keeps Env's HOME, if any: a Sandbox job has no writable home then.
	Home string
	// Timeout bounds the job's wall-clock time; zero means no limit.
	Timeout time.Duration
	// Grace is the time between SIGTERM and SIGKILL; zero means DefaultGrace.
	Grace time.Duration
	// Network gives a sandboxed job a network (sandbox.network in the
	// pipeline): outbound access through a user-mode network stack, with
	// the runner's host itself out of reach; see Sandbox. Without it the
	// job has only its own loopback. Shell ignores it: a shell job always
	// has the host's network.
	Network bool
	// Started, when set, is called once the job's first process runs, with
	// its pid, which is also the id of the job's process group: a runner
	// records it to stop the job's processes if it is killed itself.
	Started func(pid int)
}

func (s Spec) grace() time.Duration {
	if s.Grace == 0 {
		return DefaultGrace
	}
	return s.Grace
}

// env is the job's environment: Env, with HOME and XDG_CACHE_HOME set to
// the job's home when it has one.
func (s Spec) env() []string {
	if s.Home == "" {
		return s.Env
	}
	env := make([]string, 0, len(s.Env)+2)
	for _, kv := range s.Env {
		if k, _, _ := strings.Cut(kv, "="); k != "HOME" && k != "XDG_CACHE_HOME" {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+s.Home, "XDG_CACHE_HOME="+filepath.Join(s.Home, ".cache"))
}

func (s Spec) validate(out io.Writer) error {
	const op = "executor: run"
	switch {
	case s.Script == "":
		return core.E(core.KindInvalid, op, "empty script")
	case s.Dir == "":
		// The runner's own working directory is never a sane default.
		return core.E(core.KindInvalid, op, "empty working directory")
	case s.Timeout < 0:
		return core.E(core.KindInvalid, op, "negative timeout %s", s.Timeout)
	case s.Grace < 0:
		return core.E(core.KindInvalid, op, "negative grace %s", s.Grace)
	case s.Home != "" && !filepath.IsAbs(s.Home):
		return core.E(core.KindInvalid, op, "home directory is not an absolute path: %q", s.Home)
	case out == nil:
		return core.E(core.KindInvalid, op, "nil output writer")
	}
	return nil
}

// Result is how a job ended.
type Result struct {
	// State is one of AttemptSucceeded, AttemptFailed, AttemptTimedOut,
	// AttemptCanceled or AttemptErrored.
	State core.AttemptState
	// Reason is ReasonNone for a success, else ReasonExitCode,
	// ReasonTimeout, ReasonCanceled, ReasonInfraError or, for an
	// AttemptFailed job that went past a resource limit,
	// ReasonResourceLimit.
	Reason core.Reason
	// ExitCode is the script's exit status, or -1 when a signal ended it or
	// it never started.
	ExitCode int
	// StartedAt and FinishedAt bracket the job, including the time spent
	// stopping it.
	StartedAt  time.Time
	FinishedAt time.Time
	// Err is a short human message for infra errors, such as "working
	// directory does not exist", and for resource limits, saying which;
	// empty otherwise.
	Err string
}

// Duration is how long the job took.
func (r Result) Duration() time.Duration { return r.FinishedAt.Sub(r.StartedAt) }
