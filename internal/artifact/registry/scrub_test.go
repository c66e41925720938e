package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/fs"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/s3"
	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// scrubBackend is a blob store whose stored bytes a test can damage
// behind its back, and whose quarantined copies it can read.
type scrubBackend struct {
	blobstore.Store // the backend itself, not a wrapper: it must quarantine
	flip            func(t *testing.T, d digest.Digest, offset int64)
	quarantined     func(t *testing.T, where string) []byte
}

func fsScrubBackend(t *testing.T, dir string) scrubBackend {
	root := filepath.Join(dir, "store")
	s, err := fs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return scrubBackend{Store: s,
		flip: func(t *testing.T, d digest.Digest, offset int64) {
			t.Helper()
			p := filepath.Join(root, "blobs", string(d.Algorithm()), d.Hex()[:2], d.Hex())
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[offset] ^= 0x10
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o444); err != nil {
				t.Fatal(err)
			}
		},
		quarantined: func(t *testing.T, where string) []byte {
			t.Helper()
			if !strings.HasPrefix(where, filepath.Join(root, "quarantine")+string(filepath.Separator)) {
				t.Errorf("quarantined at %s, not under the store's quarantine/", where)
			}
			b, err := os.ReadFile(where)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}
}

func minioScrubBackend(t *testing.T, _ string) scrubBackend {
	srv := minio.Server(t)
	prefix := "scrub/" + store.NewID()
	s, err := s3.Open(context.Background(), "s3://"+srv.Bucket+"/"+prefix, s3.Options{
		Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	u, _ := url.Parse(srv.Endpoint)
	mc, err := miniogo.New(u.Host, &miniogo.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, key string) []byte {
		t.Helper()
		obj, err := mc.GetObject(context.Background(), srv.Bucket, key, miniogo.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		b, err := io.ReadAll(obj)
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		return b
	}
	return scrubBackend{Store: s,
		flip: func(t *testing.T, d digest.Digest, offset int64) {
			t.Helper()
			key := prefix + "/blobs/" + string(d.Algorithm()) + "/" + d.Hex()
			b := get(t, key)
			b[offset] ^= 0x10
			if _, err := mc.PutObject(context.Background(), srv.Bucket, key, bytes.NewReader(b), int64(len(b)), miniogo.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		quarantined: func(t *testing.T, where string) []byte {
			t.Helper()
			key, ok := strings.CutPrefix(where, "s3://"+srv.Bucket+"/")
			if !ok || !strings.HasPrefix(key, prefix+"/quarantine/") {
				t.Fatalf("quarantined at %s, not under s3://%s/%s/quarantine/", where, srv.Bucket, prefix)
			}
			return get(t, key)
		},
	}
}

// scrubEngines crosses both databases with both blob stores.
var scrubEngines = func() []scrubEngine {
	backends := map[string]func(*testing.T, string) scrubBackend{"fs": fsScrubBackend, "MinIO": minioScrubBackend}
	var out []scrubEngine
	for _, m := range engines {
		db, _, _ := strings.Cut(m.name, "+")
		for _, bs := range []string{"fs", "MinIO"} {
			out = append(out, scrubEngine{name: db + "+" + bs, meta: m.meta, blob: backends[bs]})
		}
	}
	return out
}()

type scrubEngine struct {
	name string
	meta func(t testing.TB, dir string) eventlog.Driver
	blob func(t *testing.T, dir string) scrubBackend
}

type scrubBundle struct {
	bundle
	blobs scrubBackend
	local *dataplane.Local
}

// scrubSetup wires a registry as open.Open does (uploads hold GC leases)
// over a blob store the test can damage.
func scrubSetup(t *testing.T, e scrubEngine) scrubBundle {
	t.Helper()
	dir := t.TempDir()
	meta := eventlog.New(e.meta(t, dir))
	t.Cleanup(func() { meta.Close() })
	blobs := e.blob(t, dir)
	local, err := dataplane.NewLocal(meta, blobs.Store, filepath.Join(dir, "staging"))
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{Meta: meta, Blobs: blobs.Store, Alg: digest.SHA256}
	reg.Data = &registry.LeasedUploads{DataPlane: local, Leaser: reg}
	return scrubBundle{bundle: bundle{reg: reg, ctx: context.Background(), dir: dir}, blobs: blobs, local: local}
}

func eachScrub(t *testing.T, test func(t *testing.T, e scrubEngine)) {
	for _, e := range scrubEngines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			test(t, e)
		})
	}
}

// scrubTree writes n small files and three of three chunks and more, all
// different, and returns their contents by name.
func scrubTree(t *testing.T, root string, n int) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	rng := rand.New(rand.NewPCG(uint64(n), 14))
	for i := range n {
		files[fmt.Sprintf("small/%03d", i)] = randomContent(rng, 1+rng.IntN(4096))
	}
	for i := range 3 {
		files[fmt.Sprintf("large/%d", i)] = randomContent(rng, 3*digest.ChunkSize+1000*(i+1))
	}
	for name, b := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func randomContent(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func digestOf(t *testing.T, b []byte) digest.Digest {
	t.Helper()
	d, err := digest.FromBytes(digest.SHA256, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestScrubQuarantinesCorruptBlobs damages one byte of three blobs among
// many: in a small blob, in the middle chunk of one large blob and in the
// last chunk of another. The scrub finds each, names the chunk and
// quarantines it, keeping the damaged bytes; the log and the audit trail
// record it with the actor, and the log still replays to the live state.
// The blobs then read as not found (never as damaged bytes), find-missing
// lists them, a pull fails naming one; pushing the same files again
// uploads exactly those three and repairs them, and a second scrub is
// clean.
func TestScrubQuarantinesCorruptBlobs(t *testing.T) {
	t.Parallel()
	eachScrub(t, func(t *testing.T, e scrubEngine) {
		b := scrubSetup(t, e)
		src := filepath.Join(b.dir, "src")
		files := scrubTree(t, src, 40)
		res, err := b.reg.Push(b.ctx, "alice", src, "outputs/build:v1", registry.PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		damage := map[digest.Digest]int64{ // blob → the chunk damaged
			digestOf(t, files["small/007"]): 0,
			digestOf(t, files["large/0"]):   1,
			digestOf(t, files["large/2"]):   3,
		}
		offsets := map[string]int64{"small/007": int64(len(files["small/007"]) / 2), "large/0": digest.ChunkSize + 5, "large/2": int64(len(files["large/2"]) - 1)}
		damaged := map[digest.Digest][]byte{}
		for name, off := range offsets {
			d := digestOf(t, files[name])
			b.blobs.flip(t, d, off)
			damaged[d] = slices.Clone(files[name])
			damaged[d][off] ^= 0x10
		}

		rep, err := b.reg.Scrub(b.ctx, "ops", registry.ScrubOptions{Rate: -1})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Blobs != len(files) || rep.Partial || rep.Vanished != 0 {
			t.Errorf("scrub checked %d blobs (partial %v, vanished %d), want all %d", rep.Blobs, rep.Partial, rep.Vanished, len(files))
		}
		var total int64
		for _, f := range files {
			total += int64(len(f))
		}
		if rep.Bytes != total {
			t.Errorf("scrub read %d bytes, want %d", rep.Bytes, total)
		}
		if len(rep.Corrupt) != len(damage) {
			t.Fatalf("scrub found %d corrupt blobs, want %d: %+v", len(rep.Corrupt), len(damage), rep.Corrupt)
		}
		names := map[digest.Digest]string{}
		for name := range offsets {
			names[digestOf(t, files[name])] = name
		}
		for _, c := range rep.Corrupt {
			if want := []registry.RefFile{{Ref: "outputs/build:v1", Path: names[c.Digest]}}; !slices.Equal(c.Files, want) {
				t.Errorf("%s is held by %+v, want %+v", c.Digest, c.Files, want)
			}
			chunk, ok := damage[c.Digest]
			if !ok {
				t.Errorf("scrub reports intact %s as corrupt", c.Digest)
				continue
			}
			if c.Chunk != chunk || c.Size != int64(len(damaged[c.Digest])) || !strings.Contains(c.Reason, c.Digest.String()) {
				t.Errorf("%s: chunk %d, size %d, reason %q; want chunk %d, size %d", c.Digest, c.Chunk, c.Size, c.Reason, chunk, len(damaged[c.Digest]))
			}
			if c.Quarantine == "" {
				t.Errorf("%s was not quarantined", c.Digest)
			} else if got := b.blobs.quarantined(t, c.Quarantine); !bytes.Equal(got, damaged[c.Digest]) {
				t.Errorf("%s: quarantine holds %d bytes, not the damaged ones", c.Digest, len(got))
			}
		}

		for d := range damage {
			assertQuarantined(t, b, d)
		}
		missing, err := b.reg.Data.FindMissing(b.ctx, slices.Collect(mapsKeys(damage)))
		if err != nil || len(missing) != len(damage) {
			t.Errorf("find-missing lists %d of the %d quarantined blobs: %v", len(missing), len(damage), err)
		}
		if _, err := b.reg.Pull(b.ctx, "outputs/build:v1", filepath.Join(b.dir, "broken"), nil); core.KindOf(err) != core.KindNotFound {
			t.Errorf("pull of a manifest with quarantined blobs: %v, want not found", err)
		}
		replay(t, b.bundle)

		again, err := b.reg.Push(b.ctx, "alice", src, "outputs/build:v1", registry.PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if again.Uploaded != len(damage) || again.Manifest != res.Manifest {
			t.Errorf("push again uploaded %d blobs (manifest %s), want the %d quarantined (manifest %s)", again.Uploaded, again.Manifest, len(damage), res.Manifest)
		}
		dest := filepath.Join(b.dir, "restored")
		if _, err := b.reg.Pull(b.ctx, "outputs/build:v1", dest, nil); err != nil {
			t.Fatalf("pull after the repair: %v", err)
		}
		for name, want := range files {
			if got, err := os.ReadFile(filepath.Join(dest, name)); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s after the repair: %d bytes, %v", name, len(got), err)
			}
		}
		rep, err = b.reg.Scrub(b.ctx, "ops", registry.ScrubOptions{Rate: -1})
		if err != nil || len(rep.Corrupt) != 0 || rep.Blobs != len(files) {
			t.Errorf("second scrub: %d blobs, corrupt %+v, %v", rep.Blobs, rep.Corrupt, err)
		}
		replay(t, b.bundle)
	})
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// assertQuarantined checks what a quarantined blob looks like: gone in the
// metadata, its quarantine in the log and the audit trail with the actor,
// and a read of it not found.
func assertQuarantined(t *testing.T, b scrubBundle, d digest.Digest) {
	t.Helper()
	if blob, err := b.reg.Meta.Blob(b.ctx, d); err != nil || blob.State != eventlog.StateGone {
		t.Errorf("%s after the scrub: %+v, %v; want gone", d, blob, err)
	}
	evs, err := b.reg.Meta.Audit(b.ctx, eventlog.AuditFilter{Subject: d.String()})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []eventlog.Kind
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
		if ev.Kind == eventlog.BlobQuarantined {
			var p eventlog.QuarantinePayload
			if err := ev.Decode(&p); err != nil || p.Digest != d.String() || ev.Actor != "ops" || p.Reason == "" {
				t.Errorf("blob.quarantined of %s: %+v by %q, %v", d, p, ev.Actor, err)
			}
		}
	}
	if !slices.Contains(kinds, eventlog.BlobQuarantined) || kinds[len(kinds)-1] != eventlog.BlobGone {
		t.Errorf("audit of %s: %v, want blob.quarantined then blob.gone", d, kinds)
	}
	rc, _, err := b.reg.Data.Open(b.ctx, d, 0, -1)
	if err == nil {
		rc.Close()
	}
	if core.KindOf(err) != core.KindNotFound {
		t.Errorf("open of quarantined %s: %v, want not found", d, err)
	}
	if _, err := b.blobs.Stat(b.ctx, d); core.KindOf(err) != core.KindNotFound {
		t.Errorf("the blob store still has %s: %v", d, err)
	}
}

func replay(t *testing.T, b bundle) {
	t.Helper()
	rep, err := b.reg.Meta.Replay(b.ctx)
	if err != nil {
		t.Fatalf("replay --verify: %v", err)
	}
	if !rep.Match() {
		t.Errorf("replayed state %s differs from the live state %s", rep.StateDigest, rep.LiveDigest)
	}
}

// TestQuarantineHoldsOffUploads checks the order a quarantine keeps with
// uploads: between the blob.quarantined event and the bytes' move, an
// upload of the blob is refused as a conflict (to be retried), so that it
// cannot record bytes the move then takes; once the blob is gone, an
// upload stores and records it again.
func TestQuarantineHoldsOffUploads(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e engine) {
		b := setup(t, e)
		data := []byte("a blob about to be quarantined")
		d := digestOf(t, data)
		if _, err := b.reg.Data.Upload(b.ctx, "alice", digest.SHA256, d, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		took, err := b.reg.Meta.QuarantineBlob(b.ctx, "ops", eventlog.QuarantinePayload{Digest: d.String(), Size: int64(len(data)), Chunk: 0, Reason: "test"})
		if err != nil || !took {
			t.Fatalf("QuarantineBlob = %v, %v", took, err)
		}
		if _, err := b.reg.Data.Upload(b.ctx, "alice", digest.SHA256, d, bytes.NewReader(data), int64(len(data))); core.KindOf(err) != core.KindConflict {
			t.Errorf("upload while the blob is quarantined: %v, want a conflict", err)
		}
		if err := b.reg.Blobs.Delete(b.ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := b.reg.Meta.QuarantineDone(b.ctx, "ops", d); err != nil {
			t.Fatal(err)
		}
		if _, err := b.reg.Data.Upload(b.ctx, "alice", digest.SHA256, d, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("upload after the quarantine: %v", err)
		}
		if blob, err := b.reg.Meta.Blob(b.ctx, d); err != nil || blob.State != eventlog.StateLive {
			t.Errorf("after the upload: %+v, %v", blob, err)
		}
		// A blob the metadata does not know, or no longer has live, keeps
		// its state: the event is only the record.
		stray := digestOf(t, []byte("bytes no upload recorded"))
		if took, err := b.reg.Meta.QuarantineBlob(b.ctx, "ops", eventlog.QuarantinePayload{Digest: stray.String(), Chunk: -1, Reason: "test"}); err != nil || took {
			t.Errorf("QuarantineBlob of an unknown blob = %v, %v", took, err)
		}
		if _, err := b.reg.Meta.QuarantineBlob(b.ctx, "", eventlog.QuarantinePayload{Digest: d.String()}); core.KindOf(err) != core.KindInvalid {
			t.Errorf("QuarantineBlob without an actor: %v", err)
		}
		replay(t, b)
	})
}

// fakeClock is a Limiter's clock whose sleeps move it on, and count.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	slept  time.Duration
	sleeps int
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept += d
	c.sleeps++
	return ctx.Err()
}

// TestScrubHoldsItsRate scrubs about 10 MiB at 1 MiB/s on a clock that
// only the limiter's sleeps move: the clock must have moved by the bytes
// read over the rate, less the one burst a limiter may let through at
// once, and by no more than the bytes over the rate.
func TestScrubHoldsItsRate(t *testing.T) {
	t.Parallel()
	b := scrubSetup(t, scrubEngines[0])
	src := filepath.Join(b.dir, "src")
	scrubTree(t, src, 20)
	if _, err := b.reg.Push(b.ctx, "alice", src, "outputs/build:v1", registry.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	const rate, burst = 1 << 20, 256 << 10
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	start := clock.Now()
	lim := &registry.Limiter{Rate: rate, Burst: burst, Now: clock.Now, Sleep: clock.Sleep}
	rep, err := b.reg.Scrub(b.ctx, "ops", registry.ScrubOptions{Pacer: lim})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := clock.Now().Sub(start)
	least := time.Duration(float64(rep.Bytes-burst) / rate * float64(time.Second))
	most := time.Duration(float64(rep.Bytes) / rate * float64(time.Second))
	if elapsed < least-time.Millisecond || elapsed > most+time.Millisecond {
		t.Errorf("%d bytes at %d B/s took %v on the limiter's clock, want between %v and %v", rep.Bytes, rate, elapsed, least, most)
	}
	if clock.sleeps < 10 {
		t.Errorf("the limiter slept %d times over %d bytes", clock.sleeps, rep.Bytes)
	}
}

// TestLimiter checks the limiter alone: a burst goes at once, what
// follows waits its share, and a pause saves up no more than a burst.
func TestLimiter(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(0, 0)}
	lim := &registry.Limiter{Rate: 1000, Burst: 500, Now: clock.Now, Sleep: clock.Sleep}
	ctx := context.Background()
	step := func(n int, want time.Duration) {
		t.Helper()
		before := clock.slept
		if err := lim.Wait(ctx, n); err != nil {
			t.Fatal(err)
		}
		if got := clock.slept - before; got != want {
			t.Errorf("Wait(%d) slept %v, want %v", n, got, want)
		}
	}
	step(500, 0)                    // the first burst
	step(100, 100*time.Millisecond) // then the rate
	step(1000, time.Second)
	clock.mu.Lock()
	clock.now = clock.now.Add(time.Hour) // a long pause saves one burst
	clock.mu.Unlock()
	step(500, 0)
	step(1, time.Millisecond)
	if err := (&registry.Limiter{}).Wait(ctx, 1<<30); err != nil {
		t.Errorf("a limiter without a rate: %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := (&registry.Limiter{Rate: 1}).Wait(canceled, 10); err == nil {
		t.Error("a canceled wait returned nil")
	}
}

// TestScrubber runs scrubs through a Scrubber as a server does: one at a
// time (a second is a conflict naming the first), with the status and the
// metrics following it, and a scheduled scrub only when the log holds no
// whole scrub within the interval.
func TestScrubber(t *testing.T) {
	t.Parallel()
	b := scrubSetup(t, scrubEngines[0])
	src := filepath.Join(b.dir, "src")
	files := scrubTree(t, src, 10)
	if _, err := b.reg.Push(b.ctx, "alice", src, "outputs/build:v1", registry.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	b.blobs.flip(t, digestOf(t, files["small/003"]), 0)

	s := &registry.Scrubber{Registry: b.reg, Interval: time.Hour}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collectors()...)
	if _, err := s.Status(); core.KindOf(err) != core.KindNotFound {
		t.Errorf("status before any scrub: %v", err)
	}
	// One byte a second: the scrub stays on its first read until stopped.
	slow, err := s.Begin("alice", registry.ScrubOptions{Rate: 1})
	if err != nil || slow.State != registry.ScrubRunning || slow.Actor != "alice" {
		t.Fatalf("Begin = %+v, %v", slow, err)
	}
	if _, err := s.Begin("bob", registry.ScrubOptions{}); core.KindOf(err) != core.KindConflict || !strings.Contains(err.Error(), "alice") {
		t.Errorf("a second scrub while one runs: %v", err)
	}
	if gauge(t, reg, "artifactstore_scrub_running", "") != 1 {
		t.Error("the running gauge is not 1")
	}
	s.Stop()
	st, err := s.Status()
	if err != nil || st.State != registry.ScrubFailed || core.KindOf(st.Err) != core.KindCanceled {
		t.Errorf("the slow scrub after Stop: %+v, %v", st, err)
	}
	if _, err := s.Begin("bob", registry.ScrubOptions{}); core.KindOf(err) != core.KindUnavailable {
		t.Errorf("Begin after Stop: %v", err)
	}

	// A scheduled scrub is due: nothing whole was ever recorded.
	s = &registry.Scrubber{Registry: b.reg, Interval: time.Hour}
	reg = prometheus.NewRegistry()
	reg.MustRegister(s.Collectors()...)
	registry.ScrubIfDue(b.ctx, s)
	st = waitScrub(t, s)
	if st.State != registry.ScrubDone || st.Actor != "scrub" || st.Report.Blobs != len(files) || len(st.Report.Corrupt) != 1 {
		t.Fatalf("scheduled scrub: %+v", st)
	}
	if got := gauge(t, reg, "artifactstore_scrub_blobs_total", "corrupt"); got != 1 {
		t.Errorf("corrupt blobs counted: %v", got)
	}
	if got := gauge(t, reg, "artifactstore_scrub_blobs_total", "intact"); got != float64(len(files)-1) {
		t.Errorf("intact blobs counted: %v", got)
	}
	if gauge(t, reg, "artifactstore_scrub_last_complete_timestamp_seconds", "") == 0 {
		t.Error("no time of the last whole scrub")
	}
	s.Stop()
	at, ok, err := b.reg.Meta.LastScrub(b.ctx, time.Now().Add(-time.Hour))
	if err != nil || !ok || at.IsZero() {
		t.Errorf("LastScrub = %v, %v, %v", at, ok, err)
	}

	// Now it is not due, on this server nor another: a second Scrubber
	// checks and starts nothing.
	other := &registry.Scrubber{Registry: b.reg, Interval: time.Hour}
	defer other.Stop()
	registry.ScrubIfDue(b.ctx, other)
	if _, err := other.Status(); core.KindOf(err) != core.KindNotFound {
		t.Errorf("a scrub began although one ended within the interval: %v", err)
	}
	// A partial scrub does not count as a scrub of every blob.
	if _, err := b.reg.Scrub(b.ctx, "ops", registry.ScrubOptions{Rate: -1, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	if at2, _, _ := b.reg.Meta.LastScrub(b.ctx, time.Now().Add(-time.Hour)); !at2.Equal(at) {
		t.Errorf("a partial scrub moved the last whole scrub from %v to %v", at, at2)
	}
	// Off the leader, nothing is due.
	follower := &registry.Scrubber{Registry: b.reg, Interval: time.Nanosecond, Leader: notLeader{}}
	defer follower.Stop()
	registry.ScrubIfDue(b.ctx, follower)
	if _, err := follower.Status(); core.KindOf(err) != core.KindNotFound {
		t.Errorf("a follower began a scrub: %v", err)
	}

	// The schedule checks one interval after Start, and then every
	// interval: with one this short, the last scrub is due again at once.
	sched := &registry.Scrubber{Registry: b.reg, Interval: 20 * time.Millisecond}
	sched.Start(b.ctx)
	defer sched.Stop()
	if st := waitScrub(t, sched); st.Actor != "scrub" || st.State != registry.ScrubDone {
		t.Errorf("scrub of the schedule: %+v", st)
	}
}

type notLeader struct{}

func (notLeader) IsLeader(context.Context) (bool, error) { return false, nil }

// waitScrub waits, up to a minute, for the scrubber's scrub to end.
func waitScrub(t *testing.T, s *registry.Scrubber) registry.ScrubStatus {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := s.Status()
		if err == nil && st.State != registry.ScrubRunning {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scrub ended within a minute: %+v, %v", st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gauge reads one series of a gathered metric; label "" takes the first.
func gauge(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s{%s}", name, label)
	return 0
}
