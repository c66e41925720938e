package executor

import (
	"os"
	"syscall"
)

// fSetPipeSize is F_SETPIPE_SZ (linux/fcntl.h).
const fSetPipeSize = 1031

// outputPipeSize is the job output pipe's buffer: a job printing fast
// runs on while the runner is busy for a moment, instead of blocking on
// the 64 KiB default. 1 MiB is what unprivileged processes may ask for.
const outputPipeSize = 1 << 20

// enlarge grows a pipe's buffer to outputPipeSize where the system allows
// it; the default buffer only costs speed, so failure is ignored.
func enlarge(w *os.File) {
	c, err := w.SyscallConn()
	if err != nil {
		return
	}
	_ = c.Control(func(fd uintptr) {
		_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSize, outputPipeSize)
	})
}
