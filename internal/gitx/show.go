package gitx

import (
	"context"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// FileAt returns the content of path (slash-separated, from the top of the
// repository) at commit rev. A path the commit does not have is an error of
// kind core.KindNotFound.
func FileAt(ctx context.Context, dir, rev, path string) ([]byte, error) {
	if strings.HasPrefix(rev, "-") || strings.ContainsRune(rev, ':') {
		return nil, core.E(core.KindInvalid, "git cat-file", "bad revision %q", rev)
	}
	// Ask first whether the object exists, so a missing file is told apart
	// from a failing git.
	if _, err := run(ctx, dir, "cat-file", "-e", rev+":"+path); err != nil {
		if core.KindOf(err) == core.KindInternal {
			return nil, core.E(core.KindNotFound, "git cat-file", "%s does not exist at %s", path, rev)
		}
		return nil, err
	}
	return run(ctx, dir, "cat-file", "blob", rev+":"+path)
}
