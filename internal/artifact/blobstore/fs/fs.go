// Package fs is the blobstore backend on a local directory.
//
// Layout under the root:
//
//	blobs/<alg>/<first 2 hex digits>/<hex>   stored blobs, read-only (0o444)
//	chunks/<alg>/<first 2 hex digits>/<hex>  their chunk indexes (digest.ChunkIndex)
//	tmp/put-*, tmp/chunks-*                  Puts and index writes in progress
//	quarantine/<alg>/<hex>.<time>            corrupt blobs a scrub set aside
//
// The two-digit fan-out keeps each directory at about 1/256 of the blobs.
// A Put writes a temp file while hashing, fsyncs it, renames it into place
// and fsyncs the directory, so after a crash a blob is either whole under
// its name or absent; only temp files can be left over, and RemoveStale
// deletes them. Temp files live on the same file system as the blobs so
// that the rename is atomic. An index is renamed into place too, but not
// fsynced: one lost or torn in a crash fails its checksum and is rebuilt
// from the blob's bytes.
package fs

import (
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"iter"
	"os"
	"path/filepath"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// copyBufSize is the chunk Put hashes and writes at a time: large enough
// that system calls do not dominate, small enough to bound memory per Put.
const copyBufSize = 256 << 10

// Store is a blobstore.Store in a local directory. It holds no state beyond
// the root's path, so several Stores (and processes) may share one root.
type Store struct {
	blobs  string
	chunks string
	tmp    string
}

var (
	_ blobstore.Store        = (*Store)(nil)
	_ blobstore.StaleRemover = (*Store)(nil)
)

// Open returns the store rooted at root, creating the layout if needed.
// It does not remove stale temp files; call RemoveStale for that.
func Open(root string) (*Store, error) {
	const op = "fs.Open"
	s := &Store{blobs: filepath.Join(root, "blobs"), chunks: filepath.Join(root, "chunks"), tmp: filepath.Join(root, "tmp")}
	dirs := []string{s.tmp}
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.BLAKE3} {
		dirs = append(dirs, filepath.Join(s.blobs, string(alg)), filepath.Join(s.chunks, string(alg)))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, core.Wrap(core.KindInternal, op, err)
		}
	}
	return s, nil
}

func (s *Store) dir(d digest.Digest) string {
	return filepath.Join(s.blobs, string(d.Algorithm()), d.Hex()[:2])
}

func (s *Store) path(d digest.Digest) string {
	return filepath.Join(s.dir(d), d.Hex())
}

func (s *Store) indexPath(d digest.Digest) string {
	return filepath.Join(s.chunks, string(d.Algorithm()), d.Hex()[:2], d.Hex())
}

// Put implements blobstore.Store. A blob already stored is verified; a
// corrupt one is replaced by renaming the new bytes over it.
func (s *Store) Put(ctx context.Context, d digest.Digest, r io.Reader, size int64) error {
	const op = "fs.Put"
	if err := blobstore.CheckPut(op, d, size); err != nil {
		return err
	}
	if done, err := blobstore.Existing(ctx, op, raw{s}, d, size); done {
		return err
	}
	ch, err := digest.NewChunkHasher(d.Algorithm())
	if err != nil {
		return err
	}
	tmp, err := s.stage(ctx, op, d, r, size, ch)
	if err != nil {
		return err
	}
	if err := s.commit(tmp, d); err != nil {
		_ = os.Remove(tmp)
		return core.Wrap(core.KindInternal, op, err)
	}
	blobstore.SaveIndex(ctx, raw{s}, ch.Index(d))
	return nil
}

