package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/core"
)

// PushResult describes a finished push.
type PushResult struct {
	Manifest digest.Digest
	Files    int
	Bytes    int64 // total size of the files
	Uploaded int   // blobs that were not stored yet
	Sent     int64 // bytes of those
	// Unchanged says the manifest was PushOptions.Unless: nothing was sent.
	Unchanged bool
}

// PushOptions tunes a push.
type PushOptions struct {
	Annotations map[string]string
	// Parallel uploads at once; 4 when zero.
	Parallel int
	// Progress, when set, is told the bytes of each finished upload.
	Progress func(n int64)
	// Only, when set, limits a directory push to these slash-separated
	// paths relative to it (a job's outputs).
	Only []string
	// Unless skips the push when the manifest would have this digest.
	Unless digest.Digest
}

// Push stores src (a file or a directory) as a manifest and, when ref is
// not empty, points ref at it. Symlinks are kept as links; the push is
// refused when one of the pushed links resolves outside src, alone or
// through the others (the rule Pull applies), as it is for special files.
func (t *Transfer) Push(ctx context.Context, actor, src, ref string, opts PushOptions) (PushResult, error) {
	var name eventlog.RefName
	if ref != "" {
		var err error
		if name, err = eventlog.ParseRef(ref); err != nil {
			return PushResult{}, err
		}
	}
	root, files, err := scan(src, t.alg())
	if err != nil {
		return PushResult{}, err
	}
	defer root.Close()
	return t.pushFiles(ctx, actor, files, ref, name, opts)
}

// Tree is one directory of a PushTrees, stored under Prefix.
type Tree struct {
	// Prefix is the slash path its files get in the manifest ("home").
	Prefix string
	Dir    string
}

// PushTrees stores the files of several directories as one manifest, each
// directory's under its prefix; a directory that does not exist adds
// nothing. With opts.Unless set to the digest the manifest turns out to
// have, nothing is uploaded and the result says Unchanged.
func (t *Transfer) PushTrees(ctx context.Context, actor string, trees []Tree, opts PushOptions) (PushResult, error) {
	var files []scanned
	for _, tr := range trees {
		if _, err := os.Lstat(tr.Dir); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		info, err := os.Lstat(tr.Dir)
		if err != nil || !info.IsDir() {
			return PushResult{}, core.E(core.KindInvalid, "push", "%s is not a directory", tr.Dir)
		}
		root, fs, err := scan(tr.Dir, t.alg())
		if err != nil {
			return PushResult{}, err
		}
		defer root.Close()
		for i := range fs {
			fs[i].entry.Path = tr.Prefix + "/" + fs[i].entry.Path
		}
		files = append(files, fs...)
	}
	return t.pushFiles(ctx, actor, files, "", eventlog.RefName{}, opts)
}

func (t *Transfer) pushFiles(ctx context.Context, actor string, files []scanned, ref string, name eventlog.RefName, opts PushOptions) (PushResult, error) {
	if opts.Only != nil {
		keep := make(map[string]bool, len(opts.Only))
		for _, p := range opts.Only {
			keep[p] = true
		}
		files = slices.DeleteFunc(files, func(f scanned) bool { return !keep[f.entry.Path] })
	}
	m := manifest.Manifest{Annotations: opts.Annotations}
	res := PushResult{}
	for _, f := range files {
		m.Entries = append(m.Entries, f.entry)
		if !f.entry.IsSymlink() {
			res.Files++
			res.Bytes += f.entry.Size
		}
	}
	manifest.SortEntries(m.Entries)
	if err := m.Validate(); err != nil {
		return PushResult{}, err
	}
	// The rule pull applies: what is pushed can be pulled.
	if err := checkTree(m.Entries, nil, "the pushed directory"); err != nil {
		return PushResult{}, core.E(core.KindInvalid, "push", "%v; push what it points to instead", err)
	}
	body, err := manifest.Encode(m)
	if err != nil {
		return PushResult{}, err
	}
	md, err := digest.FromBytes(t.alg(), body)
	if err != nil {
		return PushResult{}, err
	}
	if !opts.Unless.IsZero() && md == opts.Unless {
		res.Manifest, res.Unchanged = md, true
		return res, nil
	}
	// Keep every blob and the manifest from GC until the ref holds them,
	// however short its grace window; see Leaser.
	blobs := blobDigests(files)
	if l, ok := t.Catalog.(Leaser); ok {
		h, err := holdLease(ctx, l, append(slices.Clone(blobs), md), t.Lease, t.log())
		switch {
		case errors.Is(err, ErrNoLeases):
			t.log().DebugContext(ctx, "pushing without a GC lease", slog.Any("err", err))
		case err != nil:
			return PushResult{}, err
		default:
			defer h.release(ctx)
			leased := make(map[digest.Digest]bool, len(blobs))
			for _, d := range blobs {
				leased[d] = true
			}
			ctx = withLeased(ctx, leased)
		}
	}
	// Without a lease (or with one that lapsed) GC may still take a blob
	// between upload and commit, or the manifest before its ref is set: the
	// commit then names what is missing and another round uploads it.
	for round := 1; ; round++ {
		up, sent, err := t.uploadMissing(ctx, actor, files, opts)
		res.Uploaded += up
		res.Sent += sent
		if err == nil {
			res.Manifest, err = t.commit(ctx, actor, m, ref, name)
		}
		if err == nil {
			return res, nil
		}
		k := core.KindOf(err)
		if round >= pushRounds || (k != core.KindNotFound && k != core.KindConflict) {
			return res, err
		}
		t.log().WarnContext(ctx, "push raced with GC; uploading again", slog.Int("round", round), slog.Any("err", err))
	}
}

