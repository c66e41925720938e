package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// DefaultSessionTTL is how long an upload session lives without progress.
const DefaultSessionTTL = time.Hour

// Local is the in-process DataPlane. Session bytes are staged in StageDir
// on this machine, so a session must be continued on the server that
// started it.
//
// Every read is verified by the blob store (see blobstore.Store.Get). A
// blob found corrupt, by a read or by an upload of the same content, is
// logged at ERROR and counted (Corruptions); until an upload repairs it,
// FindMissing reports it missing, so that a client's next push uploads it
// again. That memory is this process's only: another server, or this one
// after a restart, learns of the damage at the next read.
type Local struct {
	meta       *eventlog.Store
	blobs      blobstore.Store
	stage      string
	sessionTTL time.Duration
	log        *slog.Logger

	corruptions *prometheus.CounterVec

	mu       sync.Mutex
	inflight map[digest.Digest]*flight
	sessions map[string]*sessionLock
	corrupt  map[digest.Digest]bool // found corrupt and not repaired since
}

// maxCorrupt bounds the corrupt blobs FindMissing remembers.
const maxCorrupt = 10000

// Option configures a Local.
type Option func(*Local)

// WithLog sends the data plane's log lines (a corrupt blob found, a repair)
// to log; without it they are discarded.
func WithLog(log *slog.Logger) Option { return func(l *Local) { l.log = log } }

// sessionLock serializes calls on one session; it is dropped when its last
// user leaves, so ids that never existed leave nothing behind.
type sessionLock struct {
	mu   sync.Mutex
	refs int
}

type flight struct {
	done chan struct{}
	err  error
}

var _ DataPlane = (*Local)(nil)

// NewLocal returns a data plane over meta and blobs staging uploads in stageDir.
func NewLocal(meta *eventlog.Store, blobs blobstore.Store, stageDir string, opts ...Option) (*Local, error) {
	if err := os.MkdirAll(stageDir, 0o700); err != nil {
		return nil, core.Wrap(core.KindInvalid, "upload staging directory", err)
	}
	l := &Local{
		meta: meta, blobs: blobs, stage: stageDir, sessionTTL: DefaultSessionTTL,
		log: slog.New(slog.DiscardHandler),
		corruptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artifactstore_blob_corruptions_total",
			Help: "Stored blobs found corrupt, by what found them: a read (refused), or an upload of the same content (which replaced them).",
		}, []string{"found_by"}),
		inflight: map[digest.Digest]*flight{}, sessions: map[string]*sessionLock{}, corrupt: map[digest.Digest]bool{},
	}
	for _, o := range opts {
		o(l)
	}
	for _, by := range []string{foundByRead, foundByUpload} {
		l.corruptions.WithLabelValues(by) // present at 0 before the first
	}
	return l, nil
}

// Corruptions counts the stored blobs found corrupt, by found_by ("read"
// or "upload"). Register it with the process's metrics registry.
func (l *Local) Corruptions() *prometheus.CounterVec { return l.corruptions }

const (
	foundByRead   = "read"
	foundByUpload = "upload"
)

// corrupted reports a blob found corrupt: an ERROR line, the metric, and
// FindMissing's memory until an upload repairs it.
func (l *Local) corrupted(ctx context.Context, foundBy string, ce *blobstore.CorruptError) {
	l.corruptions.WithLabelValues(foundBy).Inc()
	l.mu.Lock()
	if len(l.corrupt) < maxCorrupt {
		l.corrupt[ce.Digest] = true
	}
	l.mu.Unlock()
	msg := "stored blob is corrupt; reads of it fail until its content is uploaded again"
	if foundBy == foundByUpload {
		msg = "stored blob is corrupt; replacing it with the uploaded bytes"
	}
	l.log.LogAttrs(ctx, slog.LevelError, msg,
		slog.String("digest", ce.Digest.String()), slog.Int64("chunk", ce.Chunk),
		slog.String("found_by", foundBy), slog.String("error", ce.Error()))
}

// intact forgets that d was corrupt, once its bytes proved intact.
func (l *Local) intact(d digest.Digest) {
	l.mu.Lock()
	delete(l.corrupt, d)
	l.mu.Unlock()
}