// stage copies r into a durable, read-only temp file and returns its path
// once the bytes proved to be d; ch sees every byte. On any failure the
// temp file is removed.
func (s *Store) stage(ctx context.Context, op string, d digest.Digest, r io.Reader, size int64, ch io.Writer) (path string, err error) {
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return "", core.Wrap(core.KindInternal, op, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	vw := digest.NewVerifyingWriter(io.MultiWriter(f, ch), d, size)
	if _, err := io.CopyBuffer(vw, blobstore.ContextReader(ctx, r), make([]byte, copyBufSize)); err != nil {
		return "", blobstore.PutError(ctx, op, err)
	}
	if err := vw.Verify(); err != nil {
		return "", blobstore.PutError(ctx, op, err)
	}
	if ctx.Err() != nil {
		return "", blobstore.Canceled(ctx, op)
	}
	// Read-only because a blob's bytes are its name: nothing may edit them.
	if err := f.Chmod(0o444); err != nil {
		return "", core.Wrap(core.KindInternal, op, err)
	}
	if err := f.Sync(); err != nil {
		return "", core.Wrap(core.KindInternal, op, err)
	}
	if err := f.Close(); err != nil {
		return "", core.Wrap(core.KindInternal, op, err)
	}
	return f.Name(), nil
}

// commit renames a verified temp file into place. A concurrent Put of the
// same digest may rename over it; both files hold the same bytes, and a
// reader holding the replaced one still reads them.
func (s *Store) commit(tmp string, d digest.Digest) error {
	dir := s.dir(d)
	switch err := os.Mkdir(dir, 0o755); {
	case err == nil:
		// The new fan-out directory must itself survive a crash.
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
	case !errors.Is(err, iofs.ErrExist):
		return err
	}
	if err := os.Rename(tmp, s.path(d)); err != nil {
		return err
	}
	return syncDir(dir)
}

// raw is the store's blobstore.Raw: its files, unverified, and the chunk
// indexes beside them.
type raw struct{ s *Store }

func (r raw) StatRaw(ctx context.Context, d digest.Digest) (blobstore.Info, error) {
	return r.s.stat(ctx, "fs.Stat", d)
}

// OpenRaw reads from one open file, so a concurrent Delete or repair does
// not cut the read short.
func (r raw) OpenRaw(_ context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	f, err := os.Open(r.s.path(d))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, blobstore.NotFound("fs.Get", d)
	} else if err != nil {
		return nil, core.Wrap(core.KindInternal, "fs.Get", err)
	}
	return sectionReadCloser{io.NewSectionReader(f, offset, length), f}, nil
}

// maxIndexBytes bounds an index file read: the index of a 16 TiB blob.
const maxIndexBytes = 1 << 29

func (r raw) LoadIndex(_ context.Context, d digest.Digest) ([]byte, error) {
	f, err := os.Open(r.s.indexPath(d))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, core.E(core.KindNotFound, "fs.LoadIndex", "no chunk index of %s", d)
	} else if err != nil {
		return nil, core.Wrap(core.KindInternal, "fs.LoadIndex", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxIndexBytes))
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "fs.LoadIndex", err)
	}
	return b, nil
}

func (r raw) SaveIndex(_ context.Context, d digest.Digest, index []byte) error {
	const op = "fs.SaveIndex"
	f, err := os.CreateTemp(r.s.tmp, "chunks-*")
	if err != nil {
		return core.Wrap(core.KindInternal, op, err)
	}
	_, err = f.Write(index)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.MkdirAll(filepath.Dir(r.s.indexPath(d)), 0o755)
	}
	if err == nil {
		err = os.Rename(f.Name(), r.s.indexPath(d))
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return core.Wrap(core.KindInternal, op, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get implements blobstore.Store, verified as Store describes.
func (s *Store) Get(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	return blobstore.Read(ctx, "fs.Get", raw{s}, d, offset, length)
}

// Verify implements blobstore.Store.
func (s *Store) Verify(ctx context.Context, d digest.Digest) (blobstore.Info, error) {
	return blobstore.Verify(ctx, "fs.Verify", raw{s}, d)
}

type sectionReadCloser struct {
	*io.SectionReader
	io.Closer
}

// Stat implements blobstore.Store.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (blobstore.Info, error) {
	const op = "fs.Stat"
	if err := blobstore.CheckDigest(op, d); err != nil {
		return blobstore.Info{}, err
	}
	return s.stat(ctx, op, d)
}

func (s *Store) stat(ctx context.Context, op string, d digest.Digest) (blobstore.Info, error) {
	if ctx.Err() != nil {
		return blobstore.Info{}, blobstore.Canceled(ctx, op)
	}
	fi, err := os.Stat(s.path(d))
	if errors.Is(err, iofs.ErrNotExist) {
		return blobstore.Info{}, blobstore.NotFound(op, d)
	} else if err != nil {
		return blobstore.Info{}, core.Wrap(core.KindInternal, op, err)
	}
	return blobstore.Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements blobstore.Store. The index goes first, so that a
// failure half-way leaves a blob without an index (rebuilt when needed)
// rather than an index without a blob. The directory is not fsynced: a
// deletion lost in a crash leaves an unreferenced blob that the next GC
// removes again.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	const op = "fs.Delete"
	if err := blobstore.CheckDigest(op, d); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return blobstore.Canceled(ctx, op)
	}
	for _, p := range []string{s.indexPath(d), s.path(d)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return core.Wrap(core.KindInternal, op, err)
		}
	}
	return nil
}

