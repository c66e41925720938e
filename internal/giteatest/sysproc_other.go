//go:build !linux

package giteatest

import "syscall"

// sysProcAttr: only Linux can tie Gitea's life to the test binary's.
func sysProcAttr() *syscall.SysProcAttr { return nil }
