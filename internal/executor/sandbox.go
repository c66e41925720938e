//go:build unix

package executor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// msgNoBwrap is what a runner says when it cannot sandbox: never a silent
// fallback to the shell.
const msgNoBwrap = "bubblewrap (bwrap) is not installed: install the bubblewrap package or run this runner with --executor shell"

// NoLimit in a Limits field lifts that limit: an rlimit stays the runner's
// own, a tmpfs gets the kernel's default size, the workspace is not
// measured.
const NoLimit int64 = -1

// Default limits; see Limits.
const (
	defaultMaxProcesses  = 4096
	defaultOpenFiles     = 65536
	defaultAddressSpace  = 64 << 30
	defaultFileSize      = 16 << 30
	defaultTmpSize       = 1 << 30
	defaultShmSize       = 64 << 20
	defaultWorkspaceSize = 10 << 30
)

// Limits bound a sandboxed job. Zero in a field means its default.
//
// The first four are rlimits of every process of the job, soft and hard
// alike, so the job cannot raise them. NoLimit keeps the runner's own limit,
// and a value above the runner's hard limit is lowered to it (only root
// could raise a hard limit).
//
// The last three bound the job's disk space. The tmpfs sizes are in RAM
// (and swap) and count for the memory of the runner's machine; NoLimit
// leaves a tmpfs at the kernel's default size, half of the RAM.
type Limits struct {
	// MaxProcesses is RLIMIT_NPROC, the processes and threads the job's user
	// may have; default 4096, enough for parallel builds, not for a fork
	// bomb. With a user namespace (Linux 5.14 or later) it counts the job's
	// own processes only. The kernel does not enforce it for root.
	MaxProcesses int64
	// OpenFiles is RLIMIT_NOFILE, open descriptors per process; default 65536.
	OpenFiles int64
	// AddressSpace is RLIMIT_AS in bytes, per process; default 64 GiB. It is
	// a backstop against one runaway process, not a memory limit: it is set
	// high because JVM heaps, V8 and WebAssembly runtimes reserve address
	// space up front. AddressSanitizer needs NoLimit.
	AddressSpace int64
	// FileSize is RLIMIT_FSIZE in bytes, the largest file a process may
	// write; default 16 GiB. A process that writes past it gets SIGXFSZ.
	FileSize int64

	// TmpSize is the size of the job's /tmp, a tmpfs, in bytes; default
	// 1 GiB. A write past it fails with ENOSPC.
	TmpSize int64
	// ShmSize is the size of the job's /dev/shm, a tmpfs, in bytes; default
	// 64 MiB, as in Docker. The rest of /dev is read-only.
	ShmSize int64
	// WorkspaceSize caps the disk space of the job's workspace (Spec.Dir,
	// or what the job wrote there, Spec.WrittenDir, when the workspace is
	// a view of a shared tree) and its home (Spec.Home) together, in
	// bytes; default 10 GiB, NoLimit for none. The home counts because it
	// is on the runner's disk as much as the workspace, caches restored
	// into it included. The runner measures them every 2 seconds, as du
	// does (allocated blocks, hard links once), and kills a job past the
	// cap at once: it fails with core.ReasonResourceLimit. The cap is
	// approximate: a job may write past it for up to the interval before
	// it is noticed, and a workspace of many files is measured less often,
	// so that measuring takes at most about a twentieth of a CPU.
	WorkspaceSize int64
}

func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxProcesses, defaultMaxProcesses)
	def(&l.OpenFiles, defaultOpenFiles)
	def(&l.AddressSpace, defaultAddressSpace)
	def(&l.FileSize, defaultFileSize)
	def(&l.TmpSize, defaultTmpSize)
	def(&l.ShmSize, defaultShmSize)
	def(&l.WorkspaceSize, defaultWorkspaceSize)
	return l
}

// fields returns every limit, for validation.
func (l Limits) fields() []int64 {
	return []int64{l.MaxProcesses, l.OpenFiles, l.AddressSpace, l.FileSize, l.TmpSize, l.ShmSize, l.WorkspaceSize}
}

// SandboxOptions configure a Sandbox. The zero value is usable.
type SandboxOptions struct {
	// Bwrap is the path of the bwrap binary; empty means "bwrap" looked up
	// on PATH.
	Bwrap string
	// Limits bound every process of a job.
	Limits Limits
	// ReadOnly lists extra absolute host paths that jobs may read, mounted
	// read-only at the same path: a toolchain under /opt, say. The defaults
	// are in the Sandbox documentation.
	ReadOnly []string
	// Pasta and Slirp4netns are the paths of the network stacks for jobs
	// with Spec.Network; empty means "pasta" and "slirp4netns" looked up on
	// PATH, then in /usr/sbin, /sbin, /usr/bin and /bin. Pasta is used when
	// it is found, else slirp4netns. Without either, such jobs fail with an
	// infra error; the others still run.
	Pasta       string
	Slirp4netns string
}

