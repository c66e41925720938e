package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/s3"
	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// raceEngines crosses both databases with both blob stores, because the GC
// race differs along both: one writer on SQLite and a lock on the log's
// head row on PostgreSQL; an fs blob's age is its rename, an S3 object's
// is its PUT, or the start of its multipart upload.
var raceEngines = func() []engine {
	var out []engine
	for _, m := range engines {
		for _, b := range engines {
			db, _, _ := strings.Cut(m.name, "+")
			_, bs, _ := strings.Cut(b.name, "+")
			out = append(out, engine{name: db + "+" + bs, meta: m.meta, blob: b.blob})
		}
	}
	return out
}()

func eachRace(t *testing.T, test func(t *testing.T, e engine)) {
	for _, e := range raceEngines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			test(t, e)
		})
	}
}

// leasedSetup is setup with the data plane wired as open.Open wires it:
// every upload holds a GC lease.
func leasedSetup(t testing.TB, e engine) bundle {
	b := setup(t, e)
	b.reg.Data = &registry.LeasedUploads{DataPlane: b.reg.Data, Leaser: b.reg}
	return b
}

// assertIntact fails unless every blob of every ref's manifest is stored
// and verifies, and the log replays to the live state.
func assertIntact(t *testing.T, b bundle) {
	t.Helper()
	refs, err := b.reg.Meta.Refs(b.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, r := range refs {
		_, m, err := b.reg.Manifest(b.ctx, r.Manifest.String())
		if err != nil {
			t.Errorf("ref %s: %v", r, err)
			continue
		}
		for _, e := range m.Entries {
			if e.IsSymlink() {
				continue
			}
			rc, _, err := b.reg.Data.Open(b.ctx, e.Digest, 0, -1)
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if err != nil {
				lost++
				t.Errorf("ref %s: blob %s of %s lost: %v", r, e.Digest, e.Path, err)
			}
		}
	}
	if rp, err := b.reg.Meta.Replay(b.ctx); err != nil || !rp.Match() {
		t.Errorf("replay: %+v, %v", rp, err)
	}
}

func TestGCGraceZeroMeansZero(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e engine) {
		b := setup(t, e)
		start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		b.clock.set(start)
		src := filepath.Join(b.dir, "src")
		writeTree(t, src, map[string]string{"a": "alpha", "b": "beta"})
		if _, err := b.reg.Push(b.ctx, "a", src, "ns/app:1", registry.PushOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := b.reg.Meta.DeleteRef(b.ctx, "a", eventlog.RefName{Namespace: "ns", Name: "app", Tag: "1"}, "test"); err != nil {
			t.Fatal(err)
		}
		// Uploaded, unreferenced and leased: what a push holds before it commits.
		held := []byte("held by a lease")
		hd, _ := digest.FromBytes(digest.SHA256, held)
		if _, err := b.reg.Data.Upload(b.ctx, "a", digest.SHA256, hd, bytes.NewReader(held), int64(len(held))); err != nil {
			t.Fatal(err)
		}
		lease, err := b.reg.TakeLease(b.ctx, []digest.Digest{hd}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// One millisecond later everything is older than a zero window:
		// not the hour an absent grace gives.
		b.clock.set(start.Add(time.Millisecond))
		rep, err := b.reg.GC(b.ctx, "gc", 0)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Manifests != 1 || rep.Blobs != 2 {
			t.Errorf("GC with grace 0 = %+v, want the manifest and its 2 blobs", rep)
		}
		if blob, err := b.reg.Meta.Blob(b.ctx, hd); err != nil || blob.State != eventlog.StateLive {
			t.Errorf("leased blob after GC: %+v, %v", blob, err)
		}
		if err := b.reg.ReleaseLease(b.ctx, lease); err != nil {
			t.Fatal(err)
		}
		if rep, err := b.reg.GC(b.ctx, "gc", 0); err != nil || rep.Blobs != 1 {
			t.Errorf("GC after the lease ended = %+v, %v; want the released blob", rep, err)
		}
		if _, err := b.reg.GC(b.ctx, "gc", -time.Second); core.KindOf(err) != core.KindInvalid {
			t.Errorf("negative grace: %v", err)
		}
	})
}

func TestLeaseLapsesAndRenews(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e engine) {
		b := setup(t, e)
		start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		b.clock.set(start)
		content := []byte("leased")
		d, _ := digest.FromBytes(digest.SHA256, content)
		if _, err := b.reg.Data.Upload(b.ctx, "a", digest.SHA256, d, bytes.NewReader(content), int64(len(content))); err != nil {
			t.Fatal(err)
		}
		id, err := b.reg.TakeLease(b.ctx, []digest.Digest{d, d}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		b.clock.set(start.Add(50 * time.Second))
		if err := b.reg.RenewLease(b.ctx, id, time.Minute); err != nil {
			t.Fatal(err)
		}
		// Past the first expiry, inside the renewed one.
		b.clock.set(start.Add(100 * time.Second))
		if rep, err := b.reg.GC(b.ctx, "gc", 0); err != nil || rep.Blobs != 0 {
			t.Fatalf("GC under a renewed lease = %+v, %v", rep, err)
		}
		b.clock.set(start.Add(200 * time.Second))
		if err := b.reg.RenewLease(b.ctx, id, time.Minute); core.KindOf(err) != core.KindNotFound {
			t.Errorf("renewing a lapsed lease: %v, want not found", err)
		}
		if rep, err := b.reg.GC(b.ctx, "gc", 0); err != nil || rep.Blobs != 1 {
			t.Errorf("GC after the lease lapsed = %+v, %v", rep, err)
		}
		if _, err := b.reg.TakeLease(b.ctx, nil, time.Minute); core.KindOf(err) != core.KindInvalid {
			t.Errorf("empty lease: %v", err)
		}
		if err := b.reg.ReleaseLease(b.ctx, id); err != nil {
			t.Errorf("releasing a lapsed lease: %v", err)
		}
	})
}

