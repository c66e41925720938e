package executor

import (
	"syscall"
	"unsafe"
)

// waitExited blocks until process pid has exited but leaves it unreaped
// (waitid with WNOWAIT). While the zombie exists, neither its pid nor its
// process group id can be reused, so signaling -pid stays safe.
func waitExited(pid int) error {
	const pPID = 1     // P_PID from <sys/wait.h>
	var info [128]byte // siginfo_t; only its presence matters to us
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return errno
		}
	}
}