// Upload implements DataPlane.
func (l *Local) Upload(ctx context.Context, actor string, alg digest.Algorithm, expected digest.Digest, r io.Reader, size int64) (Blob, error) {
	if expected.IsZero() {
		return l.uploadUnknown(ctx, actor, alg, r, size)
	}
	for {
		l.mu.Lock()
		f, busy := l.inflight[expected]
		if !busy {
			f = &flight{done: make(chan struct{})}
			l.inflight[expected] = f
			l.mu.Unlock()
			break
		}
		l.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return Blob{}, &core.Error{Kind: core.KindCanceled, Op: "upload", Err: ctx.Err()}
		}
		if f.err == nil {
			return l.stored(ctx, actor, expected, size)
		}
		// The other upload failed (bad bytes, canceled): try ours.
	}
	b, err := l.put(ctx, actor, expected, r, size)
	l.mu.Lock()
	f := l.inflight[expected]
	delete(l.inflight, expected)
	l.mu.Unlock()
	f.err = err
	close(f.done)
	return b, err
}

// stored confirms a blob another upload just stored and refreshes it.
func (l *Local) stored(ctx context.Context, actor string, d digest.Digest, size int64) (Blob, error) {
	b, err := l.meta.Blob(ctx, d)
	if err != nil {
		return Blob{}, err
	}
	if size >= 0 && b.Size != size {
		return Blob{}, &core.Error{Kind: core.KindInvalid, Op: "upload", Err: &digest.SizeError{Expected: size, Actual: b.Size}}
	}
	return Blob{Digest: d, Size: b.Size}, l.record(ctx, actor, d, b.Size)
}

// record marks a blob live, checking inside the transaction that its bytes
// are still stored when it was not live already.
func (l *Local) record(ctx context.Context, actor string, d digest.Digest, size int64) error {
	return l.meta.AddStoredBlob(ctx, actor, d, size, func(ctx context.Context) (bool, error) {
		_, err := l.blobs.Stat(ctx, d)
		if core.KindOf(err) == core.KindNotFound {
			return false, nil
		}
		return err == nil, err
	})
}

func (l *Local) put(ctx context.Context, actor string, d digest.Digest, r io.Reader, size int64) (Blob, error) {
	cr := &countingReader{r: r}
	for round := 0; ; round++ {
		// Bytes found stored may belong to a blob GC is deleting, which
		// AddStoredBlob detects inside its transaction.
		if err := l.store(ctx, d, cr, size); err != nil {
			return Blob{}, err
		}
		info, err := l.blobs.Stat(ctx, d)
		if err == nil {
			err = l.record(ctx, actor, d, info.Size)
		}
		// Bytes gone before they were recorded (GC deleted them after
		// store found them, before Stat or inside record): write ours, if
		// we still can.
		gone := errors.Is(err, eventlog.ErrBytesGone) || core.KindOf(err) == core.KindNotFound
		if gone && cr.n == 0 && round == 0 {
			continue
		}
		if err != nil {
			return Blob{}, err
		}
		return Blob{Digest: d, Size: info.Size}, nil
	}
}

// store makes d's stored bytes intact: verified when already stored (the
// body is then not read), else written from r. A corrupt blob is reported
// before Put replaces it (Put verifies again, which costs a second read of
// damaged bytes only).
func (l *Local) store(ctx context.Context, d digest.Digest, r io.Reader, size int64) error {
	info, err := l.blobs.Verify(ctx, d)
	if err == nil {
		if err := blobstore.CheckSize("upload", d, size, info.Size); err != nil {
			return err
		}
		l.intact(d)
		return nil
	}
	if ce, ok := blobstore.AsCorrupt(err); ok {
		l.corrupted(ctx, foundByUpload, ce)
	} else if core.KindOf(err) != core.KindNotFound {
		return err
	}
	if err := l.blobs.Put(ctx, d, r, size); err != nil {
		return err
	}
	l.intact(d)
	return nil
}

