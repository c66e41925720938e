//go:build unix && !linux

package executor

import (
	"context"
	"io"

	"github.com/deltaci/deltaci/internal/core"
)

// msgUnsupported makes NewSandbox refuse: bubblewrap needs Linux namespaces.
const msgUnsupported = "the sandbox executor needs Linux (bubblewrap): run this runner with --executor shell"

func systemMounts() []string { return nil }

// netTools is empty: there is no sandbox, so no network for it.
type netTools struct{ stack string }

func findNetTools(SandboxOptions) (netTools, string) { return netTools{}, msgUnsupported }

func (s *Sandbox) check() string { return msgUnsupported }

func (s *Sandbox) run(_ context.Context, _ Spec, _ string, _ io.Writer, res Result) Result {
	return res.end(core.AttemptErrored, core.ReasonInfraError, msgUnsupported)
}
