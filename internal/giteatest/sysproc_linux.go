package giteatest

import "syscall"

// sysProcAttr has the kernel kill Gitea if the test binary dies without
// stopping it (a panic, a timeout), so no server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