// List implements blobstore.Store. Blobs come sorted by algorithm and hex,
// an accident of reading directories that callers must not rely on.
func (s *Store) List(ctx context.Context) iter.Seq2[blobstore.Info, error] {
	const op = "fs.List"
	return func(yield func(blobstore.Info, error) bool) {
		algs, err := readDir(s.blobs)
		if err != nil {
			yield(blobstore.Info{}, core.Wrap(core.KindInternal, op, err))
			return
		}
		for _, alg := range algs {
			if !alg.IsDir() || !digest.Algorithm(alg.Name()).Valid() {
				continue
			}
			fanouts, err := readDir(filepath.Join(s.blobs, alg.Name()))
			if err != nil {
				yield(blobstore.Info{}, core.Wrap(core.KindInternal, op, err))
				return
			}
			for _, fan := range fanouts {
				if !fan.IsDir() {
					continue
				}
				if ctx.Err() != nil {
					yield(blobstore.Info{}, blobstore.Canceled(ctx, op))
					return
				}
				if !s.listFanout(op, alg.Name(), fan.Name(), yield) {
					return
				}
			}
		}
	}
}

// listFanout yields the blobs of one fan-out directory and reports whether
// listing should go on.
func (s *Store) listFanout(op, alg, fan string, yield func(blobstore.Info, error) bool) bool {
	entries, err := readDir(filepath.Join(s.blobs, alg, fan))
	if err != nil {
		yield(blobstore.Info{}, core.Wrap(core.KindInternal, op, err))
		return false
	}
	for _, e := range entries {
		d, err := digest.Parse(alg + ":" + e.Name())
		if err != nil || d.Hex()[:2] != fan || !e.Type().IsRegular() {
			continue // not ours: never list, so never delete
		}
		fi, err := e.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			continue // deleted since the directory was read
		} else if err != nil {
			yield(blobstore.Info{}, core.Wrap(core.KindInternal, op, err))
			return false
		}
		if !yield(blobstore.Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}, nil) {
			return false
		}
	}
	return true
}

// readDir lists a directory, treating one that vanished as empty.
func readDir(dir string) ([]iofs.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	return entries, err
}

// RemoveStale implements blobstore.StaleRemover: it deletes temp files not
// written to for olderThan, which only a crashed or abandoned Put leaves.
// Call it at startup and from time to time.
func (s *Store) RemoveStale(ctx context.Context, olderThan time.Duration) (int, error) {
	const op = "fs.RemoveStale"
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return 0, core.Wrap(core.KindInternal, op, err)
	}
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	for _, e := range entries {
		if ctx.Err() != nil {
			return removed, blobstore.Canceled(ctx, op)
		}
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue // gone already, or still fresh
		}
		if err := os.Remove(filepath.Join(s.tmp, e.Name())); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return removed, core.Wrap(core.KindInternal, op, err)
		}
		removed++
	}
	return removed, nil
}
