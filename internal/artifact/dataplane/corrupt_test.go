package dataplane_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// randomBytes returns n bytes that differ per seed.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), 3}).Read(b)
	return b
}

// rewrite edits the stored file of d behind the store's back.
func (b bundle) rewrite(t *testing.T, d digest.Digest, edit func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(b.dir, "blobs", "blobs", string(d.Algorithm()), d.Hex()[:2], d.Hex())
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, edit(data), 0o444); err != nil {
		t.Fatal(err)
	}
}

// dropIndex removes d's chunk index, as for a blob stored before indexes.
func (b bundle) dropIndex(t *testing.T, d digest.Digest) {
	t.Helper()
	if err := os.Remove(filepath.Join(b.dir, "blobs", "chunks", string(d.Algorithm()), d.Hex()[:2], d.Hex())); err != nil {
		t.Fatal(err)
	}
}

// corruptions reads the metric as a scrape would.
func (b bundle) corruptions(foundBy string) float64 {
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.dp.Corruptions())
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "found_by" && l.GetValue() == foundBy {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// TestCorruptBlobIsReportedAndRepairedByUpload damages a stored blob: the
// read fails as internal, is logged at ERROR and counted, and FindMissing
// then says the blob is missing, so a push uploads it again; that upload
// replaces the damaged bytes.
func TestCorruptBlobIsReportedAndRepairedByUpload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	data := randomBytes(1, 3<<20+17)
	d := dig(t, data)
	if _, err := b.dp.Upload(b.ctx, "a", digest.SHA256, d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	b.rewrite(t, d, func(s []byte) []byte { s[2<<20+5] ^= 1; return s })

	rc, _, err := b.dp.Open(b.ctx, d, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if _, ok := blobstore.AsCorrupt(err); !ok || core.KindOf(err) != core.KindInternal {
		t.Fatalf("read of a corrupt blob: %v, want an internal *CorruptError", err)
	}
	if len(got) != 2<<20 || !bytes.Equal(got, data[:2<<20]) {
		t.Errorf("handed out %d bytes, want the 2 intact chunks before the damage", len(got))
	}
	if n := b.corruptions("read"); n != 1 {
		t.Errorf("read corruptions = %v, want 1", n)
	}
	if log := b.log.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, d.String()) {
		t.Errorf("no ERROR line naming %s:\n%s", d, log)
	}
	other := dig(t, []byte("not stored"))
	missing, err := b.dp.FindMissing(b.ctx, []digest.Digest{d, other})
	if err != nil || !slices.Equal(missing, []digest.Digest{d, other}) {
		t.Fatalf("FindMissing = %v, %v; want the corrupt blob and the absent one", missing, err)
	}

	// A range in the damaged chunk fails before any byte.
	rc, _, err = b.dp.Open(b.ctx, d, 2<<20, 10)
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(rc)
	rc.Close()
	if _, ok := blobstore.AsCorrupt(err); !ok || len(got) > 0 {
		t.Errorf("range over the damage: %d bytes, %v; want none and corruption", len(got), err)
	}
	if n := b.corruptions("read"); n != 2 {
		t.Errorf("read corruptions = %v, want 2", n)
	}

	if _, err := b.dp.Upload(b.ctx, "a", digest.SHA256, d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("upload of the right bytes: %v", err)
	}
	if n := b.corruptions("upload"); n != 1 {
		t.Errorf("upload corruptions = %v, want 1", n)
	}
	if got := readAll(t, b, d, 0, -1); got != string(data) {
		t.Error("the repaired blob does not read back")
	}
	if missing, err := b.dp.FindMissing(b.ctx, []digest.Digest{d}); err != nil || len(missing) != 0 {
		t.Errorf("FindMissing after the repair = %v, %v; want nothing", missing, err)
	}
}

// failOnRead fails the test if the upload reads the body.
type failOnRead struct{ t *testing.T }

func (f failOnRead) Read([]byte) (int, error) {
	f.t.Error("the upload read its body although the blob is stored and intact")
	return 0, errors.New("must not be read")
}

// TestUploadOfIntactBlobSkipsTheBody checks that the stored bytes are
// verified, not just found, and that intact ones spare the upload.
func TestUploadOfIntactBlobSkipsTheBody(t *testing.T) {
	t.Parallel()
	b := setup(t)
	data := randomBytes(2, 5000)
	d := dig(t, data)
	if _, err := b.dp.Upload(b.ctx, "a", digest.SHA256, d, bytes.NewReader(data), 5000); err != nil {
		t.Fatal(err)
	}
	if _, err := b.dp.Upload(b.ctx, "a", digest.SHA256, d, failOnRead{t}, 5000); err != nil {
		t.Fatalf("second upload: %v", err)
	}
	_, err := b.dp.Upload(b.ctx, "a", digest.SHA256, d, failOnRead{t}, 4999)
	if core.KindOf(err) != core.KindInvalid {
		t.Errorf("upload announcing another size: %v, want invalid", err)
	}
	if n := b.corruptions("upload") + b.corruptions("read"); n != 0 {
		t.Errorf("corruptions = %v, want 0", n)
	}
}

// TestStoredBytesLongerThanRecorded appends to a stored blob that has no
// index: the read stops at the recorded size with a corruption, instead of
// handing out the extra bytes.
func TestStoredBytesLongerThanRecorded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	data := randomBytes(3, 70000)
	d := dig(t, data)
	if _, err := b.dp.Upload(b.ctx, "a", digest.SHA256, d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	b.dropIndex(t, d)
	b.rewrite(t, d, func(s []byte) []byte { return append(s, "trailing garbage"...) })
	rc, size, err := b.dp.Open(b.ctx, d, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if _, ok := blobstore.AsCorrupt(err); !ok {
		t.Fatalf("read: %v, want corruption", err)
	}
	if int64(len(got)) > size {
		t.Errorf("handed out %d bytes of a blob recorded with %d", len(got), size)
	}
}
