package fs

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/deltaci/deltaci/internal/artifact/digest"
)

// BenchmarkRead measures what verification costs a read: the same 64 MiB
// blob, in the page cache, read plainly from its file, then through Get
// whole (every chunk checked against its index and the whole blob against
// its digest) and by 1 MiB ranges (chunk checks only). Compare the MB/s:
//
//	go test -run '^$' -bench Read -benchtime 20x ./internal/artifact/blobstore/fs/
func BenchmarkRead(b *testing.B) {
	const size = 64 << 20
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.BLAKE3} {
		s, err := Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		data := make([]byte, size)
		_, _ = rand.NewChaCha8([32]byte{1}).Read(data)
		d, _ := digest.FromBytes(alg, data)
		ctx := context.Background()
		if err := s.Put(ctx, d, bytes.NewReader(data), size); err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		b.Run(string(alg)+"/plain", func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				f, err := os.Open(s.path(d))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
		b.Run(string(alg)+"/verified-whole", func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				rc, err := s.Get(ctx, d, 0, -1)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{rc}, buf); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
		b.Run(string(alg)+"/verified-ranges", func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				for off := int64(0); off < size; off += digest.ChunkSize {
					rc, err := s.Get(ctx, d, off, digest.ChunkSize)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{rc}, buf); err != nil {
						b.Fatal(err)
					}
					rc.Close()
				}
			}
		})
	}
}