// pushRounds bounds how often a push uploads what GC took and commits
// again. Under a lease no round is lost; without one, each round loses
// only to a GC that ran in its short window.
const pushRounds = 5

// commit records the manifest and, when ref is set, points it there: in
// one transaction when the catalog can (RefCommitter).
func (t *Transfer) commit(ctx context.Context, actor string, m manifest.Manifest, ref string, name eventlog.RefName) (digest.Digest, error) {
	if rc, ok := t.Catalog.(RefCommitter); ok && ref != "" {
		d, _, err := rc.CommitManifestRef(ctx, actor, m, name)
		return d, err
	}
	d, _, err := t.Catalog.CommitManifest(ctx, actor, m)
	if err != nil || ref == "" {
		return d, err
	}
	// A manifest GC took before the ref was set is core.KindNotFound: the
	// caller commits it again.
	return d, t.Catalog.SetRef(ctx, actor, name, d)
}

// RefCommitter is a Catalog that commits a manifest and points a ref at it
// in one transaction, so no GC can take the manifest in between.
type RefCommitter interface {
	CommitManifestRef(ctx context.Context, actor string, m manifest.Manifest, ref eventlog.RefName) (digest.Digest, []byte, error)
}

// CommitManifestRef implements RefCommitter.
func (r *Registry) CommitManifestRef(ctx context.Context, actor string, m manifest.Manifest, ref eventlog.RefName) (digest.Digest, []byte, error) {
	d, body, blobs, err := r.prepareCommit(ctx, m)
	if err != nil {
		return d, nil, err
	}
	if err := r.CheckSizes(ctx, d, m); err != nil {
		return d, nil, err
	}
	return d, body, r.Meta.CommitManifestRef(ctx, actor, d, body, blobs, ref)
}

// blobDigests lists the distinct blobs of the files, in order.
func blobDigests(files []scanned) []digest.Digest {
	var ds []digest.Digest
	seen := map[digest.Digest]bool{}
	for _, f := range files {
		if !f.entry.IsSymlink() && !seen[f.entry.Digest] {
			seen[f.entry.Digest] = true
			ds = append(ds, f.entry.Digest)
		}
	}
	return ds
}