// hookedCatalog runs before at the moment a push commits (or, for a
// catalog without RefCommitter, between the commit and the ref), the
// window in which GC used to take the manifest or its blobs.
type hookedCatalog struct {
	*registry.Registry
	before func()
}

func (c hookedCatalog) CommitManifestRef(ctx context.Context, actor string, m manifest.Manifest, ref eventlog.RefName) (digest.Digest, []byte, error) {
	c.before()
	return c.Registry.CommitManifestRef(ctx, actor, m, ref)
}

// plainCatalog is a catalog that can neither lease nor commit with its
// ref: a client of an older server.
type plainCatalog struct {
	reg    *registry.Registry
	commit func()
}

func (c plainCatalog) Resolve(ctx context.Context, target string) (digest.Digest, error) {
	return c.reg.Resolve(ctx, target)
}

func (c plainCatalog) Manifest(ctx context.Context, target string) (digest.Digest, manifest.Manifest, error) {
	return c.reg.Manifest(ctx, target)
}

func (c plainCatalog) CommitManifest(ctx context.Context, actor string, m manifest.Manifest) (digest.Digest, []byte, error) {
	d, body, err := c.reg.CommitManifest(ctx, actor, m)
	if err == nil {
		c.commit()
	}
	return d, body, err
}

func (c plainCatalog) SetRef(ctx context.Context, actor string, ref eventlog.RefName, d digest.Digest) error {
	return c.reg.SetRef(ctx, actor, ref, d)
}

