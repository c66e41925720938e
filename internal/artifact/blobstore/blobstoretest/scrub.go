package blobstoretest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// ReadQuarantined returns the bytes a Quarantine moved to where (the
// location it returned), failing t when there are none.
type ReadQuarantined func(t *testing.T, where string) []byte

// RunScrub holds a backend to what a scrub needs of it: Verify names the
// damaged chunk and reads at the pace its context carries, and Quarantine
// (the backend must implement blobstore.Quarantiner) moves a blob's bytes
// aside, intact for inspection, so that the blob is absent until a Put
// stores it again.
func RunScrub(t *testing.T, open Opener, read ReadQuarantined) {
	t.Run("VerifyNamesTheChunk", func(t *testing.T) { t.Parallel(); testVerifyNamesChunk(t, setup(t, open)) })
	t.Run("Quarantine", func(t *testing.T) { t.Parallel(); testQuarantine(t, setup(t, open), read) })
	t.Run("QuarantineErrors", func(t *testing.T) { t.Parallel(); testQuarantineErrors(t, setup(t, open)) })
	t.Run("PacedVerify", func(t *testing.T) { t.Parallel(); testPacedVerify(t, setup(t, open)) })
}

func quarantiner(t *testing.T, b bundle) blobstore.Quarantiner {
	t.Helper()
	q, ok := b.Store.(blobstore.Quarantiner)
	if !ok {
		t.Fatalf("%T does not implement blobstore.Quarantiner", b.Store)
	}
	return q
}

// testVerifyNamesChunk damages one byte in each chunk of a blob in turn:
// Verify, which checks the whole blob, names that chunk from the index.
// Without an index it cannot tell, and says -1.
func testVerifyNamesChunk(t *testing.T, b bundle) {
	data := content(21, 3*chunk+500)
	d := b.put(t, digest.SHA256, data)
	for _, at := range []int64{0, chunk + 7, 2*chunk + chunk/2, 3*chunk + 499} {
		b.Rewrite(t, d, flip(at))
		_, err := b.Store.Verify(b.ctx, d)
		wantCorrupt(t, err, d, at/chunk)
		ce, _ := blobstore.AsCorrupt(err)
		if ce != nil {
			var m *digest.MismatchError
			if !errors.As(ce.Cause(), &m) || m.Expected == d {
				t.Errorf("damage at %d: verdict %v, want the chunk's digests, not the blob's", at, ce.Cause())
			}
		}
		b.Rewrite(t, d, flip(at))
	}
	b.SetIndex(t, d, nil)
	b.Rewrite(t, d, flip(chunk+1))
	_, err := b.Store.Verify(b.ctx, d)
	wantCorrupt(t, err, d, -1)
}

// testQuarantine sets a damaged blob aside: gone from the store, its bytes
// kept as they were; a Put then stores the blob anew, and quarantining it
// again keeps both copies.
func testQuarantine(t *testing.T, b bundle, read ReadQuarantined) {
	q := quarantiner(t, b)
	data := content(22, 2*chunk+33)
	d := b.put(t, digest.SHA256, data)
	other := b.put(t, digest.SHA256, content(23, 100))
	b.Rewrite(t, d, flip(chunk+3))
	damaged := slices.Clone(data)
	damaged[chunk+3] ^= 0xff

	where, err := q.Quarantine(b.ctx, d)
	if err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	b.absent(t, d)
	if _, err := b.Store.Verify(b.ctx, d); core.KindOf(err) != core.KindNotFound {
		t.Errorf("Verify of a quarantined blob: %v, want not found", err)
	}
	if b.Index(t, d) != nil {
		t.Error("the quarantined blob's index is still there")
	}
	if got := read(t, where); !bytes.Equal(got, damaged) {
		t.Errorf("%s holds %d bytes, not the %d damaged bytes quarantined", where, len(got), len(damaged))
	}
	if got := b.get(t, other, 0, -1); len(got) != 100 {
		t.Errorf("another blob reads %d bytes after a quarantine", len(got))
	}

	if got := b.put(t, digest.SHA256, data); got != d {
		t.Fatalf("Put stored %s", got)
	}
	if _, err := b.Store.Verify(b.ctx, d); err != nil {
		t.Errorf("Verify after the Put that repairs it: %v", err)
	}
	if got := b.get(t, d, chunk, 10); !bytes.Equal(got, data[chunk:chunk+10]) {
		t.Error("a range of the stored-again blob differs")
	}
	again, err := q.Quarantine(b.ctx, d)
	if err != nil {
		t.Fatalf("second Quarantine: %v", err)
	}
	if again == where {
		t.Fatalf("the second quarantine reused %s", where)
	}
	if got := read(t, where); !bytes.Equal(got, damaged) {
		t.Errorf("the first quarantined copy changed")
	}
	if got := read(t, again); !bytes.Equal(got, data) {
		t.Errorf("the second quarantined copy differs from what was stored")
	}
	b.absent(t, d)
}

func testQuarantineErrors(t *testing.T, b bundle) {
	q := quarantiner(t, b)
	absent := digestOf(t, digest.SHA256, []byte("never stored"))
	_, err := q.Quarantine(b.ctx, absent)
	wantKind(t, err, core.KindNotFound)
	_, err = q.Quarantine(b.ctx, digest.Digest{})
	wantKind(t, err, core.KindInvalid)
}

// countingPacer lets everything through and counts what it was told;
// with stop set, it ends the read as a pacer does when its context ends.
type countingPacer struct {
	mu    sync.Mutex
	bytes int64
	stop  context.CancelFunc
}

func (p *countingPacer) Wait(ctx context.Context, n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bytes += int64(n)
	if p.stop != nil {
		p.stop()
		return ctx.Err()
	}
	return nil
}

// testPacedVerify checks that Verify reports every byte it reads to the
// pacer its context carries, that other reads do not, and that a pacer's
// refusal ends the Verify.
func testPacedVerify(t *testing.T, b bundle) {
	data := content(24, 2*chunk+1)
	d := b.put(t, digest.BLAKE3, data)
	p := &countingPacer{}
	ctx := blobstore.WithPacer(b.ctx, p)
	if _, err := b.Store.Verify(ctx, d); err != nil {
		t.Fatal(err)
	}
	if p.bytes != int64(len(data)) {
		t.Errorf("Verify paced %d bytes, want %d", p.bytes, len(data))
	}
	rc, err := b.Store.Get(ctx, d, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(rc); err != nil || len(got) != len(data) {
		t.Fatalf("Get: %d bytes, %v", len(got), err)
	}
	if p.bytes != int64(len(data)) {
		t.Errorf("a Get was paced too (%d bytes in all)", p.bytes)
	}
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	stopping := &countingPacer{stop: cancel}
	_, err = b.Store.Verify(blobstore.WithPacer(ctx, stopping), d)
	wantKind(t, err, core.KindCanceled)
	if stopping.bytes >= int64(len(data)) {
		t.Errorf("Verify read on to byte %d after its pacer stopped it", stopping.bytes)
	}
}