// Sandbox runs each job inside a bubblewrap (bwrap) sandbox, for untrusted
// runs. The package documentation says what it protects against.
//
// The job sees, read-only: /usr (so /usr/local too), /bin, /sbin and the
// /lib directories (recreated as symlinks on merged-/usr systems), the
// SandboxOptions.ReadOnly paths, and from /etc only passwd, group,
// nsswitch.conf, host.conf, hosts, gai.conf, services, protocols, the
// dynamic linker's ld.so.cache, ld.so.conf and ld.so.conf.d, alternatives,
// the CA certificates (ssl/certs, ssl/openssl.cnf, ca-certificates,
// pki/tls/certs, pki/ca-trust/extracted), localtime, timezone, os-release
// and lsb-release. With Spec.Network it also gets a resolv.conf of its own,
// with the host's search domains and options and the network stack's DNS
// forwarder as name server. It gets a new /proc, a minimal read-only /dev
// with a private tmpfs on /dev/shm, a private tmpfs on /tmp, and the
// workspace (Spec.Dir) read-write at its host path, which is its working
// directory, and its home (Spec.Home, HOME and XDG_CACHE_HOME=HOME/.cache)
// read-write at its host path too, when it has one. Nothing else of the
// host is there; the root itself is read-only. A job without a home has no
// writable HOME: tools that keep caches there (go, npm, pip) fail unless
// told to use the workspace or /tmp. Limits says how large the tmpfs
// mounts, and the workspace with the home, may grow.
//
// A job with Spec.Network has a network namespace of its own, connected to
// the outside by a user-mode network stack, pasta (from the passt package)
// or else slirp4netns, which runs on the host as the runner's user while the
// job runs and makes the job's connections with ordinary sockets. The stack
// forwards no port, and traffic to the host's loopback and to every address
// of its interfaces is routed back into the sandbox itself, so the job cannot
// reach a service of the runner's host. It reaches everything else the host
// can: see the package documentation.
//
// The job's process tree is its PID namespace. Stopping it sends SIGTERM to
// the script's process group inside the sandbox (bwrap itself would take the
// sandbox down at once, without a grace), then SIGKILL to the namespace's
// init, which kills every process in the namespace, whatever session or
// group it moved to. bwrap reports a script killed by signal n as exit
// status 128+n, as shells do; Run reports -1 instead only for the SIGTERM
// and SIGKILL it sent itself.
//
// Spec.Env is passed through bwrap's --clearenv and --setenv, so entries
// without "=" are dropped; bwrap adds PWD, the working directory.
//
// A Sandbox needs Linux, bubblewrap 0.8.0 or later (for --disable-userns
// and --size; NewSandbox's check reports an older one with bwrap's own
// message), and unprivileged user namespaces unless the runner runs as
// root. Jobs with Spec.Network also need pasta or slirp4netns, ip
// (iproute2), nsenter (util-linux) and a /dev/net/tun that the runner's
// user may open. A Sandbox may run many jobs at once. The zero Sandbox
// refuses every job; use NewSandbox.
type Sandbox struct {
	logger    *slog.Logger
	bwrap     string
	limits    Limits
	readOnly  []string
	system    []string // bwrap options mounting the system directories and /etc
	net       netTools // what gives jobs with Spec.Network their network
	noNetwork string   // why jobs with Spec.Network are refused; empty when they can run
	unusable  string   // why Run refuses every job; empty when usable
}

var _ Executor = (*Sandbox)(nil)