// TestGCAtCommitCannotFailAPush runs a GC with a zero grace window at the
// worst moment of a push: after its uploads, before its commit and ref. A
// leased push loses nothing; one without a lease (an older server) sees GC
// take its manifest and blobs ("manifest … is not stored") and pushes
// again, within its bounded rounds.
func TestGCAtCommitCannotFailAPush(t *testing.T) {
	t.Parallel()
	eachRace(t, func(t *testing.T, e engine) {
		b := leasedSetup(t, e)
		// Ahead of the blob store's clock, so that stored bytes look old
		// to the orphan sweep too.
		start := time.Now().UTC().Truncate(time.Millisecond).Add(time.Hour)
		b.clock.set(start)
		// GC at the worst moment, with everything already a second old.
		gcs := 0
		gcNow := func() {
			gcs++
			b.clock.set(start.Add(time.Duration(gcs) * time.Second))
			if _, err := b.reg.GC(b.ctx, "gc", 0); err != nil {
				t.Errorf("GC: %v", err)
			}
		}
		src := filepath.Join(b.dir, "leased")
		writeTree(t, src, map[string]string{"a": "leased a", "b": "leased b"})
		leased := &registry.Transfer{Data: b.reg.Data, Catalog: hookedCatalog{b.reg, gcNow}}
		res, err := leased.Push(b.ctx, "ci", src, "ns/leased:1", registry.PushOptions{})
		if err != nil {
			t.Fatalf("leased push: %v", err)
		}
		if res.Uploaded != 2 {
			t.Errorf("leased push uploaded %d blobs, want 2 (a round lost to GC)", res.Uploaded)
		}
		// A blob the push finds stored, unreferenced since its ref went,
		// is not uploaded again, and the lease keeps it until the commit.
		if err := b.reg.Meta.DeleteRef(b.ctx, "ci", eventlog.RefName{Namespace: "ns", Name: "leased", Tag: "1"}, "test"); err != nil {
			t.Fatal(err)
		}
		again := filepath.Join(b.dir, "again")
		writeTree(t, again, map[string]string{"a": "leased a", "c": "leased c"})
		res, err = leased.Push(b.ctx, "ci", again, "ns/leased:2", registry.PushOptions{})
		if err != nil {
			t.Fatalf("second leased push: %v", err)
		}
		if res.Uploaded != 1 {
			t.Errorf("second leased push uploaded %d blobs, want 1", res.Uploaded)
		}

		once := false
		plain := &registry.Transfer{Data: b.reg.Data, Catalog: plainCatalog{b.reg, func() {
			if !once {
				once = true
				gcNow()
			}
		}}}
		src2 := filepath.Join(b.dir, "plain")
		writeTree(t, src2, map[string]string{"x": "plain x", "y": "plain y"})
		res, err = plain.Push(b.ctx, "ci", src2, "ns/plain:1", registry.PushOptions{})
		if err != nil {
			t.Fatalf("push without a lease after GC took its manifest: %v", err)
		}
		if res.Uploaded != 4 {
			t.Errorf("push without a lease uploaded %d blobs, want 4 (its 2, then again after GC)", res.Uploaded)
		}
		assertIntact(t, b)
	})
}

// stallingStore holds each Put of a chosen digest after its bytes are
// stored (and each Verify that finds them stored), before the upload can
// record them, and runs during then.
type stallingStore struct {
	blobstore.Store
	target digest.Digest
	during func()
}

func (s stallingStore) Put(ctx context.Context, d digest.Digest, r io.Reader, size int64) error {
	err := s.Store.Put(ctx, d, r, size)
	if err == nil && d == s.target {
		s.during()
	}
	return err
}

// Verify is how an upload finds the bytes stored already, and skips
// writing them.
func (s stallingStore) Verify(ctx context.Context, d digest.Digest) (blobstore.Info, error) {
	info, err := s.Store.Verify(ctx, d)
	if err == nil && d == s.target {
		s.during()
	}
	return info, err
}

// renewals counts a Leaser's successful renewals.
type renewals struct {
	registry.Leaser
	renewed chan struct{}
}

func (r renewals) RenewLease(ctx context.Context, id string, ttl time.Duration) error {
	err := r.Leaser.RenewLease(ctx, id, ttl)
	if err == nil {
		select {
		case r.renewed <- struct{}{}:
		default:
		}
	}
	return err
}