// countingReader tells whether an upload's body was read at all.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// uploadUnknown stages the bytes while hashing them, then stores them under
// the digest they turned out to have.
func (l *Local) uploadUnknown(ctx context.Context, actor string, alg digest.Algorithm, r io.Reader, size int64) (Blob, error) {
	h, err := digest.NewHasher(alg)
	if err != nil {
		return Blob{}, err
	}
	f, err := os.CreateTemp(l.stage, "stream-*")
	if err != nil {
		return Blob{}, core.Wrap(core.KindInternal, "upload staging", err)
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err != nil {
		return Blob{}, readErr("upload", err)
	}
	if size >= 0 && n != size {
		return Blob{}, &core.Error{Kind: core.KindInvalid, Op: "upload", Err: &digest.SizeError{Expected: size, Actual: n}}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Blob{}, core.Wrap(core.KindInternal, "upload staging", err)
	}
	return l.Upload(ctx, actor, alg, h.Digest(), f, n)
}

// StartUpload implements DataPlane.
func (l *Local) StartUpload(ctx context.Context, alg digest.Algorithm, expected digest.Digest) (Session, error) {
	if !alg.Valid() {
		return Session{}, core.E(core.KindInvalid, "start upload", "unknown digest algorithm %q (use sha256 or blake3)", alg)
	}
	if !expected.IsZero() && expected.Algorithm() != alg {
		return Session{}, core.E(core.KindInvalid, "start upload", "expected digest %s does not use algorithm %s", expected, alg)
	}
	s, err := l.meta.CreateSession(ctx, alg, expected, l.sessionTTL)
	if err != nil {
		return Session{}, err
	}
	f, err := os.OpenFile(l.stagePath(s.ID), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		_ = l.meta.DeleteSession(ctx, s.ID)
		return Session{}, core.Wrap(core.KindInternal, "upload staging", err)
	}
	f.Close()
	return Session{ID: s.ID, Algorithm: alg, Offset: 0, ExpiresAt: s.ExpiresAt}, nil
}

func (l *Local) stagePath(id string) string { return filepath.Join(l.stage, "session-"+id) }

func (l *Local) lockSession(id string) func() {
	l.mu.Lock()
	sl, ok := l.sessions[id]
	if !ok {
		sl = &sessionLock{}
		l.sessions[id] = sl
	}
	sl.refs++
	l.mu.Unlock()
	sl.mu.Lock()
	return func() {
		sl.mu.Unlock()
		l.mu.Lock()
		if sl.refs--; sl.refs == 0 {
			delete(l.sessions, id)
		}
		l.mu.Unlock()
	}
}

// OffsetError says where a session really is after an Append at the wrong
// offset; clients resume from Offset.
type OffsetError struct {
	Session string
	Offset  int64
	Got     int64
}

func (e *OffsetError) Error() string {
	return fmt.Sprintf("upload session %s is at offset %d, not %d: resume from %d", e.Session, e.Offset, e.Got, e.Offset)
}

// Unwrap classifies the error as a conflict.
func (e *OffsetError) Unwrap() error { return &core.Error{Kind: core.KindConflict} }

// Append implements DataPlane.
func (l *Local) Append(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	unlock := l.lockSession(id)
	defer unlock()
	s, err := l.meta.Session(ctx, id)
	if err != nil {
		return 0, err
	}
	if offset != s.Received {
		return s.Received, &OffsetError{Session: id, Offset: s.Received, Got: offset}
	}
	f, err := os.OpenFile(l.stagePath(id), os.O_WRONLY, 0)
	if err != nil {
		return 0, core.E(core.KindNotFound, "append", "upload session %s has no staged data on this server: restart the upload", id)
	}
	defer f.Close()
	// Drop bytes a crashed earlier Append wrote past the recorded offset.
	if err := f.Truncate(offset); err != nil {
		return 0, core.Wrap(core.KindInternal, "append", err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, core.Wrap(core.KindInternal, "append", err)
	}
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return offset, readErr("append", err)
	}
	if err := f.Sync(); err != nil {
		return offset, core.Wrap(core.KindInternal, "append", err)
	}
	if err := l.meta.AdvanceSession(ctx, id, offset, offset+n, l.sessionTTL); err != nil {
		return offset, err
	}
	return offset + n, nil
}

// Finish implements DataPlane.
func (l *Local) Finish(ctx context.Context, actor, id string, d digest.Digest) (Blob, error) {
	unlock := l.lockSession(id)
	defer unlock()
	s, err := l.meta.Session(ctx, id)
	if err != nil {
		return Blob{}, err
	}
	if d.Algorithm() != s.Algorithm || (!s.Expected.IsZero() && s.Expected != d) {
		return Blob{}, core.E(core.KindInvalid, "finish upload", "digest %s does not match the session (algorithm %s, expected %s)", d, s.Algorithm, s.Expected)
	}
	f, err := os.Open(l.stagePath(id))
	if err != nil {
		return Blob{}, core.E(core.KindNotFound, "finish upload", "upload session %s has no staged data on this server: restart the upload", id)
	}
	defer f.Close()
	b, err := l.Upload(ctx, actor, s.Algorithm, d, io.LimitReader(f, s.Received), s.Received)
	if err != nil && core.KindOf(err) != core.KindInvalid {
		return Blob{}, err // transient: the session stays for a retry
	}
	l.endSession(ctx, id)
	return b, err
}

// Cancel implements DataPlane.
func (l *Local) Cancel(ctx context.Context, id string) error {
	unlock := l.lockSession(id)
	defer unlock()
	if _, err := l.meta.Session(ctx, id); err != nil {
		return err
	}
	l.endSession(ctx, id)
	return nil
}

func (l *Local) endSession(ctx context.Context, id string) {
	_ = os.Remove(l.stagePath(id))
	_ = l.meta.DeleteSession(context.WithoutCancel(ctx), id)
}

// ExpireSessions removes sessions past their expiry and their staged bytes.
func (l *Local) ExpireSessions(ctx context.Context) (int, error) {
	exp, err := l.meta.ExpiredSessions(ctx)
	if err != nil {
		return 0, err
	}
	for _, s := range exp {
		l.endSession(ctx, s.ID)
	}
	return len(exp), nil
}

// FindMissing implements DataPlane: the digests that are not live blobs in
// the metadata, and those this process found corrupt and no upload has
// repaired since. It reads no bytes.
func (l *Local) FindMissing(ctx context.Context, ds []digest.Digest) ([]digest.Digest, error) {
	if len(ds) > MaxFindMissing {
		return nil, core.E(core.KindInvalid, "find missing", "%d digests in one batch; send at most %d", len(ds), MaxFindMissing)
	}
	missing, err := l.meta.Missing(ctx, ds)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.corrupt) == 0 {
		return missing, nil
	}
	gone := make(map[digest.Digest]bool, len(missing))
	for _, d := range missing {
		gone[d] = true
	}
	out := missing[:0:0]
	for _, d := range ds {
		if gone[d] || l.corrupt[d] {
			out = append(out, d)
		}
	}
	return out, nil
}

