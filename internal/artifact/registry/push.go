package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
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
}

// Push stores src (a file or a directory) as a manifest and, when ref is
// not empty, points ref at it. Symlinks are kept as links; one whose target
// leaves src is refused, as are special files.
func (t *Transfer) Push(ctx context.Context, actor, src, ref string, opts PushOptions) (PushResult, error) {
	var name eventlog.RefName
	if ref != "" {
		var err error
		if name, err = eventlog.ParseRef(ref); err != nil {
			return PushResult{}, err
		}
	}
	files, err := scan(src, t.alg())
	if err != nil {
		return PushResult{}, err
	}
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
	// A concurrent GC may take a blob between upload and commit; the commit
	// then names it and a second round uploads it again.
	for round := 0; ; round++ {
		up, sent, err := t.uploadMissing(ctx, actor, files, opts)
		res.Uploaded += up
		res.Sent += sent
		if err != nil {
			return res, err
		}
		d, _, err := t.Catalog.CommitManifest(ctx, actor, m)
		if err == nil {
			res.Manifest = d
			break
		}
		k := core.KindOf(err)
		if round >= 3 || (k != core.KindNotFound && k != core.KindConflict) {
			return res, err
		}
		t.log().WarnContext(ctx, "manifest commit raced with GC; uploading again", slog.Any("err", err))
	}
	if ref != "" {
		if err := t.Catalog.SetRef(ctx, actor, name, res.Manifest); err != nil {
			return res, err
		}
	}
	return res, nil
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

func (t *Transfer) uploadFile(ctx context.Context, actor string, f scanned) (int64, error) {
	fh, err := os.Open(f.abs)
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

type scanned struct {
	abs   string
	entry manifest.Entry
}

// scan hashes every file under src (or src itself) into manifest entries.
func scan(src string, alg digest.Algorithm) ([]scanned, error) {
	info, err := os.Lstat(src)
	if err != nil {
		return nil, core.E(core.KindInvalid, "push", "cannot read %s: %v", src, err)
	}
	if !info.IsDir() {
		e, err := entryFor(src, filepath.Base(src), info, alg, "")
		if err != nil {
			return nil, err
		}
		return []scanned{{abs: src, entry: e}}, nil
	}
	var out []scanned
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return core.E(core.KindInvalid, "push", "cannot read %s: %v", p, err)
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return core.E(core.KindInvalid, "push", "cannot read %s: %v", p, err)
		}
		e, err := entryFor(p, filepath.ToSlash(rel), info, alg, src)
		if err != nil {
			return err
		}
		out = append(out, scanned{abs: p, entry: e})
		return nil
	})
	return out, err
}

func entryFor(abs, rel string, info fs.FileInfo, alg digest.Algorithm, root string) (manifest.Entry, error) {
	mode, err := manifest.ModeFromFileMode(info.Mode())
	if err != nil {
		return manifest.Entry{}, core.E(core.KindInvalid, "push", "%s: %v (only regular files and symlinks can be pushed)", rel, err)
	}
	e := manifest.Entry{Path: rel, Mode: mode}
	if info.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(abs)
		if err != nil {
			return manifest.Entry{}, core.E(core.KindInvalid, "push", "%s: %v", rel, err)
		}
		if root == "" || !linkStaysInside(rel, target) {
			return manifest.Entry{}, core.E(core.KindInvalid, "push", "symlink %s -> %s points outside the pushed directory; push what it points to instead", rel, target)
		}
		e.Target = target
		return e, nil
	}
	f, err := os.Open(abs)
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

// linkStaysInside reports whether a symlink at rel (slash path inside a
// root) with the given target resolves inside the root.
func linkStaysInside(rel, target string) bool {
	if target == "" || filepath.IsAbs(target) || strings.ContainsRune(target, 0) {
		return false
	}
	resolved := path.Clean(path.Join(path.Dir(rel), filepath.ToSlash(target)))
	return resolved != ".." && !strings.HasPrefix(resolved, "../")
}