// TestOrphanSweepSparesUploadInFlight stalls an upload after its bytes
// reached the blob store and before they are recorded, for longer than the
// grace window and than its lease's term, while GC runs again and again.
// On S3 the blob is a multipart upload, whose object's LastModified is the
// start of the upload. The lease, renewed as the upload goes on, keeps the
// orphan sweep off it; without one the sweep deletes the bytes ("404 on a
// blob the orphan sweep removed before it was recorded").
func TestOrphanSweepSparesUploadInFlight(t *testing.T) {
	t.Parallel()
	eachRace(t, func(t *testing.T, e engine) {
		for _, leased := range []bool{true, false} {
			t.Run(fmt.Sprint("leased=", leased), func(t *testing.T) {
				dir := t.TempDir()
				c := &clock{}
				start := time.Now().UTC().Truncate(time.Millisecond)
				c.set(start)
				meta := eventlog.New(e.meta(t, dir), eventlog.WithClock(c.now))
				t.Cleanup(func() { meta.Close() })
				inner := e.blob(t, dir)
				size := 2 << 10
				if _, ok := inner.(*s3.Store); ok {
					inner = multipartStore(t)
					size = 11 << 20 // three parts of 5 MiB
				}
				content := make([]byte, size)
				rand.NewChaCha8([32]byte{byte(size >> 20)}).Read(content)
				d, _ := digest.FromBytes(digest.SHA256, content)

				reg := &registry.Registry{Meta: meta, Alg: digest.SHA256}
				renewed := make(chan struct{}, 1)
				ctx := context.Background()
				var sweeps, taken int
				during := func() {
					// The upload takes over an hour, longer than GC's
					// grace and than ten terms of its lease; GC runs every
					// 40 seconds of it, each time after the lease was
					// renewed at that time.
					for step := 1; step <= 10; step++ {
						c.set(start.Add(time.Hour + time.Duration(step)*40*time.Second))
						if leased && !renewedSince(t, renewed) {
							return
						}
						rep, err := reg.GC(ctx, "gc", time.Hour)
						if err != nil {
							t.Errorf("GC: %v", err)
							return
						}
						sweeps++
						taken += rep.Orphans
					}
				}
				blobs := stallingStore{Store: inner, target: d, during: during}
				local, err := dataplane.NewLocal(meta, blobs, filepath.Join(dir, "staging"))
				if err != nil {
					t.Fatal(err)
				}
				reg.Blobs, reg.Data = blobs, local
				if leased {
					reg.Data = &registry.LeasedUploads{DataPlane: local, Leaser: renewals{reg, renewed},
						Terms: registry.LeaseTerms{TTL: time.Minute, Renew: time.Millisecond}}
				}
				_, err = reg.Data.Upload(ctx, "ci", digest.SHA256, d, bytes.NewReader(content), int64(size))
				if sweeps != 10 {
					t.Fatalf("%d GC runs during the upload, want 10", sweeps)
				}
				if !leased {
					// The race as it was: the sweep took the bytes and the
					// upload, having sent them, could only fail (not found,
					// or a conflict when the sweep was still at it).
					if k := core.KindOf(err); taken != 1 || (k != core.KindNotFound && k != core.KindConflict) {
						t.Fatalf("upload without a lease: orphans taken %d, err %v; want 1 and the upload failed", taken, err)
					}
					return
				}
				if err != nil || taken != 0 {
					t.Fatalf("leased upload: %v (orphans taken during it: %d)", err, taken)
				}
				rc, _, err := reg.Data.Open(ctx, d, 0, -1)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, content) {
					t.Fatalf("read back %d bytes: %v", len(got), err)
				}
			})
		}
	})
}

// renewedSince waits for a renewal that began after it was called: the
// second one to end from now on, since renewals run one at a time.
func renewedSince(t *testing.T, renewed chan struct{}) bool {
	t.Helper()
	select {
	case <-renewed:
	default:
	}
	for range 2 {
		select {
		case <-renewed:
		case <-time.After(time.Minute):
			t.Error("no lease renewal for a minute")
			return false
		}
	}
	return true
}

// TestUploadOfBlobGCIsDeleting uploads a blob that GC marked for deletion
// just before: its bytes are still stored, so the upload skips writing
// them, and GC deletes them before the upload records the blob. The
// upload notices (they are not found) and writes its own.
func TestUploadOfBlobGCIsDeleting(t *testing.T) {
	t.Parallel()
	eachRace(t, func(t *testing.T, e engine) {
		b := leasedSetup(t, e)
		content := []byte("uploaded again while GC deletes it")
		d, _ := digest.FromBytes(digest.SHA256, content)
		if _, err := b.reg.Data.Upload(b.ctx, "ci", digest.SHA256, d, bytes.NewReader(content), int64(len(content))); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.reg.Meta.MarkDeleting(b.ctx, "gc", d, time.Now().Add(time.Hour)); err != nil || !ok {
			t.Fatalf("mark deleting: %v, %v", ok, err)
		}
		once := false
		blobs := stallingStore{Store: b.reg.Blobs, target: d, during: func() {
			if once {
				return
			}
			once = true
			// GC finishes the deletion it began.
			if rep, err := b.reg.GC(b.ctx, "gc", time.Hour); err != nil || rep.Blobs != 1 {
				t.Errorf("GC = %+v, %v; want the blob it was deleting", rep, err)
			}
		}}
		local, err := dataplane.NewLocal(b.reg.Meta, blobs, filepath.Join(b.dir, "staging2"))
		if err != nil {
			t.Fatal(err)
		}
		data := &registry.LeasedUploads{DataPlane: local, Leaser: b.reg}
		if _, err := data.Upload(b.ctx, "ci", digest.SHA256, d, bytes.NewReader(content), int64(len(content))); err != nil {
			t.Fatalf("upload while GC deleted the blob: %v", err)
		}
		rc, _, err := data.Open(b.ctx, d, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("read back %q: %v", got, err)
		}
	})
}

