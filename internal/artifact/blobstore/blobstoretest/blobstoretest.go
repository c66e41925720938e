// Package blobstoretest is the conformance suite every blobstore backend
// must pass. Each backend's tests call Run with a function that opens a
// fresh, empty store, so that fs and s3 are held to one contract.
package blobstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// Harness is one backend under test: the store and the hooks that reach
// behind it.
type Harness struct {
	Store blobstore.Store
	// Rewrite replaces the stored bytes of d behind the store's back with
	// what edit makes of them, as a failing disk (or a hand in the bucket)
	// would.
	Rewrite func(t *testing.T, d digest.Digest, edit func([]byte) []byte)
	// Index returns the stored chunk index of d, nil when there is none;
	// SetIndex replaces it behind the store's back (nil removes it).
	Index    func(t *testing.T, d digest.Digest) []byte
	SetIndex func(t *testing.T, d digest.Digest, b []byte)
	// Leftovers names the staged data the backend holds (temp files,
	// incomplete uploads). Once every Put has returned it must be empty.
	Leftovers func(t *testing.T) []string
	// Strand leaves staged data behind as a Put would if its process
	// crashed, for RemoveStale to find.
	Strand func(t *testing.T)
}

// Opener returns a fresh, empty store and registers its own cleanup.
type Opener func(t *testing.T) Harness

var algorithms = []digest.Algorithm{digest.SHA256, digest.BLAKE3}

// digestEqual lets cmp compare digests, whose fields are unexported.
var digestEqual = cmp.Comparer(func(a, b digest.Digest) bool { return a == b })

// content returns n deterministic pseudo-random bytes; seed tells blobs
// apart.
func content(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 1})
	_, _ = r.Read(b)
	return b
}

