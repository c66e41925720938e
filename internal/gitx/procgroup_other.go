//go:build !unix

package gitx

import "os/exec"

// killGroupOnCancel leaves cmd as it is: only the git process is killed.
func killGroupOnCancel(*exec.Cmd) {}
