package registry

import (
	"context"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/core"
)

// CheckSizes refuses a manifest d that gives one of its blobs another size
// than the stored blob has (KindInvalid, naming the entry's path and both
// sizes), or that lists a blob not stored (KindNotFound, as the commit
// would). Every commit of a manifest calls it first.
//
// It reads outside the commit's transaction, and need not read inside:
// a blob is recorded live only with the size of bytes that proved to hash
// to its digest, and a digest has one size, so the size read here is the
// one the commit would read. The commit still checks, inside its
// transaction, that every blob is live.
func (r *Registry) CheckSizes(ctx context.Context, d digest.Digest, m manifest.Manifest) error {
	const op = "commit manifest"
	stored := map[digest.Digest]int64{}
	for _, e := range m.Entries {
		if e.IsSymlink() {
			continue
		}
		size, ok := stored[e.Digest]
		if !ok {
			b, err := r.Meta.Blob(ctx, e.Digest)
			if core.KindOf(err) == core.KindNotFound || (err == nil && b.State == eventlog.StateGone) {
				return core.E(core.KindNotFound, op, "manifest %s references blob %s, which is not stored; upload it first", d, e.Digest)
			}
			if err != nil {
				return err
			}
			size = b.Size
			stored[e.Digest] = size
		}
		if e.Size != size {
			return core.E(core.KindInvalid, op, "manifest entry %q lists blob %s with %d bytes, but the stored blob has %d bytes", e.Path, e.Digest, e.Size, size)
		}
	}
	return nil
}
