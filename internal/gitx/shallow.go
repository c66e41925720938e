package gitx

import (
	"context"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// IsShallow reports whether the repository is a shallow clone, whose
// history stops at a boundary: commits beyond it are missing, so merge
// bases and ancestry answers may be wrong until the history is deepened.
func IsShallow(ctx context.Context, dir string) (bool, error) {
	out, err := run(ctx, dir, "rev-parse", "--is-shallow-repository")
	if err != nil {
		return false, err
	}
	switch s := string(trimNewline(out)); s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return false, core.E(core.KindInternal, "git rev-parse --is-shallow-repository", "unexpected answer %q", s)
	}
}

// Deepen fetches by more commits of history from remote behind the current
// shallow boundary (git fetch --deepen), for the refs the clone tracks. It
// talks to the network; callers do it once before giving up on a commit
// that the shallow history lacks. by must be at least 1 and remote must be
// a remote name or URL (not an option), else the error is KindInvalid.
func Deepen(ctx context.Context, dir, remote string, by int) error {
	const op = "git fetch --deepen"
	if by < 1 {
		return core.E(core.KindInvalid, op, "deepen by %d: must be at least 1", by)
	}
	if remote == "" || strings.HasPrefix(remote, "-") {
		return core.E(core.KindInvalid, op, "bad remote %q", remote)
	}
	_, err := run(ctx, dir, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
		"--deepen="+strconv.Itoa(by), remote)
	return err
}