func digestOf(t *testing.T, alg digest.Algorithm, b []byte) digest.Digest {
	t.Helper()
	d, err := digest.FromBytes(alg, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type bundle struct {
	Harness
	ctx context.Context
}

func setup(t *testing.T, open Opener) bundle {
	t.Helper()
	return bundle{Harness: open(t), ctx: t.Context()}
}

// put stores b under its digest and returns the digest.
func (b bundle) put(t *testing.T, alg digest.Algorithm, data []byte) digest.Digest {
	t.Helper()
	d := digestOf(t, alg, data)
	if err := b.Store.Put(b.ctx, d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put %s: %v", d, err)
	}
	return d
}

// get reads a range to the end and fails t on any error.
func (b bundle) get(t *testing.T, d digest.Digest, offset, length int64) []byte {
	t.Helper()
	got, err := b.read(d, offset, length)
	if err != nil {
		t.Fatalf("Get %s [%d, %+d]: %v", d, offset, length, err)
	}
	return got
}

func (b bundle) read(d digest.Digest, offset, length int64) ([]byte, error) {
	rc, err := b.Store.Get(b.ctx, d, offset, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (b bundle) list(t *testing.T) []digest.Digest {
	t.Helper()
	var ds []digest.Digest
	for info, err := range b.Store.List(b.ctx) {
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		ds = append(ds, info.Digest)
	}
	slices.SortFunc(ds, func(x, y digest.Digest) int { return cmpString(x.String(), y.String()) })
	return ds
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// absent checks that d is stored nowhere: not found by Stat or Get, not
// listed, and that no staged data was left behind.
func (b bundle) absent(t *testing.T, d digest.Digest) {
	t.Helper()
	if _, err := b.Store.Stat(b.ctx, d); core.KindOf(err) != core.KindNotFound {
		t.Errorf("Stat %s: got %v, want not found", d, err)
	}
	if _, err := b.Store.Get(b.ctx, d, 0, -1); core.KindOf(err) != core.KindNotFound {
		t.Errorf("Get %s: got %v, want not found", d, err)
	}
	if slices.Contains(b.list(t), d) {
		t.Errorf("List shows %s", d)
	}
	if left := b.Leftovers(t); len(left) > 0 {
		t.Errorf("staged data left behind: %q", left)
	}
}

func wantKind(t *testing.T, err error, k core.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want kind %s", k)
	}
	if got := core.KindOf(err); got != k {
		t.Fatalf("got kind %s (%v), want %s", got, err, k)
	}
}

func wantAs[E error](t *testing.T, err error) E {
	t.Helper()
	var target E
	if !errors.As(err, &target) {
		t.Fatalf("got %v (%T), want a %T in the chain", err, err, target)
	}
	return target
}

// Run runs the whole conformance suite against one backend.
func Run(t *testing.T, open Opener) {
	for _, alg := range algorithms {
		t.Run("RoundTrip/"+string(alg), func(t *testing.T) {
			t.Parallel()
			testRoundTrip(t, setup(t, open), alg)
		})
		t.Run("ErrMismatch/"+string(alg), func(t *testing.T) {
			t.Parallel()
			testMismatch(t, setup(t, open), alg)
		})
		t.Run("Corrupted/"+string(alg), func(t *testing.T) {
			t.Parallel()
			testCorrupted(t, setup(t, open), alg)
		})
		t.Run("CorruptedWithoutIndex/"+string(alg), func(t *testing.T) {
			t.Parallel()
			testCorruptedWithoutIndex(t, setup(t, open), alg)
		})
	}
	t.Run("Index", func(t *testing.T) { t.Parallel(); testIndex(t, setup(t, open)) })
	t.Run("ForgedIndex", func(t *testing.T) { t.Parallel(); testForgedIndex(t, setup(t, open)) })
	t.Run("SizeChanged", func(t *testing.T) { t.Parallel(); testSizeChanged(t, setup(t, open)) })
	t.Run("PutRepairs", func(t *testing.T) { t.Parallel(); testPutRepairs(t, setup(t, open)) })
	t.Run("ErrSize", func(t *testing.T) { t.Parallel(); testSize(t, setup(t, open)) })
	t.Run("ErrNotFound", func(t *testing.T) { t.Parallel(); testNotFound(t, setup(t, open)) })
	t.Run("ErrInvalidArguments", func(t *testing.T) { t.Parallel(); testInvalid(t, setup(t, open)) })
	t.Run("Ranges", func(t *testing.T) { t.Parallel(); testRanges(t, setup(t, open)) })
	t.Run("IdempotentPut", func(t *testing.T) { t.Parallel(); testIdempotent(t, setup(t, open)) })
	t.Run("ConcurrentPut", func(t *testing.T) { t.Parallel(); testConcurrent(t, setup(t, open)) })
	t.Run("Large", func(t *testing.T) { t.Parallel(); testLarge(t, setup(t, open)) })
	t.Run("CanceledPut", func(t *testing.T) { t.Parallel(); testCanceled(t, setup(t, open)) })
	t.Run("List", func(t *testing.T) { t.Parallel(); testList(t, setup(t, open)) })
	t.Run("RemoveStale", func(t *testing.T) { t.Parallel(); testRemoveStale(t, setup(t, open)) })
}

func testRoundTrip(t *testing.T, b bundle, alg digest.Algorithm) {
	blobs := map[digest.Digest][]byte{}
	for i, n := range []int{0, 1, 1000, 70_000} {
		data := content(uint64(i), n)
		blobs[b.put(t, alg, data)] = data
	}
	var want []digest.Digest
	for d, data := range blobs {
		want = append(want, d)
		info, err := b.Store.Stat(b.ctx, d)
		if err != nil {
			t.Fatalf("Stat %s: %v", d, err)
		}
		if info.Digest != d || info.Size != int64(len(data)) {
			t.Errorf("Stat = %+v, want digest %s and size %d", info, d, len(data))
		}
		if age := time.Since(info.ModTime); age < -time.Minute || age > time.Hour {
			t.Errorf("Stat %s: ModTime %v is not about now", d, info.ModTime)
		}
		if got := b.get(t, d, 0, -1); !bytes.Equal(got, data) {
			t.Errorf("Get %s returned %d bytes that differ from the %d put", d, len(got), len(data))
		}
	}
	slices.SortFunc(want, func(x, y digest.Digest) int { return cmpString(x.String(), y.String()) })
	if diff := cmp.Diff(want, b.list(t), digestEqual); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	gone := want[0]
	for range 2 { // the second time the blob is absent: still no error
		if err := b.Store.Delete(b.ctx, gone); err != nil {
			t.Fatalf("Delete %s: %v", gone, err)
		}
	}
	b.absent(t, gone)
	if diff := cmp.Diff(want[1:], b.list(t), digestEqual); diff != "" {
		t.Errorf("List after Delete (-want +got):\n%s", diff)
	}
}

func testMismatch(t *testing.T, b bundle, alg digest.Algorithm) {
	claimed := digestOf(t, alg, []byte("what the client said"))
	sent := []byte("what the client sent")
	for _, size := range []int64{int64(len(sent)), -1} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			err := b.Store.Put(b.ctx, claimed, bytes.NewReader(sent), size)
			wantKind(t, err, core.KindInvalid)
			m := wantAs[*digest.MismatchError](t, err)
			if m.Expected != claimed || m.Actual != digestOf(t, alg, sent) {
				t.Errorf("mismatch = %+v, want expected %s and actual %s", m, claimed, digestOf(t, alg, sent))
			}
			b.absent(t, claimed)
		})
	}
	if got := b.list(t); len(got) != 0 {
		t.Errorf("List after refused Puts = %v, want nothing", got)
	}
}

func testSize(t *testing.T, b bundle) {
	data := content(1, 4096)
	d := digestOf(t, digest.SHA256, data)
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"Short", int64(len(data)) + 1},
		{"Long", int64(len(data)) - 1},
		{"Zero", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Store.Put(b.ctx, d, bytes.NewReader(data), tc.size)
			wantKind(t, err, core.KindInvalid)
			if se := wantAs[*digest.SizeError](t, err); se.Expected != tc.size {
				t.Errorf("size error = %+v, want expected %d", se, tc.size)
			}
			b.absent(t, d)
		})
	}
}

