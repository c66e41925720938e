package digest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"github.com/deltaci/deltaci/internal/core"
)

// chunkData returns n deterministic pseudo-random bytes.
func chunkData(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7})
	_, _ = r.Read(b)
	return b
}

// wantSums hashes data chunk by chunk the obvious way.
func wantSums(t *testing.T, alg Algorithm, data []byte) [][sumLen]byte {
	t.Helper()
	var sums [][sumLen]byte
	for start := 0; start < len(data); start += ChunkSize {
		d, err := FromBytes(alg, data[start:min(start+ChunkSize, len(data))])
		if err != nil {
			t.Fatal(err)
		}
		var s [sumLen]byte
		raw, _ := hex.DecodeString(d.Hex())
		copy(s[:], raw)
		sums = append(sums, s)
	}
	return sums
}

func TestChunkHasher(t *testing.T) {
	t.Parallel()
	for _, alg := range []Algorithm{SHA256, BLAKE3} {
		for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 5} {
			data := chunkData(uint64(n), n)
			blob, _ := FromBytes(alg, data)
			// Writes of odd sizes cross chunk boundaries anywhere.
			c, err := NewChunkHasher(alg)
			if err != nil {
				t.Fatal(err)
			}
			for rest := data; len(rest) > 0; {
				k := min(len(rest), 1+len(rest)%77777)
				_, _ = c.Write(rest[:k])
				rest = rest[k:]
			}
			x := c.Index(blob)
			want := wantSums(t, alg, data)
			if x.Size != int64(n) || x.Chunks() != int64(len(want)) || len(x.Sums) != len(want) {
				t.Fatalf("%s/%d: index of size %d with %d sums, want %d sums", alg, n, x.Size, len(x.Sums), len(want))
			}
			for i := range want {
				if x.Sums[i] != want[i] {
					t.Errorf("%s/%d: chunk %d sum differs", alg, n, i)
				}
				start, end := x.Span(int64(i))
				if err := x.Check(int64(i), data[start:end]); err != nil {
					t.Errorf("%s/%d: Check(%d) of the right bytes: %v", alg, n, i, err)
				}
			}
		}
	}
}

func TestChunkIndexCheckFindsDamage(t *testing.T) {
	t.Parallel()
	data := chunkData(1, 2*ChunkSize+100)
	blob, _ := FromBytes(SHA256, data)
	c, _ := NewChunkHasher(SHA256)
	_, _ = c.Write(data)
	x := c.Index(blob)
	bad := bytes.Clone(data[ChunkSize : 2*ChunkSize])
	bad[12345] ^= 1
	err := x.Check(1, bad)
	var m *MismatchError
	if !errors.As(err, &m) || m.Expected.Algorithm() != SHA256 || m.Expected == blob {
		t.Fatalf("Check of a damaged chunk = %v, want a mismatch of the chunk's digests", err)
	}
	var se *SizeError
	if err := x.Check(2, data[2*ChunkSize:2*ChunkSize+99]); !errors.As(err, &se) {
		t.Errorf("Check of a short last chunk = %v, want a size error", err)
	}
}

func TestChunkIndexRoundTrip(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		alg := rapid.SampledFrom([]Algorithm{SHA256, BLAKE3}).Draw(t, "alg")
		chunk := int64(rapid.IntRange(minChunkSize, 1<<16).Draw(t, "chunk"))
		size := rapid.Int64Range(0, 40*chunk).Draw(t, "size")
		blob, _ := FromBytes(alg, []byte(rapid.String().Draw(t, "blob")))
		x := ChunkIndex{Blob: blob, Size: size, ChunkSize: chunk}
		for range chunkCount(size, chunk) {
			var s [sumLen]byte
			copy(s[:], rapid.SliceOfN(rapid.Byte(), sumLen, sumLen).Draw(t, "sum"))
			x.Sums = append(x.Sums, s)
		}
		b, err := x.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseChunkIndex(blob, b)
		if err != nil {
			t.Fatalf("parse of a marshaled index: %v", err)
		}
		if got.Blob != x.Blob || got.Size != x.Size || got.ChunkSize != x.ChunkSize || len(got.Sums) != len(x.Sums) {
			t.Fatalf("round trip: got %+v, want %+v", got, x)
		}
		for i := range x.Sums {
			if got.Sums[i] != x.Sums[i] {
				t.Fatalf("round trip: sum %d differs", i)
			}
		}
	})
}

// TestParseChunkIndexRefusesDamage flips every byte of an index in turn,
// cuts it short, lengthens it and presents it as another blob's: each is
// refused as invalid.
func TestParseChunkIndexRefusesDamage(t *testing.T) {
	t.Parallel()
	data := chunkData(2, 3*ChunkSize/2)
	blob, _ := FromBytes(BLAKE3, data)
	c, _ := NewChunkHasher(BLAKE3)
	_, _ = c.Write(data)
	b, err := c.Index(blob).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseChunkIndex(blob, b); err != nil {
		t.Fatalf("intact index refused: %v", err)
	}
	refused := func(what string, blob Digest, b []byte) {
		t.Helper()
		if _, err := ParseChunkIndex(blob, b); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("%s: ParseChunkIndex = %v, want invalid", what, err)
		}
	}
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x10
		refused("byte "+strconv.Itoa(i)+" flipped", blob, bad)
	}
	refused("cut short", blob, b[:len(b)-1])
	refused("one sum short", blob, append(bytes.Clone(b[:len(b)-2*sumLen]), b[len(b)-sumLen:]...))
	refused("lengthened", blob, append(bytes.Clone(b), 0))
	refused("empty", blob, nil)
	other, _ := FromBytes(BLAKE3, []byte("another blob"))
	refused("another blob's digest", other, b)
	refused("no digest", Digest{}, b)
}

func TestMarshalRefusesInconsistentIndex(t *testing.T) {
	t.Parallel()
	blob, _ := FromBytes(SHA256, []byte("x"))
	for name, x := range map[string]ChunkIndex{
		"NoBlob":        {Size: 1, ChunkSize: ChunkSize, Sums: make([][sumLen]byte, 1)},
		"TooFewSums":    {Blob: blob, Size: ChunkSize + 1, ChunkSize: ChunkSize, Sums: make([][sumLen]byte, 1)},
		"TinyChunks":    {Blob: blob, Size: 1, ChunkSize: 1, Sums: make([][sumLen]byte, 1)},
		"NegativeSize":  {Blob: blob, Size: -1, ChunkSize: ChunkSize},
		"SumsForNobody": {Blob: blob, Size: 0, ChunkSize: ChunkSize, Sums: make([][sumLen]byte, 1)},
	} {
		if _, err := x.MarshalBinary(); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("%s: MarshalBinary = %v, want invalid", name, err)
		}
	}
}

func TestFieldValue(t *testing.T) {
	t.Parallel()
	empty, _ := FromBytes(SHA256, nil)
	if v, ok := FieldValue(empty); !ok || v != "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:" {
		t.Errorf("FieldValue(sha256 of nothing) = %q, %v", v, ok)
	}
	data := []byte(`{"hello": "world"}`)
	d, _ := FromBytes(SHA256, data)
	sum := sha256.Sum256(data)
	if v, _ := FieldValue(d); v != "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":" {
		t.Errorf("FieldValue = %q", v)
	}
	b3, _ := FromBytes(BLAKE3, data)
	if v, ok := FieldValue(b3); ok || v != "" {
		t.Errorf("FieldValue(blake3) = %q, %v; want no field (IANA names no BLAKE3)", v, ok)
	}
}
