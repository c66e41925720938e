package dataplane_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deltaci/deltaci/internal/artifact/blobstore/fs"
	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	elsqlite "github.com/deltaci/deltaci/internal/artifact/eventlog/sqlite"
	"github.com/deltaci/deltaci/internal/core"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type bundle struct {
	dp  *dataplane.Local
	ctx context.Context
	now *atomic.Int64 // clock offset in ms
	dir string        // meta.db, blobs/ (the fs store's root), stage/
	log *lockedBuffer // the data plane's log lines
}

// lockedBuffer collects log lines written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func setup(t *testing.T) bundle {
	t.Helper()
	dir := t.TempDir()
	off := &atomic.Int64{}
	drv, err := elsqlite.Open(context.Background(), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	meta := eventlog.New(drv, eventlog.WithClock(func() time.Time { return time.Now().Add(time.Duration(off.Load()) * time.Millisecond) }))
	t.Cleanup(func() { meta.Close() })
	blobs, err := fs.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	log := &lockedBuffer{}
	dp, err := dataplane.NewLocal(meta, blobs, filepath.Join(dir, "stage"), dataplane.WithLog(slog.New(slog.NewTextHandler(log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	return bundle{dp: dp, ctx: context.Background(), now: off, dir: dir, log: log}
}

func dig(t *testing.T, b []byte) digest.Digest {
	t.Helper()
	d, err := digest.FromBytes(digest.SHA256, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readAll(t *testing.T, b bundle, d digest.Digest, off, n int64) string {
	t.Helper()
	rc, _, err := b.dp.Open(b.ctx, d, off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(got)
}

func TestUploadAndOpen(t *testing.T) {
	t.Parallel()
	b := setup(t)
	content := []byte("hello, artifact store")
	d := dig(t, content)
	blob, err := b.dp.Upload(b.ctx, "alice", digest.SHA256, d, bytes.NewReader(content), int64(len(content)))
	if err != nil || blob.Digest != d || blob.Size != int64(len(content)) {
		t.Fatalf("upload = %+v, %v", blob, err)
	}
	if got := readAll(t, b, d, 0, -1); got != string(content) {
		t.Errorf("whole = %q", got)
	}
	if got := readAll(t, b, d, 7, 8); got != "artifact" {
		t.Errorf("range = %q", got)
	}
	if _, _, err := b.dp.Open(b.ctx, d, 30, 1); core.KindOf(err) != core.KindInvalid {
		t.Errorf("range past the end: %v", err)
	}
	if _, _, err := b.dp.Open(b.ctx, dig(t, []byte("nope")), 0, -1); core.KindOf(err) != core.KindNotFound {
		t.Errorf("unknown blob: %v", err)
	}
}

func TestUploadMismatchStoresNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	want := dig(t, []byte("expected"))
	_, err := b.dp.Upload(b.ctx, "mallory", digest.SHA256, want, strings.NewReader("something else"), -1)
	var mm *digest.MismatchError
	if core.KindOf(err) != core.KindInvalid || !errors.As(err, &mm) {
		t.Fatalf("mismatch: %v", err)
	}
	missing, err := b.dp.FindMissing(b.ctx, []digest.Digest{want})
	if err != nil || len(missing) != 1 {
		t.Errorf("find-missing after a bad upload = %v, %v", missing, err)
	}
	_, err = b.dp.Upload(b.ctx, "mallory", digest.SHA256, dig(t, []byte("abc")), strings.NewReader("abc"), 4)
	if core.KindOf(err) != core.KindInvalid {
		t.Errorf("wrong size: %v", err)
	}
}

func TestUploadUnknownDigest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.BLAKE3} {
		blob, err := b.dp.Upload(b.ctx, "a", alg, digest.Digest{}, strings.NewReader("computed here"), -1)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := digest.FromBytes(alg, []byte("computed here"))
		if blob.Digest != want || blob.Size != 13 {
			t.Errorf("%s: upload = %+v, want %s", alg, blob, want)
		}
	}
}

// blockingReader delivers its content only after release is closed, and
// counts what it delivered. started, when set, is closed at the first Read.
type blockingReader struct {
	r       io.Reader
	release <-chan struct{}
	read    *atomic.Int64
	started *sync.Once
	signal  chan struct{}
}

func (b blockingReader) Read(p []byte) (int, error) {
	if b.started != nil {
		b.started.Do(func() { close(b.signal) })
	}
	<-b.release
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func TestIdenticalConcurrentUploadsDeduplicated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	content := bytes.Repeat([]byte("dedupe "), 10000)
	d := dig(t, content)
	release := make(chan struct{})
	var first, others atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 9)
	started := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := b.dp.Upload(b.ctx, "a", digest.SHA256, d,
			blockingReader{bytes.NewReader(content), release, &first, &sync.Once{}, started}, int64(len(content)))
		errs <- err
	}()
	<-started // the first upload is in flight, reading
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.dp.Upload(b.ctx, "b", digest.SHA256, d, blockingReader{r: bytes.NewReader(content), release: release, read: &others}, int64(len(content)))
			errs <- err
		}()
	}
	time.Sleep(20 * time.Millisecond) // give the others time to queue behind it; either way they must not read
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if first.Load() != int64(len(content)) {
		t.Errorf("first upload read %d bytes", first.Load())
	}
	if others.Load() != 0 {
		t.Errorf("duplicate uploads read %d bytes; they should wait for the first and read nothing", others.Load())
	}
}

func TestResumableSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	content := []byte("0123456789abcdefghij")
	d := dig(t, content)
	s, err := b.dp.StartUpload(b.ctx, digest.SHA256, digest.Digest{})
	if err != nil {
		t.Fatal(err)
	}
	off, err := b.dp.Append(b.ctx, s.ID, 0, bytes.NewReader(content[:8]))
	if err != nil || off != 8 {
		t.Fatalf("append = %d, %v", off, err)
	}
	// A client that lost the response retries from 0: told where to resume.
	_, err = b.dp.Append(b.ctx, s.ID, 0, bytes.NewReader(content[:8]))
	var oe *dataplane.OffsetError
	if !errors.As(err, &oe) || oe.Offset != 8 || core.KindOf(err) != core.KindConflict {
		t.Fatalf("append at a stale offset: %v", err)
	}
	if off, err = b.dp.Append(b.ctx, s.ID, oe.Offset, bytes.NewReader(content[8:])); err != nil || off != 20 {
		t.Fatalf("resume = %d, %v", off, err)
	}
	blob, err := b.dp.Finish(b.ctx, "alice", s.ID, d)
	if err != nil || blob.Size != 20 {
		t.Fatalf("finish = %+v, %v", blob, err)
	}
	if got := readAll(t, b, d, 0, -1); got != string(content) {
		t.Errorf("stored %q", got)
	}
	if _, err := b.dp.Append(b.ctx, s.ID, 20, strings.NewReader("x")); core.KindOf(err) != core.KindNotFound {
		t.Errorf("append after finish: %v", err)
	}
}

func TestSessionFinishWrongDigest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s, _ := b.dp.StartUpload(b.ctx, digest.SHA256, digest.Digest{})
	if _, err := b.dp.Append(b.ctx, s.ID, 0, strings.NewReader("real bytes")); err != nil {
		t.Fatal(err)
	}
	wrong := dig(t, []byte("claimed bytes"))
	if _, err := b.dp.Finish(b.ctx, "mallory", s.ID, wrong); core.KindOf(err) != core.KindInvalid {
		t.Fatalf("finish with a wrong digest: %v", err)
	}
	if m, _ := b.dp.FindMissing(b.ctx, []digest.Digest{wrong}); len(m) != 1 {
		t.Error("a blob was stored under a digest its bytes do not have")
	}
	if _, err := b.dp.StartUpload(b.ctx, "md5", digest.Digest{}); core.KindOf(err) != core.KindInvalid {
		t.Errorf("unknown algorithm: %v", err)
	}
}

func TestSessionExpiryAndCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s, _ := b.dp.StartUpload(b.ctx, digest.SHA256, digest.Digest{})
	if err := b.dp.Cancel(b.ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.dp.Append(b.ctx, s.ID, 0, strings.NewReader("x")); core.KindOf(err) != core.KindNotFound {
		t.Errorf("append to a canceled session: %v", err)
	}
	s2, _ := b.dp.StartUpload(b.ctx, digest.SHA256, digest.Digest{})
	b.now.Add((2 * time.Hour).Milliseconds())
	if _, err := b.dp.Append(b.ctx, s2.ID, 0, strings.NewReader("x")); core.KindOf(err) != core.KindNotFound {
		t.Errorf("append to an expired session: %v", err)
	}
	if n, err := b.dp.ExpireSessions(b.ctx); err != nil || n != 1 {
		t.Errorf("expire = %d, %v", n, err)
	}
}

func TestFindMissing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	have := []byte("have")
	hd := dig(t, have)
	if _, err := b.dp.Upload(b.ctx, "a", digest.SHA256, hd, bytes.NewReader(have), 4); err != nil {
		t.Fatal(err)
	}
	x, y := dig(t, []byte("x")), dig(t, []byte("y"))
	got, err := b.dp.FindMissing(b.ctx, []digest.Digest{y, hd, x})
	if err != nil || len(got) != 2 || got[0] != y || got[1] != x {
		t.Errorf("missing = %v, %v (input order kept)", got, err)
	}
	big := make([]digest.Digest, dataplane.MaxFindMissing+1)
	if _, err := b.dp.FindMissing(b.ctx, big); core.KindOf(err) != core.KindInvalid {
		t.Errorf("oversized batch: %v", err)
	}
}

// pattern yields n deterministic bytes without holding them.
type pattern struct{ left int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	n := int64(len(b))
	if n > p.left {
		n = p.left
	}
	for i := range b[:n] {
		b[i] = byte(i * 7)
	}
	p.left -= n
	return int(n), nil
}

// TestMemoryBounded uploads 64 MiB, announced and not: the allocations stay
// far below the size, so memory does not grow with the blob.
func TestMemoryBounded(t *testing.T) {
	b := setup(t)
	const size = 64 << 20
	d, _, err := digest.FromReader(digest.SHA256, &pattern{left: size})
	if err != nil {
		t.Fatal(err)
	}
	for _, known := range []bool{true, false} {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var err error
		if known {
			_, err = b.dp.Upload(b.ctx, "a", digest.SHA256, d, &pattern{left: size}, size)
		} else {
			_, err = b.dp.Upload(b.ctx, "a", digest.SHA256, digest.Digest{}, &pattern{left: size}, -1)
		}
		if err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Errorf("known=%v: uploading 64 MiB allocated %d MiB", known, alloc>>20)
		}
	}
}