func testNotFound(t *testing.T, b bundle) {
	d := digestOf(t, digest.BLAKE3, []byte("never stored"))
	_, err := b.Store.Stat(b.ctx, d)
	wantKind(t, err, core.KindNotFound)
	_, err = b.Store.Get(b.ctx, d, 0, -1)
	wantKind(t, err, core.KindNotFound)
	_, err = b.Store.Get(b.ctx, d, 1, 2)
	wantKind(t, err, core.KindNotFound)
	if err := b.Store.Delete(b.ctx, d); err != nil {
		t.Errorf("Delete of an absent blob: %v, want nil", err)
	}
}

func testInvalid(t *testing.T, b bundle) {
	var zero digest.Digest
	wantKind(t, b.Store.Put(b.ctx, zero, bytes.NewReader(nil), 0), core.KindInvalid)
	_, err := b.Store.Get(b.ctx, zero, 0, -1)
	wantKind(t, err, core.KindInvalid)
	_, err = b.Store.Stat(b.ctx, zero)
	wantKind(t, err, core.KindInvalid)
	wantKind(t, b.Store.Delete(b.ctx, zero), core.KindInvalid)
	d := digestOf(t, digest.SHA256, nil)
	wantKind(t, b.Store.Put(b.ctx, d, bytes.NewReader(nil), -2), core.KindInvalid)
	b.absent(t, d)
}

func testRanges(t *testing.T, b bundle) {
	data := content(7, 1000)
	d := b.put(t, digest.SHA256, data)
	for _, tc := range []struct {
		name           string
		offset, length int64
		want           []byte
	}{
		{"Whole", 0, -1, data},
		{"WholeByLength", 0, 1000, data},
		{"Start", 0, 10, data[:10]},
		{"Middle", 100, 200, data[100:300]},
		{"EndOpen", 990, -1, data[990:]},
		{"EndExact", 990, 10, data[990:]},
		{"EmptyAtStart", 0, 0, nil},
		{"EmptyInside", 500, 0, nil},
		{"EmptyAtEnd", 1000, -1, nil},
		{"EmptyAtEndExact", 1000, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := b.get(t, d, tc.offset, tc.length); !bytes.Equal(got, tc.want) {
				t.Errorf("got %d bytes, want %d bytes [%d, %+d]", len(got), len(tc.want), tc.offset, tc.length)
			}
		})
	}
	for _, tc := range []struct {
		name           string
		offset, length int64
	}{
		{"ErrOffsetPastEnd", 1001, -1},
		{"ErrOffsetPastEndEmpty", 1001, 0},
		{"ErrNegativeOffset", -1, 5},
		{"ErrLengthPastEnd", 990, 11},
		{"ErrLengthBelowMinusOne", 0, -2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := b.Store.Get(b.ctx, d, tc.offset, tc.length)
			wantKind(t, err, core.KindInvalid)
		})
	}
}

// failingReader fails the test if Put reads it.
type failingReader struct{ t *testing.T }

func (f failingReader) Read([]byte) (int, error) {
	f.t.Error("Put read its source although the blob was already stored")
	return 0, errors.New("must not be read")
}

