package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/deltaci/deltaci/internal/core"
)

// msgUnsupported is empty: Linux has what the sandbox needs.
const msgUnsupported = ""

// The descriptors bwrap gets besides stdio, in this order in ExtraFiles.
const (
	fdArgs       = 3 // its options, NUL-separated (--args)
	fdStatus     = 4 // JSON lines: the sandbox's pid, then the script's exit status (--json-status-fd)
	fdBlock      = 5 // the sandbox waits for a byte here before starting the script (--block-fd)
	fdResolvConf = 6 // the sandbox's /etc/resolv.conf, with Spec.Network only (--ro-bind-data)
)

// setupTimeout bounds the wait for bwrap to report its sandbox, which
// normally takes milliseconds; only a wedged bwrap reaches it.
const setupTimeout = 30 * time.Second

// systemDirs are mounted read-only when they exist. /usr/local is part of
// /usr.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// etcPaths is the part of /etc that a shell, git, the dynamic linker, TLS
// clients and a Go toolchain use. The rest (shadow, SSH host keys, TLS
// private keys under /etc/ssl/private, the runner's own configuration) stays
// out of the sandbox.
var etcPaths = []string{
	"/etc/passwd", "/etc/group", // user and group names, for git, ssh and ls -l
	"/etc/nsswitch.conf", "/etc/host.conf", "/etc/hosts", "/etc/gai.conf", // name lookups, localhost
	"/etc/services", "/etc/protocols", // port and protocol names
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", // the dynamic linker
	"/etc/alternatives", // Debian's command links (awk, editor, java)
	"/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/ca-certificates",
	"/etc/pki/tls/certs", "/etc/pki/ca-trust/extracted", // CA certificates (Debian, Red Hat)
	"/etc/localtime", "/etc/timezone",
	"/etc/os-release", "/etc/lsb-release",
}

// systemMounts returns the bwrap options that mount the system directories
// and /etc read-only.
func systemMounts() []string {
	var a []string
	for _, p := range systemDirs {
		a = append(a, readOnlyMount(p)...)
	}
	for _, p := range etcPaths {
		a = append(a, readOnlyMount(p)...)
	}
	return a
}

// readOnlyMount returns the bwrap options that show host path p read-only
// at the same path, or none when p does not exist. A symlink into /usr or
// /proc (/bin -> usr/bin, /etc/localtime) is recreated, so the sandbox looks
// like the host; another symlink (/etc/resolv.conf -> /run/...) is mounted as
// its target's content.
func readOnlyMount(p string) []string {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if target, err := os.Readlink(p); err == nil {
			resolved := target
			if !filepath.IsAbs(resolved) {
				resolved = filepath.Join(filepath.Dir(p), resolved)
			}
			if within(resolved, "/usr") || within(resolved, "/proc") {
				return []string{"--symlink", target, p}
			}
		}
	}
	// -try: the path may be gone by the time a job runs (resolv.conf is often
	// replaced), which is no reason to fail the job.
	return []string{"--ro-bind-try", p, p}
}

// bwrapArgs returns bwrap's options for one job. They go through --args, so
// that Env values never show in the host's process list.
func (s *Sandbox) bwrapArgs(spec Spec, dir string) []string {
	a := []string{"--unshare-all"}
	if spec.Network {
		// The network namespace run made for bwrap, which the network stack
		// attaches to.
		a = append(a, "--share-net")
	}
	a = append(a,
		// --unshare-all only tries for a user namespace, and
		// --disable-userns needs one for sure. Nested user namespaces would
		// open much more of the kernel to the job.
		"--unshare-user", "--disable-userns",
		// With Spec.Network, bwrap is root in the namespace run made for it:
		// the job keeps the runner's ids either way.
		"--uid", strconv.Itoa(os.Geteuid()), "--gid", strconv.Itoa(os.Getegid()),
		"--die-with-parent",
		"--new-session",     // no controlling terminal, so no TIOCSTI (CVE-2017-5226)
		"--cap-drop", "ALL", // bwrap keeps root's capabilities unless told otherwise
		"--clearenv",
	)
	for _, kv := range spec.env() {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			a = append(a, "--setenv", k, v)
		}
	}
	a = append(a,
		"--json-status-fd", strconv.Itoa(fdStatus),
		"--block-fd", strconv.Itoa(fdBlock),
	)
	a = append(a, s.system...)
	if spec.Network {
		a = append(a, "--perms", "0644", "--ro-bind-data", strconv.Itoa(fdResolvConf), "/etc/resolv.conf")
	}
	// bwrap's /dev is a tmpfs without a size limit: it is made read-only,
	// with a tmpfs of limited size for shared memory.
	a = append(a, "--proc", "/proc", "--dev", "/dev")
	a = append(a, tmpfs(s.limits.ShmSize, "/dev/shm")...)
	a = append(a, "--remount-ro", "/dev")
	a = append(a, tmpfs(s.limits.TmpSize, "/tmp")...)
	// After /tmp, so that extra paths and workspaces under /tmp show through.
	for _, p := range s.readOnly {
		a = append(a, "--ro-bind", p, p)
	}
	for _, p := range writable(dir, spec.Home) {
		a = append(a, "--bind", p, p)
	}
	return append(a,
		"--remount-ro", "/", // the root tmpfs that bwrap builds the mounts on
		"--chdir", dir,
	)
}

