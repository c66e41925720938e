package gitx

import (
	"bytes"
	"context"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// TopLevel returns the root of the working tree that contains dir. Outside a
// git working tree it returns a KindInvalid error that tells the user what to
// do.
func TopLevel(ctx context.Context, dir string) (string, error) {
	out, err := run(ctx, dir, "rev-parse", "--show-toplevel")
	if err != nil {
		msg := stderrOf(err)
		switch {
		case strings.Contains(msg, "not a git repository"):
			return "", core.E(core.KindInvalid, "git top level",
				"not a git repository: %s (run deltaci inside a git checkout or pass --repo)", dir)
		case strings.Contains(msg, "must be run in a work tree"):
			return "", core.E(core.KindInvalid, "git top level",
				"not a git working tree: %s (a bare repository or .git directory has no files to run on)", dir)
		}
		return "", err
	}
	return string(trimNewline(out)), nil
}

// Head returns the commit id HEAD points to, or "" with no error in a
// repository that has no commits yet.
func Head(ctx context.Context, dir string) (string, error) {
	out, err := run(ctx, dir, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
	if err != nil {
		// --verify --quiet fails silently with status 1 only when HEAD does not resolve.
		if exitCode(err) == 1 && stderrOf(err) == "" {
			return "", nil
		}
		return "", err
	}
	return string(trimNewline(out)), nil
}

// CurrentBranch returns the short name of the checked-out branch (also for a
// branch with no commits yet), or "" when HEAD is detached.
func CurrentBranch(ctx context.Context, dir string) (string, error) {
	out, err := run(ctx, dir, "symbolic-ref", "--quiet", "HEAD")
	if err != nil {
		// Status 1 with --quiet means HEAD is not a symbolic ref: detached.
		if exitCode(err) == 1 && stderrOf(err) == "" {
			return "", nil
		}
		return "", err
	}
	return strings.TrimPrefix(string(trimNewline(out)), "refs/heads/"), nil
}

// trimNewline drops the one line end git prints; paths may end in spaces, so
// nothing else is trimmed.
func trimNewline(b []byte) []byte {
	return bytes.TrimSuffix(b, []byte("\n"))
}