// TestStaleSweepSparesLiveMultipartUpload holds an upload to S3 between
// its parts while GC removes stale staging with no age limit at all, as it
// would for an upload that began more than a day ago: the S3 multipart
// upload's age is its start, however lively it is. Its lease spares it;
// without one, GC aborts it and the upload fails.
func TestStaleSweepSparesLiveMultipartUpload(t *testing.T) {
	t.Parallel()
	for _, e := range raceEngines {
		if !strings.HasSuffix(e.name, "+MinIO") {
			continue
		}
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			for _, leased := range []bool{true, false} {
				t.Run(fmt.Sprint("leased=", leased), func(t *testing.T) {
					ctx := context.Background()
					dir := t.TempDir()
					meta := eventlog.New(e.meta(t, dir))
					t.Cleanup(func() { meta.Close() })
					blobs := multipartStore(t)
					local, err := dataplane.NewLocal(meta, blobs, filepath.Join(dir, "staging"))
					if err != nil {
						t.Fatal(err)
					}
					reg := &registry.Registry{Meta: meta, Blobs: blobs, Data: local, Alg: digest.SHA256, StaleAge: time.Nanosecond}
					if leased {
						reg.Data = &registry.LeasedUploads{DataPlane: local, Leaser: reg}
					}
					content := make([]byte, 11<<20)
					rand.NewChaCha8([32]byte{7}).Read(content)
					d, _ := digest.FromBytes(digest.SHA256, content)
					// Past the first 5 MiB part: the multipart upload has begun.
					g := &gate{data: content, at: 6 << 20, reached: make(chan struct{}), open: make(chan struct{})}
					done := make(chan error, 1)
					go func() {
						_, err := reg.Data.Upload(ctx, "ci", digest.SHA256, d, g, int64(len(content)))
						done <- err
					}()
					select {
					case <-g.reached:
					case <-time.After(time.Minute):
						t.Fatal("the upload did not reach its second part within a minute")
					}
					rep, gcErr := reg.GC(ctx, "gc", 0)
					close(g.open)
					var upErr error
					select {
					case upErr = <-done:
					case <-time.After(time.Minute):
						t.Fatal("the upload did not end within a minute of going on")
					}
					if gcErr != nil {
						t.Fatal(gcErr)
					}
					if !leased {
						if rep.Stale != 1 || upErr == nil {
							t.Fatalf("without a lease: GC removed %d stale uploads, the upload: %v; want 1 and a failed upload", rep.Stale, upErr)
						}
						return
					}
					if rep.Stale != 0 || upErr != nil {
						t.Fatalf("leased upload: GC removed %d stale uploads, the upload: %v", rep.Stale, upErr)
					}
					rc, _, err := reg.Data.Open(ctx, d, 0, -1)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || !bytes.Equal(got, content) {
						t.Fatalf("read back %d bytes: %v", len(got), err)
					}
				})
			}
		})
	}
}

// gate is a reader of data that stops before byte at, says so by closing
// reached, and goes on once open is closed.
type gate struct {
	data    []byte
	off     int
	at      int
	reached chan struct{}
	open    chan struct{}
}

func (g *gate) Read(p []byte) (int, error) {
	if g.off == g.at {
		close(g.reached)
		<-g.open
		g.at = -1
	}
	if g.off == len(g.data) {
		return 0, io.EOF
	}
	end := len(g.data)
	if g.at > g.off {
		end = g.at
	}
	n := copy(p, g.data[g.off:end])
	g.off += n
	return n, nil
}

// multipartStore is an S3 store of its own prefix whose blobs over 5 MiB go
// up as multipart uploads.
func multipartStore(t *testing.T) blobstore.Store {
	t.Helper()
	srv := minio.Server(t)
	s, err := s3.Open(context.Background(), "s3://"+srv.Bucket+"/"+store.NewID(), s3.Options{
		Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: s3.MinPartSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// The log messages of a push that lost a round to GC, and of an upload
// offered again while GC deleted an earlier copy of its blob.
const (
	lostRound = "push raced with GC; uploading again"
	reoffer   = "blob is being garbage-collected; offering it again"
)

// messages is a slog handler that counts messages and keeps the errors
// they carry.
type messages struct {
	mu   sync.Mutex
	n    map[string]int
	errs []string
}

func (m *messages) Enabled(context.Context, slog.Level) bool { return true }

func (m *messages) Handle(_ context.Context, r slog.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[r.Message]++
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			m.errs = append(m.errs, r.Message+": "+a.Value.String())
		}
		return true
	})
	return nil
}