func testIdempotent(t *testing.T, b bundle) {
	data := content(3, 5000)
	d := b.put(t, digest.BLAKE3, data)
	before, err := b.Store.Stat(b.ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{int64(len(data)), -1} {
		if err := b.Store.Put(b.ctx, d, failingReader{t}, size); err != nil {
			t.Errorf("second Put (size %d): %v, want nil", size, err)
		}
	}
	// A size that no content with this digest can have.
	wantKind(t, b.Store.Put(b.ctx, d, failingReader{t}, int64(len(data))+1), core.KindInvalid)
	after, err := b.Store.Stat(b.ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after, digestEqual); diff != "" {
		t.Errorf("Stat after repeated Puts (-before +after):\n%s", diff)
	}
	if got := b.get(t, d, 0, -1); !bytes.Equal(got, data) {
		t.Error("blob changed after repeated Puts")
	}
	if diff := cmp.Diff([]digest.Digest{d}, b.list(t), digestEqual); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

func testConcurrent(t *testing.T, b bundle) {
	const n = 16
	data := content(4, 300_000)
	d := digestOf(t, digest.SHA256, data)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			size := int64(len(data))
			if i%2 == 1 {
				size = -1
			}
			errs[i] = b.Store.Put(b.ctx, d, bytes.NewReader(data), size)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	if got := b.get(t, d, 0, -1); !bytes.Equal(got, data) {
		t.Error("blob after concurrent Puts differs from what was put")
	}
	if diff := cmp.Diff([]digest.Digest{d}, b.list(t), digestEqual); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if left := b.Leftovers(t); len(left) > 0 {
		t.Errorf("staged data left behind: %q", left)
	}
}

// flip returns an edit that inverts the byte at offset.
func flip(offset int64) func([]byte) []byte {
	return func(b []byte) []byte { b[offset] ^= 0xff; return b }
}

// readAll reads rc to the end and returns what it handed out before the
// first error.
func readAll(rc io.ReadCloser) ([]byte, error) {
	defer rc.Close()
	return io.ReadAll(rc)
}

// wantCorrupt checks that err reports d as corrupt, in the given chunk
// (-1: found by the whole-blob check), and not as a client's mismatch.
func wantCorrupt(t *testing.T, err error, d digest.Digest, chunk int64) {
	t.Helper()
	wantKind(t, err, core.KindInternal)
	ce, ok := blobstore.AsCorrupt(err)
	if !ok {
		t.Fatalf("got %v, want a *blobstore.CorruptError", err)
	}
	if ce.Digest != d || ce.Chunk != chunk {
		t.Errorf("corrupt error names %s chunk %d, want %s chunk %d", ce.Digest, ce.Chunk, d, chunk)
	}
	var mismatch *digest.MismatchError
	if errors.As(err, &mismatch) {
		t.Errorf("%v unwraps to a *digest.MismatchError, which callers read as a client's bad upload", err)
	}
}

const chunk = digest.ChunkSize

// testCorrupted damages one byte of a four-chunk blob in its first, a
// middle and its last chunk, in turn: no read ever hands out a damaged
// byte, and reads that do not cover it are served.
func testCorrupted(t *testing.T, b bundle, alg digest.Algorithm) {
	data := content(5, 3*chunk+1000)
	d := b.put(t, alg, data)
	for _, at := range []int64{10, chunk + chunk/2, 3*chunk + 999} {
		k := at / chunk
		t.Run(fmt.Sprintf("chunk%d", k), func(t *testing.T) {
			b.Rewrite(t, d, flip(at))
			defer b.Rewrite(t, d, flip(at))

			rc, err := b.Store.Get(b.ctx, d, 0, -1)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			got, err := readAll(rc)
			last := int64(len(data)-1) / chunk
			if k == last {
				// The last chunk is checked, then the whole blob; either
				// stops it.
				ce, _ := blobstore.AsCorrupt(err)
				if ce == nil || (ce.Chunk != k && ce.Chunk != -1) {
					t.Fatalf("whole read: %v, want corruption in chunk %d", err, k)
				}
			} else {
				wantCorrupt(t, err, d, k)
			}
			if int64(len(got)) != k*chunk || !bytes.Equal(got, data[:len(got)]) {
				t.Errorf("whole read handed out %d bytes, want the %d intact bytes before the damaged chunk", len(got), k*chunk)
			}

			// A range around the damage fails at its first Read, having
			// handed out nothing.
			start := max(0, at-5)
			rc, err = b.Store.Get(b.ctx, d, start, min(10, int64(len(data))-start))
			if err == nil {
				var got []byte
				got, err = readAll(rc)
				if len(got) > 0 {
					t.Errorf("range over the damage handed out %d bytes", len(got))
				}
			}
			wantCorrupt(t, err, d, k)

			// A range in another chunk is intact and served.
			other := (k + 2) % (last + 1) * chunk
			if got := b.get(t, d, other, 100); !bytes.Equal(got, data[other:other+100]) {
				t.Errorf("range in an intact chunk differs")
			}

			_, err = b.Store.Verify(b.ctx, d)
			ce, _ := blobstore.AsCorrupt(err)
			if ce == nil {
				t.Errorf("Verify = %v, want corruption", err)
			}
		})
	}
	if got := b.get(t, d, 0, -1); !bytes.Equal(got, data) {
		t.Error("the blob, restored, does not read back")
	}
	if _, err := b.Store.Verify(b.ctx, d); err != nil {
		t.Errorf("Verify of the restored blob: %v", err)
	}
}

// testCorruptedWithoutIndex reads a damaged blob that has no chunk index,
// as blobs stored before indexes existed: a whole read hands out the
// bytes but ends with the verdict instead of io.EOF, and a range fails
// before any byte, since the index is rebuilt from the whole blob first.
func testCorruptedWithoutIndex(t *testing.T, b bundle, alg digest.Algorithm) {
	data := content(9, 2*chunk+77)
	d := b.put(t, alg, data)
	b.SetIndex(t, d, nil)
	b.Rewrite(t, d, flip(chunk+1))
	rc, err := b.Store.Get(b.ctx, d, 0, -1)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	got, err := readAll(rc)
	wantCorrupt(t, err, d, -1)
	if len(got) != len(data) {
		t.Errorf("streamed %d bytes before the verdict, want all %d", len(got), len(data))
	}
	// The same through an explicit whole range.
	_, err = b.read(d, 0, int64(len(data)))
	wantCorrupt(t, err, d, -1)

	_, err = b.Store.Get(b.ctx, d, 5, 10)
	wantCorrupt(t, err, d, -1)
	if b.Index(t, d) != nil {
		t.Error("an index was recorded for damaged bytes")
	}
}

// testIndex checks that Put records a chunk index, that reads rebuild a
// missing or damaged one from verified bytes, and that Delete removes it.
func testIndex(t *testing.T, b bundle) {
	data := content(10, 2*chunk+5)
	d := b.put(t, digest.SHA256, data)
	ch, _ := digest.NewChunkHasher(digest.SHA256)
	_, _ = ch.Write(data)
	want, err := ch.Index(d).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Index(t, d); !bytes.Equal(got, want) {
		t.Fatalf("Put recorded index %x, want %x", got, want)
	}

	b.SetIndex(t, d, nil)
	if got := b.get(t, d, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("whole read without an index differs")
	}
	if got := b.Index(t, d); !bytes.Equal(got, want) {
		t.Error("a whole read did not record the missing index")
	}

	b.SetIndex(t, d, nil)
	if got := b.get(t, d, chunk-3, 10); !bytes.Equal(got, data[chunk-3:chunk+7]) {
		t.Fatal("range without an index differs")
	}
	if got := b.Index(t, d); !bytes.Equal(got, want) {
		t.Error("a ranged read did not record the missing index")
	}

	damaged := bytes.Clone(want)
	damaged[40] ^= 1
	b.SetIndex(t, d, damaged)
	if got := b.get(t, d, 2*chunk, -1); !bytes.Equal(got, data[2*chunk:]) {
		t.Fatal("range with a damaged index differs")
	}
	if got := b.Index(t, d); !bytes.Equal(got, want) {
		t.Error("a damaged index was not replaced")
	}

	// An intact index of another blob is not taken for this one's.
	other := b.put(t, digest.SHA256, content(11, 2*chunk+5))
	b.SetIndex(t, d, b.Index(t, other))
	if got := b.get(t, d, 10, 10); !bytes.Equal(got, data[10:20]) {
		t.Fatal("range with another blob's index differs")
	}
	if got := b.Index(t, d); !bytes.Equal(got, want) {
		t.Error("another blob's index was not replaced")
	}

	b.SetIndex(t, d, nil)
	if _, err := b.Store.Verify(b.ctx, d); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got := b.Index(t, d); !bytes.Equal(got, want) {
		t.Error("Verify did not record the missing index")
	}

	if err := b.Store.Delete(b.ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := b.Index(t, d); got != nil {
		t.Error("Delete left the index behind")
	}
	_, err = b.Store.Verify(b.ctx, d)
	wantKind(t, err, core.KindNotFound)
}

// testForgedIndex replaces a chunk's bytes and records an index that
// agrees with them, as someone who can write the storage could: the chunk
// checks pass, but a whole read still never completes, because the blob's
// own digest is checked before its last chunk goes out.
func testForgedIndex(t *testing.T, b bundle) {
	data := content(12, 2*chunk+300)
	d := b.put(t, digest.SHA256, data)
	bad := bytes.Clone(data)
	bad[chunk+7] ^= 0x55
	b.Rewrite(t, d, func([]byte) []byte { return bad })
	ch, _ := digest.NewChunkHasher(digest.SHA256)
	_, _ = ch.Write(bad)
	forged, err := ch.Index(d).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b.SetIndex(t, d, forged)
	got, err := b.read(d, 0, -1)
	wantCorrupt(t, err, d, -1)
	if len(got) >= len(data) {
		t.Errorf("whole read handed out all %d bytes of a forged blob", len(got))
	}
}

// testSizeChanged cuts a blob short and lengthens it: both are found,
// whatever the index says.
func testSizeChanged(t *testing.T, b bundle) {
	data := content(13, chunk+50)
	d := b.put(t, digest.BLAKE3, data)
	for name, edit := range map[string]func([]byte) []byte{
		"Short": func(b []byte) []byte { return b[:len(b)-1] },
		"Long":  func(b []byte) []byte { return append(b, 0) },
		"Empty": func([]byte) []byte { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			b.Rewrite(t, d, edit)
			defer b.Rewrite(t, d, func([]byte) []byte { return bytes.Clone(data) })
			_, err := b.read(d, 0, -1)
			if _, ok := blobstore.AsCorrupt(err); !ok {
				t.Errorf("whole read: %v, want corruption", err)
			}
			_, err = b.read(d, 0, 10)
			if _, ok := blobstore.AsCorrupt(err); !ok {
				t.Errorf("range: %v, want corruption", err)
			}
		})
	}
}

// testPutRepairs uploads a corrupt blob's bytes again: the Put replaces
// them, where it used to see the blob present and keep the damage.
func testPutRepairs(t *testing.T, b bundle) {
	data := content(14, 2*chunk+9)
	d := b.put(t, digest.SHA256, data)
	for name, edit := range map[string]func([]byte) []byte{
		"Flipped":    flip(chunk + 3),
		"Truncated":  func(b []byte) []byte { return b[:chunk] },
		"NoIndexToo": flip(5),
	} {
		t.Run(name, func(t *testing.T) {
			b.Rewrite(t, d, edit)
			if name == "NoIndexToo" {
				b.SetIndex(t, d, nil)
			}
			// Bytes that are not the blob do not replace anything.
			wrong := bytes.Clone(data)
			wrong[0] ^= 1
			err := b.Store.Put(b.ctx, d, bytes.NewReader(wrong), int64(len(wrong)))
			wantKind(t, err, core.KindInvalid)
			if _, err := b.read(d, 0, -1); err == nil {
				t.Fatal("a refused Put repaired the blob")
			}
			for _, size := range []int64{int64(len(data)), -1} {
				if err := b.Store.Put(b.ctx, d, bytes.NewReader(data), size); err != nil {
					t.Fatalf("Put of the right bytes (size %d): %v", size, err)
				}
			}
			if got := b.get(t, d, 0, -1); !bytes.Equal(got, data) {
				t.Fatal("the repaired blob does not read back")
			}
			if got := b.get(t, d, chunk, 10); !bytes.Equal(got, data[chunk:chunk+10]) {
				t.Fatal("a range of the repaired blob differs")
			}
			if info, err := b.Store.Verify(b.ctx, d); err != nil || info.Size != int64(len(data)) {
				t.Fatalf("Verify after repair = %+v, %v", info, err)
			}
			if b.Index(t, d) == nil {
				t.Error("the repair recorded no index")
			}
			if left := b.Leftovers(t); len(left) > 0 {
				t.Errorf("staged data left behind: %q", left)
			}
		})
	}
}

// testLarge moves blobs of several MiB, enough for a multipart upload when
// the backend's part size is small.
func testLarge(t *testing.T, b bundle) {
	const size = 11<<20 + 5
	data := content(6, size)
	for i, alg := range algorithms {
		d := digestOf(t, alg, data)
		// Known size for sha256, unknown for blake3: both paths.
		declared := int64(size)
		if i == 1 {
			declared = -1
		}
		if err := b.Store.Put(b.ctx, d, bytes.NewReader(data), declared); err != nil {
			t.Fatalf("Put %s (size %d): %v", d, declared, err)
		}
		got, err := b.read(d, 0, -1)
		if err != nil {
			t.Fatalf("Get %s: %v", d, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("Get %s: content differs", d)
		}
		if tail := b.get(t, d, size-100, -1); !bytes.Equal(tail, data[size-100:]) {
			t.Errorf("tail of %s differs", d)
		}
		if b.Index(t, d) == nil {
			t.Errorf("Put of %s recorded no chunk index", d)
		}
	}

	// A mismatch found only after the last byte leaves nothing either.
	wrong := digestOf(t, digest.SHA256, data[:size-1])
	err := b.Store.Put(b.ctx, wrong, bytes.NewReader(data), -1)
	wantAs[*digest.MismatchError](t, err)
	b.absent(t, wrong)
}

// cancelingReader yields bytes forever and cancels its context once it has
// yielded after bytes.
type cancelingReader struct {
	cancel func()
	after  int
	n      int
}

func (r *cancelingReader) Read(p []byte) (int, error) {
	if r.n >= r.after {
		r.cancel()
	}
	for i := range p {
		p[i] = byte(r.n + i)
	}
	r.n += len(p)
	return len(p), nil
}

func testCanceled(t *testing.T, b bundle) {
	d := digestOf(t, digest.SHA256, []byte("never finished"))
	for _, tc := range []struct {
		name  string
		after int
		size  int64
	}{
		{"Before", 0, -1},
		{"MidKnownSize", 6 << 20, 64 << 20},
		{"MidUnknownSize", 6 << 20, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(b.ctx)
			defer cancel()
			if tc.after == 0 {
				cancel()
			}
			err := b.Store.Put(ctx, d, &cancelingReader{cancel: cancel, after: tc.after}, tc.size)
			wantKind(t, err, core.KindCanceled)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want it to match context.Canceled", err)
			}
			b.absent(t, d)
		})
	}
}

func testList(t *testing.T, b bundle) {
	var want []digest.Digest
	for i := range 12 {
		want = append(want, b.put(t, algorithms[i%2], content(uint64(100+i), i*10)))
	}
	slices.SortFunc(want, func(x, y digest.Digest) int { return cmpString(x.String(), y.String()) })
	if diff := cmp.Diff(want, b.list(t), digestEqual); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	// Stopping early must be honored (a second yield would panic).
	n := 0
	for _, err := range b.Store.List(b.ctx) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		break
	}
	if n != 1 {
		t.Errorf("iterated %d times before break, want 1", n)
	}
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	var last error
	for _, err := range b.Store.List(ctx) {
		last = err
	}
	wantKind(t, last, core.KindCanceled)
}

func testRemoveStale(t *testing.T, b bundle) {
	sr, ok := b.Store.(blobstore.StaleRemover)
	if !ok {
		t.Skip("the backend stages nothing")
	}
	d := b.put(t, digest.SHA256, content(8, 100))
	b.Strand(t)
	if len(b.Leftovers(t)) == 0 {
		t.Fatal("Strand left nothing behind")
	}
	n, err := sr.RemoveStale(b.ctx, time.Hour)
	if err != nil || n != 0 {
		t.Fatalf("RemoveStale(1h) = %d, %v; want 0 (the stranded data is fresh)", n, err)
	}
	if len(b.Leftovers(t)) == 0 {
		t.Fatal("RemoveStale(1h) removed fresh staged data")
	}
	n, err = sr.RemoveStale(b.ctx, 0)
	if err != nil || n != 1 {
		t.Fatalf("RemoveStale(0) = %d, %v; want 1", n, err)
	}
	if left := b.Leftovers(t); len(left) > 0 {
		t.Errorf("RemoveStale left %q", left)
	}
	if got := b.get(t, d, 0, -1); !bytes.Equal(got, content(8, 100)) {
		t.Error("RemoveStale touched a stored blob")
	}
}