// writable returns the paths the job may write, the workspace and its home
// (when it has one), each once and an outer one before one inside it, so
// that neither mount hides the other.
func writable(dir, home string) []string {
	switch {
	case home == "" || home == dir:
		return []string{dir}
	case within(dir, home):
		return []string{home, dir}
	}
	return []string{dir, home}
}

// tmpfs returns the bwrap options that mount a tmpfs of size bytes at path.
func tmpfs(size int64, path string) []string {
	if size == NoLimit {
		return []string{"--tmpfs", path}
	}
	return []string{"--size", strconv.FormatInt(size, 10), "--tmpfs", path}
}

// measured returns the directories whose disk use counts against
// Limits.WorkspaceSize: what the job writes to its workspace, and its home,
// which is as much the job's disk (one budget for both); only the outer one
// when one holds the other.
func measured(spec Spec, dir string) []string {
	written := dir
	if spec.WrittenDir != "" {
		written = spec.WrittenDir
	}
	switch {
	case spec.Home == "" || within(spec.Home, dir) || within(spec.Home, written):
		return []string{written}
	case within(written, spec.Home):
		return []string{spec.Home}
	}
	return []string{written, spec.Home}
}

// bwrapStatus is one line of bwrap's --json-status-fd output.
type bwrapStatus struct {
	ChildPid int  `json:"child-pid"` // the sandbox's PID 1, as the host sees it
	ExitCode *int `json:"exit-code"` // only once the script ran and exited
}

