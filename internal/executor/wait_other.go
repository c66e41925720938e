//go:build unix && !linux

package executor

import "errors"

// waitExited cannot wait without reaping on this platform; Run then reaps
// first and signals the group afterwards.
func waitExited(int) error { return errors.ErrUnsupported }
