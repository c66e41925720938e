package fs

import (
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

var _ blobstore.Quarantiner = (*Store)(nil)

// quarantine is the directory of quarantined blobs, beside blobs/.
func (s *Store) quarantine() string {
	return filepath.Join(filepath.Dir(s.blobs), blobstore.QuarantineDir)
}

// Quarantine implements blobstore.Quarantiner: it renames d's file to
// quarantine/<alg>/<hex>.<time> under the root, on the same file system,
// and removes its index. A reader that opened the file before still reads
// it to the end, and a Put of d after it writes a new file.
func (s *Store) Quarantine(ctx context.Context, d digest.Digest) (string, error) {
	const op = "fs.Quarantine"
	if err := blobstore.CheckDigest(op, d); err != nil {
		return "", err
	}
	if ctx.Err() != nil {
		return "", blobstore.Canceled(ctx, op)
	}
	dst := filepath.Join(s.quarantine(), filepath.FromSlash(blobstore.QuarantineName(d, time.Now())))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", core.Wrap(core.KindInternal, op, err)
	}
	if err := os.Rename(s.path(d), dst); errors.Is(err, iofs.ErrNotExist) {
		return "", blobstore.NotFound(op, d)
	} else if err != nil {
		return "", core.Wrap(core.KindInternal, op, err)
	}
	// The bytes are moved, which is what counts; the rest is best effort.
	// An index left behind is replaced by the next Put's, and a move lost
	// in a crash puts the damaged blob back where the next scrub finds it.
	_ = os.Remove(s.indexPath(d))
	_ = syncDir(s.dir(d))
	_ = syncDir(filepath.Dir(dst))
	return dst, nil
}