func (t *Transfer) uploadMissing(ctx context.Context, actor string, files []scanned, opts PushOptions) (int, int64, error) {
	var ds []digest.Digest
	byDigest := map[digest.Digest]scanned{}
	for _, f := range files {
		if f.entry.IsSymlink() {
			continue
		}
		if _, dup := byDigest[f.entry.Digest]; !dup {
			byDigest[f.entry.Digest] = f
			ds = append(ds, f.entry.Digest)
		}
	}
	var missing []digest.Digest
	for start := 0; start < len(ds); start += dataplane.MaxFindMissing {
		batch, err := t.Data.FindMissing(ctx, ds[start:min(len(ds), start+dataplane.MaxFindMissing)])
		if err != nil {
			return 0, 0, err
		}
		missing = append(missing, batch...)
	}
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	work := make(chan scanned)
	var (
		mu           sync.Mutex
		sent         int64
		errs         []error
		wg           sync.WaitGroup
		ctx2, cancel = context.WithCancel(ctx)
	)
	defer cancel()
	for i := 0; i < parallel; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				n, err := t.uploadFile(ctx2, actor, f)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
					cancel()
				} else {
					sent += n
					if opts.Progress != nil {
						opts.Progress(n)
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, d := range missing {
		select {
		case work <- byDigest[d]:
		case <-ctx2.Done():
		}
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		return 0, sent, errors.Join(errs...)
	}
	return len(missing), sent, nil
}

// uploadFile uploads one file, offering it again while GC is deleting an
// earlier copy of its blob (see againWhileCollected): a remote data plane
// answers that with a conflict or a not found.
func (t *Transfer) uploadFile(ctx context.Context, actor string, f scanned) (int64, error) {
	var n int64
	err := againWhileCollected(ctx, t.log().With(slog.String("path", f.entry.Path)), func() error {
		var err error
		n, err = t.uploadOnce(ctx, actor, f)
		return err
	})
	return n, err
}

func (t *Transfer) uploadOnce(ctx context.Context, actor string, f scanned) (int64, error) {
	fh, err := f.root.Open(f.name)
	if err != nil {
		return 0, core.Wrap(core.KindInvalid, "push", err)
	}
	defer fh.Close()
	b, err := t.Data.Upload(ctx, actor, f.entry.Digest.Algorithm(), f.entry.Digest, fh, f.entry.Size)
	if err != nil {
		if core.KindOf(err) == core.KindInvalid {
			return 0, fmt.Errorf("push %s: the file changed while it was being pushed: %w", f.entry.Path, err)
		}
		return 0, fmt.Errorf("push %s: %w", f.entry.Path, err)
	}
	return b.Size, nil
}

// scanned is one file to push, named relative to the root it is read
// through.
type scanned struct {
	root  *os.Root
	name  string
	entry manifest.Entry
}

// scan hashes every file under src (or src itself) into manifest entries.
// Files are read through the returned root (src, or a single file's
// directory), which the caller closes: a file swapped for a symlink while
// it is pushed cannot bring in content from outside.
func scan(src string, alg digest.Algorithm) (*os.Root, []scanned, error) {
	info, err := os.Lstat(src)
	if err != nil {
		return nil, nil, core.E(core.KindInvalid, "push", "cannot read %s: %v", src, err)
	}
	dir, single := src, !info.IsDir()
	if single {
		dir = filepath.Dir(src)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, core.E(core.KindInvalid, "push", "cannot read %s: %v", dir, err)
	}
	if single {
		name := filepath.Base(src)
		e, err := entryFor(root, name, name, info, alg, false)
		if err != nil {
			root.Close()
			return nil, nil, err
		}
		return root, []scanned{{root: root, name: name, entry: e}}, nil
	}
	var out []scanned
	err = fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return core.E(core.KindInvalid, "push", "cannot read %s: %v", filepath.Join(src, rel), err)
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return core.E(core.KindInvalid, "push", "cannot read %s: %v", filepath.Join(src, rel), err)
		}
		name := filepath.FromSlash(rel)
		e, err := entryFor(root, name, rel, info, alg, true)
		if err != nil {
			return err
		}
		out = append(out, scanned{root: root, name: name, entry: e})
		return nil
	})
	if err != nil {
		root.Close()
		return nil, nil, err
	}
	return root, out, nil
}

// entryFor describes the file name under root as the entry rel. A symlink
// is kept only inside a pushed directory (inDir), where Push checks where
// it leads.
func entryFor(root *os.Root, name, rel string, info fs.FileInfo, alg digest.Algorithm, inDir bool) (manifest.Entry, error) {
	mode, err := manifest.ModeFromFileMode(info.Mode())
	if err != nil {
		return manifest.Entry{}, core.E(core.KindInvalid, "push", "%s: %v (only regular files and symlinks can be pushed)", rel, err)
	}
	e := manifest.Entry{Path: rel, Mode: mode}
	if info.Mode()&fs.ModeSymlink != 0 {
		target, err := root.Readlink(name)
		if err != nil {
			return manifest.Entry{}, core.E(core.KindInvalid, "push", "%s: %v", rel, err)
		}
		if !inDir {
			return manifest.Entry{}, core.E(core.KindInvalid, "push", "symlink %q -> %q points outside the pushed directory; push what it points to instead", rel, target)
		}
		e.Target = target
		return e, nil
	}
	f, err := root.Open(name)
	if err != nil {
		return manifest.Entry{}, core.E(core.KindInvalid, "push", "%s: %v", rel, err)
	}
	defer f.Close()
	d, n, err := digest.FromReader(alg, f)
	if err != nil {
		return manifest.Entry{}, core.E(core.KindInvalid, "push", "%s: %v", rel, err)
	}
	e.Digest, e.Size = d, n
	return e, nil
}
