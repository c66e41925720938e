package gitx

import (
	"context"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// FileAt returns the content of path (slash-separated, from the top of the
// repository) at commit rev. A path the commit does not have is an error of
// kind core.KindNotFound; one larger than max bytes is core.KindInvalid,
// and is never read.
func FileAt(ctx context.Context, dir, rev, path string, max int64) ([]byte, error) {
	if strings.HasPrefix(rev, "-") || strings.ContainsRune(rev, ':') {
		return nil, core.E(core.KindInvalid, "git cat-file", "bad revision %q", rev)
	}
	// Ask first for the size, which tells a missing file apart from a
	// failing git, and keeps a huge blob out of memory.
	out, err := run(ctx, dir, "cat-file", "-s", rev+":"+path)
	if err != nil {
		if core.KindOf(err) == core.KindInternal {
			return nil, core.E(core.KindNotFound, "git cat-file", "%s does not exist at %s", path, rev)
		}
		return nil, err
	}
	if size, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err != nil {
		return nil, core.Wrap(core.KindInternal, "git cat-file -s", err)
	} else if size > max {
		return nil, core.E(core.KindInvalid, "git cat-file", "%s at %s is %d bytes, more than the %d it may be", path, rev, size, max)
	}
	return run(ctx, dir, "cat-file", "blob", rev+":"+path)
}