// run starts the job in a sandbox and supervises it; Run has checked spec.
func (s *Sandbox) run(ctx context.Context, spec Spec, dir string, out io.Writer, res Result) Result {
	infra := func(msg string) Result { return res.end(core.AttemptErrored, core.ReasonInfraError, msg) }
	var files fileSet
	defer files.closeAll()
	// One pipe for stdout and stderr keeps their interleaving, as in Shell.
	pr, pw, err1 := files.pipe()
	ar, aw, err2 := files.pipe()
	sr, sw, err3 := files.pipe()
	br, bw, err4 := files.pipe()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return infra("creating pipes: " + err.Error())
	}
	enlarge(pw)
	extra := []*os.File{ar, sw, br}
	sys := &syscall.SysProcAttr{Setpgid: true}
	if spec.Network {
		rc, err := s.net.prepare(&files, sys)
		if err != nil {
			return infra("preparing the job's network: " + err.Error())
		}
		extra = append(extra, rc)
	}
	cmd := &exec.Cmd{
		Path:        s.bwrap,
		Args:        []string{"bwrap", "--args", strconv.Itoa(fdArgs), "--", shellPath, "-e", "-c", spec.Script},
		Env:         []string{}, // non-nil: nil would inherit ours; --clearenv covers the job anyway
		Stdout:      pw,
		Stderr:      pw,
		ExtraFiles:  extra,
		SysProcAttr: sys,
	}
	res.StartedAt = time.Now()
	err := cmd.Start()
	for _, f := range append(extra, pw) {
		f.Close() // bwrap has its copies; ours would hold the pipes open
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return infra(fmt.Sprintf("%s (%v)", msgNoBwrap, err))
		}
		return infra("starting bwrap: " + err.Error())
	}
	argsWritten := make(chan struct{})
	go func() {
		defer close(argsWritten)
		// A bwrap that dies before reading makes this fail with EPIPE; its
		// exit is reported below.
		_, _ = aw.Write([]byte(strings.Join(s.bwrapArgs(spec, dir), "\x00") + "\x00"))
		aw.Close()
	}()
	defer func() { <-argsWritten }() // bwrap is reaped by then, so the write has ended

	bwrapPid := cmd.Process.Pid
	if spec.Started != nil {
		spec.Started(bwrapPid) // Setpgid: also its process group
	}
	log := s.logger.With(slog.Int("pid", bwrapPid))
	log.LogAttrs(ctx, slog.LevelDebug, "job started", slog.String("dir", dir), slog.Bool("network", spec.Network))

	status := json.NewDecoder(sr)
	head := &headWriter{w: out, max: 1024}
	var sandboxInit *os.Process // the sandbox's PID 1, once bwrap reports it
	defer func() {
		if sandboxInit != nil {
			_ = sandboxInit.Release()
		}
	}()
	var stack *netStack // the job's network stack, with Spec.Network
	defer func() {
		if stack != nil {
			stack.stop()
		}
	}()

	signal := func(sig syscall.Signal) {
		if sig == syscall.SIGKILL {
			// bwrap first, so that it ends by our signal rather than by
			// reporting the script's death; it is alone in its process group.
			signalGroup(ctx, log, bwrapPid, sig)
			if sandboxInit != nil {
				// The namespace's init dying takes every process in it along.
				if err := sandboxInit.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
					log.LogAttrs(ctx, slog.LevelWarn, "killing sandbox", slog.String("error", err.Error()))
				}
			}
			return
		}
		// Not to bwrap, which would take the sandbox down at once and skip
		// the grace. The sandbox's init leads the session and process group
		// that the script runs in; being a namespace init, it ignores the
		// signal, and the script and its children get it. While init lives,
		// its pid cannot name another group: check it through the pidfd.
		if sandboxInit != nil && sandboxInit.Signal(syscall.Signal(0)) == nil {
			signalGroup(ctx, log, sandboxInit.Pid, sig)
		}
	}

	setup := func() error {
		// The deadline is only for a wedged bwrap: a canceled ctx is noticed
		// as soon as the job is under supervision, and stopping earlier could
		// leave the sandbox's PID 1 unknown and so unkillable.
		_ = sr.SetReadDeadline(time.Now().Add(setupTimeout))
		var st bwrapStatus
		err := status.Decode(&st)
		_ = sr.SetReadDeadline(time.Time{})
		switch {
		case errors.Is(err, io.EOF):
			return errBwrapExited
		case err != nil:
			return fmt.Errorf("reading bwrap's status: %w", err)
		case st.ChildPid <= 0:
			return fmt.Errorf("bwrap reported no sandbox process")
		}
		// On Linux this holds a pidfd, so later signals reach this very
		// process even after its pid is reused.
		if sandboxInit, err = os.FindProcess(st.ChildPid); err != nil {
			return fmt.Errorf("finding the sandbox process: %w", err)
		}
		log.LogAttrs(ctx, slog.LevelDebug, "sandbox created", slog.Int("sandbox_pid", st.ChildPid))
		if spec.Network {
			if stack, err = s.net.connect(bwrapPid); err != nil {
				return fmt.Errorf("the job's network: %w", err)
			}
		}
		// The sandbox waits on fdBlock before it forks the script, so the
		// limits set on its PID 1 now are inherited by every job process.
		if err := setLimits(st.ChildPid, s.limits); err != nil {
			return fmt.Errorf("setting resource limits: %w", err)
		}
		if _, err := bw.Write([]byte{1}); err != nil {
			return fmt.Errorf("starting the script: %w", err)
		}
		return bw.Close()
	}

	wsCap := watchWorkspace(measured(spec, dir), s.limits.WorkspaceSize, workspaceCheckInterval)
	w := watch(ctx, log, spec, cmd, pr, head, signal, setup, wsCap.over)
	wsCap.stop()
	if w.cutOff {
		log.LogAttrs(ctx, slog.LevelWarn, "job output still open after its sandbox was killed")
	}
	res.FinishedAt = time.Now()
	if w.setupErr != nil {
		res.ExitCode = -1
		res.State, res.Reason, res.Err = core.AttemptErrored, core.ReasonInfraError, setupMessage(w.setupErr, head.buf, w.state)
		log.LogAttrs(ctx, slog.LevelWarn, "sandbox setup failed", slog.String("error", res.Err))
		return res
	}

	// bwrap has exited, so the status pipe has no writer left.
	_ = sr.SetReadDeadline(time.Now().Add(time.Second))
	var end bwrapStatus
	ran := status.Decode(&end) == nil && end.ExitCode != nil
	code := exitCode(w.state) // bwrap's own status: -1 when our SIGKILL ended it
	if ran {
		code = *end.ExitCode
		if w.cause != notStopped && (code == 128+int(syscall.SIGTERM) || code == 128+int(syscall.SIGKILL)) {
			code = -1 // our own signal, which Shell reports as -1 too
		}
	}
	res.classify(w.cause, code, "bwrap", w.waitErr, w.outErr)
	if w.cause == stopResourceLimit {
		what := "the workspace"
		if spec.Home != "" {
			what = "the workspace and home"
		}
		res.Err = fmt.Sprintf("%s took %s, past its limit of %s: the job was killed",
			what, formatBytes(wsCap.used), formatBytes(s.limits.WorkspaceSize))
	}
	if !ran && w.cause == notStopped && w.state != nil && w.state.Exited() && res.Reason != core.ReasonInfraError {
		// bwrap exited on its own without the script having run: its own
		// setup failed.
		res.ExitCode = -1
		res.State, res.Reason, res.Err = core.AttemptErrored, core.ReasonInfraError, setupMessage(errBwrapExited, head.buf, w.state)
	}
	log.LogAttrs(ctx, slog.LevelDebug, "job finished",
		slog.String("state", string(res.State)), slog.Int("exit_code", res.ExitCode))
	return res
}

