package logstream

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/blobstore/fs"
	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	elsqlite "github.com/deltaci/deltaci/internal/artifact/eventlog/sqlite"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/results"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/sqlite"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

func open(t *testing.T, now func() time.Time) *store.Store {
	drv, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(drv, store.WithClock(now))
	t.Cleanup(func() { s.Close() })
	return s
}

// storeSink is the server side of the upload, minus HTTP.
type storeSink struct {
	s *store.Store
	f store.Fence
}

func (k storeSink) Append(ctx context.Context, offset int64, data []byte) (int64, error) {
	return k.s.AppendLog(ctx, k.f, offset, data)
}

func randomLog(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

// ship writes data to a Shipper in random-size writes and closes it.
func ship(t *testing.T, sink Sink, data []byte) *Shipper {
	t.Helper()
	sh, err := newShipper(t.Context(), sink, t.TempDir(), 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	write(t, sh, data)
	err = sh.Close()
	// As a runner does: a transient failure is retried with Flush.
	for i := 0; err != nil && core.KindOf(err) == core.KindUnavailable && i < 10; i++ {
		err = sh.Flush()
	}
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	return sh
}

// write writes data to sh in random-size writes.
func write(t *testing.T, sh *Shipper, data []byte) {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(200<<10))
		if _, err := sh.Write(rest[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		rest = rest[n:]
	}
}

func wantLog(t *testing.T, s *store.Store, id string, want []byte) {
	t.Helper()
	got, n, err := s.ReadLog(t.Context(), id, 0, len(want)+1)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(want)) || !bytes.Equal(got, want) {
		t.Fatalf("stored log: %d bytes (length %d), want %d bytes; equal=%v", len(got), n, len(want), bytes.Equal(got, want))
	}
}

func TestShipperShipsEveryByte(t *testing.T) {
	t.Parallel()
	s, f := storetest.StartedAttempt(t, open)
	data := randomLog(5 << 20)
	sh := ship(t, storeSink{s, f}, data)
	if sh.Shipped() != int64(len(data)) {
		t.Fatalf("Shipped = %d, want %d", sh.Shipped(), len(data))
	}
	wantLog(t, s, f.AttemptID, data)
}

func TestShipperResyncsWhenTheServerIsAhead(t *testing.T) {
	t.Parallel()
	s, f := storetest.StartedAttempt(t, open)
	data := randomLog(3 << 20)
	// Appends whose answers were lost: the server holds them, the shipper
	// does not know.
	for off := 0; off < 700<<10; off += 100 << 10 {
		if _, err := s.AppendLog(t.Context(), f, int64(off), data[off:off+100<<10]); err != nil {
			t.Fatal(err)
		}
	}
	// The shipper had written those bytes before they could reach the
	// server, so it must not ship until it has them all: a server holding
	// more than was written is a failure (see the next test).
	gate := &gatedSink{Sink: storeSink{s, f}, open: make(chan struct{})}
	sh, err := newShipper(t.Context(), gate, t.TempDir(), 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	write(t, sh, data)
	close(gate.open)
	if err := sh.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantLog(t, s, f.AttemptID, data)
}

func TestShipperFailsWhenTheServerHoldsMoreThanWritten(t *testing.T) {
	t.Parallel()
	s, f := storetest.StartedAttempt(t, open)
	data := randomLog(700 << 10)
	if _, err := s.AppendLog(t.Context(), f, 0, data); err != nil {
		t.Fatal(err)
	}
	// Another writer's bytes: nothing this shipper wrote accounts for them.
	sh, err := newShipper(t.Context(), storeSink{s, f}, t.TempDir(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sh.Write(data[:100<<10]); err != nil {
		t.Fatal(err)
	}
	err = sh.Close()
	if core.KindOf(err) != core.KindInternal || !strings.Contains(err.Error(), "the log holds 716800 bytes, more than the 102400 written") {
		t.Fatalf("Close = %v, want the log holding more than was written", err)
	}
	select {
	case <-sh.Failed():
	default:
		t.Fatal("shipping has not failed for good")
	}
}

// gatedSink holds every Append until open is closed.
type gatedSink struct {
	Sink
	open chan struct{}
}

func (k *gatedSink) Append(ctx context.Context, offset int64, data []byte) (int64, error) {
	select {
	case <-k.open:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return k.Sink.Append(ctx, offset, data)
}

// lossySink commits every append but loses the answer of the first few.
type lossySink struct {
	storeSink
	lose int
}

func (k *lossySink) Append(ctx context.Context, offset int64, data []byte) (int64, error) {
	n, err := k.storeSink.Append(ctx, offset, data)
	if err == nil && k.lose > 0 {
		k.lose--
		return 0, core.E(core.KindUnavailable, "append", "connection reset")
	}
	return n, err
}

func TestShipperResyncsAfterLostAnswers(t *testing.T) {
	t.Parallel()
	s, f := storetest.StartedAttempt(t, open)
	data := randomLog(2 << 20)
	ship(t, &lossySink{storeSink: storeSink{s, f}, lose: 3}, data)
	wantLog(t, s, f.AttemptID, data)
}

func TestShipperStopsOnLeaseLost(t *testing.T) {
	t.Parallel()
	s, f := storetest.StartedAttempt(t, open)
	sh, err := NewShipper(t.Context(), storeSink{s, store.Fence{AttemptID: f.AttemptID, LeaseToken: "stale"}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sh.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := sh.Close(); core.KindOf(err) != core.KindLeaseLost {
		t.Fatalf("Close = %v, want lease lost", err)
	}
	if _, err := sh.Write([]byte("y")); core.KindOf(err) != core.KindLeaseLost {
		t.Fatalf("Write after lease lost = %v", err)
	}
}

func TestSealer(t *testing.T) {
	t.Parallel()
	s, f := storetest.StartedAttempt(t, open)
	data := randomLog(9<<20 + 123) // more than one read of the sealer
	ship(t, storeSink{s, f}, data)
	storetest.EndAttempt(t, s, f)

	dir := t.TempDir()
	metaDrv, err := elsqlite.Open(t.Context(), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	meta := eventlog.New(metaDrv)
	t.Cleanup(func() { meta.Close() })
	blobs, err := fs.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	dp, err := dataplane.NewLocal(meta, blobs, filepath.Join(dir, "staging"))
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{Meta: meta, Data: dp, Blobs: blobs, Alg: digest.SHA256}
	tr := &registry.Transfer{Data: reg.Data, Catalog: reg, Alg: reg.Alg}

	a, err := s.Attempt(t.Context(), f.AttemptID)
	if err != nil {
		t.Fatal(err)
	}
	sealer := &Sealer{Store: s, Transfer: tr, Actor: "test", TempDir: t.TempDir()}
	d, err := sealer.Seal(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	want, err := digest.FromBytes(digest.SHA256, data)
	if err != nil {
		t.Fatal(err)
	}
	if d != want.String() {
		t.Fatalf("digest %s, want %s", d, want)
	}
	info, err := s.LogInfo(t.Context(), a.ID)
	if err != nil || info.Digest != d || info.Length != int64(len(data)) {
		t.Fatalf("LogInfo = %+v, %v", info, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := tr.Pull(t.Context(), results.LogRef(a.ID), out, nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "log"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("sealed artifact differs from the log (%d bytes, want %d)", len(got), len(data))
	}
	if d2, err := sealer.Seal(t.Context(), a); err != nil || d2 != d {
		t.Fatalf("sealing again = %s, %v", d2, err)
	}
}

// downSink fails as unreachable until up is closed, then appends to the
// store-backed sink; it records the most the shipper held while down.
type downSink struct {
	next Sink
	up   chan struct{}
}

func (k *downSink) Append(ctx context.Context, offset int64, data []byte) (int64, error) {
	select {
	case <-k.up:
		return k.next.Append(ctx, offset, data)
	default:
		return 0, core.E(core.KindUnavailable, "append", "server unreachable")
	}
}

// TestShipperNeverHoldsTheWriter: while the sink is down the job's output
// goes to the spool at disk speed, and every byte ships once the sink is
// back; the spool is gone after Close.
func TestShipperNeverHoldsTheWriter(t *testing.T) {
	s, f := storetest.StartedAttempt(t, open)
	sink := &downSink{next: storeSink{s: s, f: f}, up: make(chan struct{})}
	dir := t.TempDir()
	sh, err := newShipper(t.Context(), sink, dir, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	data := randomLog(8 << 20)
	for i := 0; i < len(data); i += 64 << 10 {
		if _, err := sh.Write(data[i:min(i+64<<10, len(data))]); err != nil {
			t.Fatalf("Write while the sink is down: %v", err)
		}
	}
	if sh.Shipped() != 0 {
		t.Fatalf("shipped %d bytes to a sink that is down", sh.Shipped())
	}
	if err := sh.Close(); core.KindOf(err) != core.KindUnavailable {
		t.Fatalf("Close with the sink down = %v, want unavailable", err)
	}
	close(sink.up)
	if err := sh.Flush(); err != nil {
		t.Fatalf("Flush once the sink is back: %v", err)
	}
	wantLog(t, s, f.AttemptID, data)
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("the spool is still there after the last flush: %v", left)
	}
}
