package gitx

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// FileAt returns the content of path (slash-separated, from the top of the
// repository) at commit rev. A path the commit does not have is an error of
// kind core.KindNotFound; one larger than max bytes is core.KindInvalid,
// and is never read.
func FileAt(ctx context.Context, dir, rev, path string, max int64) ([]byte, error) {
	const op = "git cat-file"
	if strings.HasPrefix(rev, "-") || strings.ContainsRune(rev, ':') || strings.ContainsAny(rev+path, "\n\r") {
		return nil, core.E(core.KindInvalid, op, "bad revision %q or path %q", rev, path)
	}
	// One process: --batch answers with the object's type and size first,
	// which tells a missing file apart from a failing git and keeps a huge
	// blob out of memory (git is stopped, unread).
	var content []byte
	err := stream(ctx, dir, strings.NewReader(rev+":"+path+"\n"), func(r *bufio.Reader) error {
		header, err := r.ReadString('\n')
		if err != nil {
			return core.E(core.KindInternal, op, "no answer for %s:%s", rev, path)
		}
		f := strings.Fields(header)
		switch {
		case len(f) == 2 && (f[1] == "missing" || f[1] == "ambiguous"):
			return core.E(core.KindNotFound, op, "%s does not exist at %s", path, rev)
		case len(f) != 3:
			return core.E(core.KindInternal, op, "unexpected answer %.100q", header)
		case f[1] != "blob":
			return core.E(core.KindNotFound, op, "%s at %s is a %s, not a file", path, rev, f[1])
		}
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || size < 0 {
			return core.E(core.KindInternal, op, "unexpected answer %.100q", header)
		}
		if size > max {
			return core.E(core.KindInvalid, op, "%s at %s is %d bytes, more than the %d it may be", path, rev, size, max)
		}
		content = make([]byte, size)
		if _, err := io.ReadFull(r, content); err != nil {
			return core.Wrap(core.KindInternal, op, err)
		}
		_, err = io.Copy(io.Discard, r) // the newline after the content
		return err
	}, "cat-file", "--batch")
	if err != nil {
		return nil, err
	}
	return content, nil
}