// NewSandbox finds bwrap, checks that it can create a sandbox here by running
// an empty job in one, and returns a Sandbox that logs to logger (nil
// discards). It also finds the network stack; without one it logs a warning
// and the Sandbox refuses only the jobs with Spec.Network, with an
// errored/infra_error Result that names the package to install.
//
// It always returns a Sandbox. With an error (KindUnavailable when bwrap is
// missing or cannot sandbox on this machine, KindInvalid for bad options),
// that Sandbox refuses every job with an errored/infra_error Result carrying
// the same message, so a runner can refuse sandboxed attempts loudly instead
// of falling back to the shell.
func NewSandbox(logger *slog.Logger, opts SandboxOptions) (*Sandbox, error) {
	const op = "executor: new sandbox"
	s := &Sandbox{logger: orDiscard(logger), limits: opts.Limits.withDefaults()}
	refuse := func(kind core.Kind, msg string) (*Sandbox, error) {
		s.unusable = msg
		return s, core.E(kind, op, "%s", msg)
	}
	if msgUnsupported != "" {
		return refuse(core.KindUnavailable, msgUnsupported)
	}

	for _, v := range opts.Limits.fields() {
		if v < NoLimit {
			return refuse(core.KindInvalid, fmt.Sprintf("sandbox limits: %d is neither a limit nor NoLimit", v))
		}
	}
	for _, p := range opts.ReadOnly {
		if !filepath.IsAbs(p) {
			return refuse(core.KindInvalid, "sandbox read-only path is not absolute: "+p)
		}
		if _, err := os.Stat(p); err != nil {
			return refuse(core.KindInvalid, "sandbox read-only path: "+err.Error())
		}
		s.readOnly = append(s.readOnly, filepath.Clean(p))
	}

	path := opts.Bwrap
	if path == "" {
		path = "bwrap"
	}
	found, err := exec.LookPath(path)
	if err != nil {
		return refuse(core.KindUnavailable, fmt.Sprintf("%s (%v)", msgNoBwrap, err))
	}
	if s.bwrap, err = filepath.Abs(found); err != nil {
		return refuse(core.KindUnavailable, fmt.Sprintf("%s (%v)", msgNoBwrap, err))
	}
	s.system = systemMounts()

	if msg := s.check(); msg != "" {
		return refuse(core.KindUnavailable, msg)
	}
	if s.net, s.noNetwork = findNetTools(opts); s.noNetwork != "" {
		s.logger.LogAttrs(context.Background(), slog.LevelWarn, "sandboxed jobs that ask for the network will fail",
			slog.String("reason", s.noNetwork))
	}
	s.logger.LogAttrs(context.Background(), slog.LevelDebug, "sandbox ready",
		slog.String("bwrap", s.bwrap), slog.String("network_stack", s.net.stack))
	return s, nil
}

// Run implements Executor. See Executor for the lifecycle. Setup failures,
// including a missing or unusable bwrap, and a missing network stack for a
// job with Spec.Network, are errored/infra_error Results. A job whose
// workspace grows past Limits.WorkspaceSize is killed at once and fails with
// core.ReasonResourceLimit.
func (s *Sandbox) Run(ctx context.Context, spec Spec, out io.Writer) (Result, error) {
	res, done, err := begin(ctx, spec, out)
	if done {
		return res, err
	}
	switch {
	case s == nil || (s.bwrap == "" && s.unusable == ""):
		return res.end(core.AttemptErrored, core.ReasonInfraError, "sandbox executor not configured: create it with NewSandbox"), nil
	case s.unusable != "":
		return res.end(core.AttemptErrored, core.ReasonInfraError, s.unusable), nil
	case spec.Network && s.noNetwork != "":
		// Never the host's network instead.
		return res.end(core.AttemptErrored, core.ReasonInfraError, s.noNetwork), nil
	}
	if msg := checkDirs(spec); msg != "" {
		return res.end(core.AttemptErrored, core.ReasonInfraError, msg), nil
	}
	// The sandbox has its own working directory: a relative Dir would name
	// the runner's.
	dir, err := filepath.Abs(spec.Dir)
	if err != nil {
		return res.end(core.AttemptErrored, core.ReasonInfraError, "working directory: "+err.Error()), nil
	}
	// The workspace and the home are the read-write mounts: one that holds
	// the system directories would make them writable.
	if holdsSystem(dir) {
		return res.end(core.AttemptErrored, core.ReasonInfraError, "working directory contains system directories, which the sandbox keeps read-only: "+dir), nil
	}
	if spec.Home != "" {
		spec.Home = filepath.Clean(spec.Home)
		if holdsSystem(spec.Home) {
			return res.end(core.AttemptErrored, core.ReasonInfraError, "home directory contains system directories, which the sandbox keeps read-only: "+spec.Home), nil
		}
	}
	return s.run(ctx, spec, dir, out, res), nil
}

// holdsSystem reports whether the clean absolute path dir is or holds a
// system directory that the sandbox mounts read-only.
func holdsSystem(dir string) bool {
	return dir == "/" || within("/usr", dir) || within("/etc", dir)
}

// within reports whether path is dir or below it; both must be clean.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}
