package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
)

// BenchmarkGetBlob measures what verification costs a download: the same
// 64 MiB blob, in the page cache, served on loopback to a plain net/http
// client by http.ServeContent of a plain file, and by GET
// /api/v1/blobs/{digest} (fs store, SQLite), whole and by 1 MiB ranges.
// A verified whole answer checks every chunk against its recorded digest
// and the blob against its own; a range checks its chunks. Compare MB/s:
//
//	go test -run '^$' -bench GetBlob -benchtime 10x ./internal/artifact/httpapi/
func BenchmarkGetBlob(b *testing.B) {
	const size = 64 << 20
	e := newBlobEnv(b, sqliteFS)
	data := randomBlob(99, size)
	d := e.store(data)
	path := filepath.Join(b.TempDir(), "plain")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f)
	}))
	b.Cleanup(plain.Close)
	get := func(b *testing.B, url, rng string) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := e.plain.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode/100 != 2 || n == 0 {
			b.Fatalf("GET %s: %d, %d bytes, %v", url, resp.StatusCode, n, err)
		}
	}
	ranges := func(b *testing.B, url string) {
		for off := 0; off < size; off += digest.ChunkSize {
			get(b, url, fmt.Sprintf("bytes=%d-%d", off, off+digest.ChunkSize-1))
		}
	}
	blobURL := e.srv.URL + "/api/v1/blobs/" + d.String()
	for _, bc := range []struct {
		name string
		run  func(b *testing.B)
	}{
		{"plain-whole", func(b *testing.B) { get(b, plain.URL, "") }},
		{"verified-whole", func(b *testing.B) { get(b, blobURL, "") }},
		{"plain-ranges", func(b *testing.B) { ranges(b, plain.URL) }},
		{"verified-ranges", func(b *testing.B) { ranges(b, blobURL) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				bc.run(b)
			}
		})
	}
}
