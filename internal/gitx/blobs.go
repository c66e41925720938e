package gitx

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// ReadBlobs returns the content of each blob of ids (hex object ids, as
// LsTree lists them), read by one git cat-file --batch process however many
// there are. A blob larger than max bytes is left out of the map, unread:
// the caller decides what a content too large to matter means. An id that
// is not a blob of the repository is a KindNotFound error.
func ReadBlobs(ctx context.Context, dir string, ids []string, max int64) (map[string][]byte, error) {
	const op = "git cat-file"
	out := make(map[string][]byte, len(ids))
	var stdin strings.Builder
	asked := make(map[string]bool, len(ids))
	var order []string
	for _, id := range ids {
		if asked[id] {
			continue
		}
		if !isHexID(id) {
			return nil, core.E(core.KindInvalid, op, "bad object id %q", id)
		}
		asked[id] = true
		order = append(order, id)
		stdin.WriteString(id)
		stdin.WriteByte('\n')
	}
	if len(order) == 0 {
		return out, nil
	}
	err := stream(ctx, dir, strings.NewReader(stdin.String()), func(r *bufio.Reader) error {
		for _, id := range order {
			header, err := r.ReadString('\n')
			if err != nil {
				return core.E(core.KindInternal, op, "no answer for %s", id)
			}
			f := strings.Fields(header)
			switch {
			case len(f) == 2 && f[1] == "missing":
				return core.E(core.KindNotFound, op, "object %s is missing from the repository", id)
			case len(f) != 3 || f[0] != id:
				return core.E(core.KindInternal, op, "unexpected answer %.100q for %s", header, id)
			case f[1] != "blob":
				return core.E(core.KindNotFound, op, "object %s is a %s, not a blob", id, f[1])
			}
			size, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil || size < 0 {
				return core.E(core.KindInternal, op, "unexpected answer %.100q", header)
			}
			if size > max {
				// Skipped, and the newline after it.
				if _, err := r.Discard(int(size) + 1); err != nil {
					return core.Wrap(core.KindInternal, op, err)
				}
				continue
			}
			content := make([]byte, size+1)
			if _, err := io.ReadFull(r, content); err != nil {
				return core.Wrap(core.KindInternal, op, err)
			}
			out[id] = content[:size]
		}
		_, err := io.Copy(io.Discard, r)
		return err
	}, "cat-file", "--batch")
	if err != nil {
		return nil, err
	}
	return out, nil
}

// isHexID reports whether id is an object id in lowercase hex, of SHA-1 or
// SHA-256: cat-file would take anything else for a revision to resolve.
func isHexID(id string) bool {
	if len(id) != 40 && len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