// Open implements DataPlane.
func (l *Local) Open(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, int64, error) {
	b, err := l.meta.Blob(ctx, d)
	if err != nil {
		if core.KindOf(err) == core.KindNotFound {
			return nil, 0, core.E(core.KindNotFound, "open blob", "blob %s is not stored", d)
		}
		return nil, 0, err
	}
	if b.State != eventlog.StateLive {
		return nil, 0, core.E(core.KindNotFound, "open blob", "blob %s is not stored (%s)", d, b.State)
	}
	rc, err := l.blobs.Get(ctx, d, offset, length)
	if err != nil {
		if ce, ok := blobstore.AsCorrupt(err); ok {
			l.corrupted(ctx, foundByRead, ce)
		}
		return nil, 0, err
	}
	n := length
	if n < 0 {
		n = b.Size - offset
	}
	return &watchedReader{rc: rc, l: l, ctx: ctx, d: d, want: n, left: n}, b.Size, nil
}

// watchedReader reports corruption a read finds, and holds the store to
// the size the metadata recorded: stored bytes that run past it are
// corrupt too, and are refused before they are handed out.
type watchedReader struct {
	rc         io.ReadCloser
	l          *Local
	ctx        context.Context
	d          digest.Digest
	want, left int64
	err        error // sticky
}

func (w *watchedReader) Read(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.rc.Read(p)
	if int64(n) > w.left {
		n, err = 0, &blobstore.CorruptError{Digest: w.d, Chunk: -1,
			Err: &digest.SizeError{Expected: w.want, Actual: w.want - w.left + int64(n)}}
	}
	w.left -= int64(n)
	if err == io.EOF && w.left > 0 {
		err = &blobstore.CorruptError{Digest: w.d, Chunk: -1, Err: &digest.SizeError{Expected: w.want, Actual: w.want - w.left}}
	}
	if err != nil {
		w.err = err
		if ce, ok := blobstore.AsCorrupt(err); ok {
			w.l.corrupted(w.ctx, foundByRead, ce)
		}
	}
	return n, err
}

func (w *watchedReader) Close() error { return w.rc.Close() }

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func readErr(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &core.Error{Kind: core.KindCanceled, Op: op, Err: err}
	}
	var ce *core.Error
	if errors.As(err, &ce) {
		return err
	}
	return &core.Error{Kind: core.KindInvalid, Op: op, Msg: "reading the upload failed", Err: err}
}