func (m *messages) WithAttrs([]slog.Attr) slog.Handler { return m }
func (m *messages) WithGroup(string) slog.Handler      { return m }

func (m *messages) count(msg string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[msg]
}

// TestGCRaceNeverFailsAPush runs GC with a zero grace window back to back
// while writers push, retag and delete refs over a small pool of contents,
// so blobs are shared, dropped and uploaded again under GC's feet. No push
// may fail or lose a round, and no blob a ref reaches may be lost (the
// distribution#3045 race). DELTACI_GC_STRESS_CYCLES sets the cycles.
func TestGCRaceNeverFailsAPush(t *testing.T) {
	t.Parallel()
	cycles := 200
	if testing.Short() {
		cycles = 40
	}
	if s := os.Getenv("DELTACI_GC_STRESS_CYCLES"); s != "" {
		fmt.Sscan(s, &cycles)
	}
	eachRace(t, func(t *testing.T, e engine) {
		b := leasedSetup(t, e)
		logged := &messages{}
		b.reg.Log = slog.New(logged)
		ctx, cancel := context.WithCancel(b.ctx)
		defer cancel()
		var pushes, failed atomic.Int64
		var wg sync.WaitGroup
		tokens := make(chan struct{})
		errc := make(chan error, 16)
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 2))
				for i := 0; ; i++ {
					select {
					case <-tokens:
					case <-ctx.Done():
						return
					}
					src := filepath.Join(b.dir, fmt.Sprintf("w%d-%d", w, i))
					files := map[string]string{}
					for f := 0; f < 3; f++ {
						files[fmt.Sprint("f", f)] = fmt.Sprint("content-", rng.IntN(12))
					}
					writeTree(t, src, files)
					ref := fmt.Sprintf("ns/w%d:%d", w, rng.IntN(4))
					_, err := b.reg.Push(ctx, "pusher", src, ref, registry.PushOptions{Parallel: 2})
					os.RemoveAll(src)
					switch {
					case err == nil:
						pushes.Add(1)
					case ctx.Err() != nil:
						return
					default:
						failed.Add(1)
						errc <- fmt.Errorf("push %d of writer %d: %w", i, w, err)
						return
					}
					if rng.IntN(3) == 0 {
						r := eventlog.RefName{Namespace: "ns", Name: fmt.Sprint("w", w), Tag: fmt.Sprint(rng.IntN(4))}
						if err := b.reg.Meta.DeleteRef(ctx, "pusher", r, "stress"); err != nil && core.KindOf(err) != core.KindNotFound && ctx.Err() == nil {
							errc <- fmt.Errorf("delete ref: %w", err)
							return
						}
					}
				}
			}(w)
		}
		for c := 0; c < cycles && failed.Load() == 0; c++ {
			if _, err := b.reg.GC(b.ctx, "gc", 0); err != nil {
				cancel()
				wg.Wait()
				t.Fatalf("GC cycle %d: %v", c, err)
			}
			// One push per cycle, handed over when a writer is free, so
			// pushes and GC interleave however fast either runs.
			select {
			case tokens <- struct{}{}:
			case <-time.After(time.Minute):
				cancel()
				wg.Wait()
				t.Fatalf("no writer took a push for a minute (cycle %d)", c)
			}
		}
		cancel()
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		lostRounds, reoffered := logged.count(lostRound), logged.count(reoffer)
		t.Logf("%d GC cycles at grace 0, %d pushes, %d failed, %d rounds lost to GC, %d blobs offered again while GC deleted them",
			cycles, pushes.Load(), failed.Load(), lostRounds, reoffered)
		if pushes.Load() == 0 {
			t.Fatal("no push succeeded")
		}
		// Retrying is the fallback; under a lease GC takes nothing a push
		// will commit, so no round is lost.
		if lostRounds != 0 {
			t.Errorf("%d push rounds lost to GC despite the lease:\n%s", lostRounds, strings.Join(logged.errs, "\n"))
		}
		assertIntact(t, b)
	})
}