// errBwrapExited means bwrap exited before the script started.
var errBwrapExited = errors.New("bwrap exited before starting the script")

// setupMessage says why the sandbox could not be set up. Nothing of the job
// ran yet, so the start of the output is bwrap's own message.
func setupMessage(err error, output []byte, ps *os.ProcessState) string {
	msg := "sandbox setup failed: "
	if line, _, _ := bytes.Cut(bytes.TrimSpace(output), []byte("\n")); len(line) > 0 {
		return msg + string(line)
	}
	if errors.Is(err, errBwrapExited) && ps != nil {
		return msg + fmt.Sprintf("bwrap exited with status %d before starting the script", ps.ExitCode())
	}
	return msg + err.Error()
}

// check runs an empty job to prove that bwrap can create a sandbox here.
// It returns why not, or "".
func (s *Sandbox) check() string {
	dir, err := os.MkdirTemp("", "deltaci-sandbox-check-")
	if err != nil {
		return "checking the sandbox: " + err.Error()
	}
	defer os.RemoveAll(dir)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := s.Run(ctx, Spec{Script: "exit 0", Dir: dir, Timeout: 30 * time.Second, Grace: time.Second}, &out)
	switch {
	case err != nil:
		return "checking the sandbox: " + err.Error()
	case res.State == core.AttemptSucceeded:
		return ""
	case strings.HasPrefix(res.Err, msgNoBwrap):
		return res.Err
	}
	detail := res.Err
	if detail == "" {
		detail = fmt.Sprintf("an empty job ended %s with exit code %d: %s", res.State, res.ExitCode, strings.TrimSpace(out.String()))
	}
	return fmt.Sprintf("bubblewrap (bwrap) at %s cannot create a sandbox on this machine (%s): allow unprivileged user namespaces "+
		"(sysctl kernel.unprivileged_userns_clone=1, or an AppArmor profile for bwrap on Ubuntu 24.04 and later) "+
		"or run this runner with --executor shell", s.bwrap, detail)
}

// setLimits sets each limit, soft and hard, on process pid.
func setLimits(pid int, l Limits) error {
	for _, lim := range []struct {
		name     string
		resource int
		value    int64
	}{
		{"processes", rlimitNPROC, l.MaxProcesses},
		{"open files", syscall.RLIMIT_NOFILE, l.OpenFiles},
		{"address space", syscall.RLIMIT_AS, l.AddressSpace},
		{"file size", syscall.RLIMIT_FSIZE, l.FileSize},
	} {
		if lim.value == NoLimit {
			continue
		}
		var old rlimit64
		if err := prlimit(pid, lim.resource, nil, &old); err != nil {
			return fmt.Errorf("%s: %w", lim.name, err)
		}
		// Raising a hard limit takes privileges the runner should not need.
		v := min(uint64(lim.value), old.max)
		if err := prlimit(pid, lim.resource, &rlimit64{cur: v, max: v}, nil); err != nil {
			return fmt.Errorf("%s: %w", lim.name, err)
		}
	}
	return nil
}

// rlimit64 is the kernel's struct rlimit64; RLIM_INFINITY is all ones, so
// min with it works.
type rlimit64 struct{ cur, max uint64 }

// prlimit is prlimit64(2), which the syscall package does not export.
func prlimit(pid, resource int, newLimit, old *rlimit64) error {
	_, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), uintptr(resource),
		uintptr(unsafe.Pointer(newLimit)), uintptr(unsafe.Pointer(old)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// fileSet remembers files so that every exit path closes them; closing one
// twice is harmless.
type fileSet []*os.File

func (set *fileSet) pipe() (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err == nil {
		*set = append(*set, r, w)
	}
	return r, w, err
}

func (set fileSet) closeAll() {
	for _, f := range set {
		f.Close()
	}
}

// headWriter passes writes through to w and keeps their first max bytes.
// Only the pump writes; buf is read after it is done.
type headWriter struct {
	w   io.Writer
	max int
	buf []byte
}

func (h *headWriter) Write(p []byte) (int, error) {
	if room := h.max - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return h.w.Write(p)
}
