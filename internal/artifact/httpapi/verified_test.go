package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	miniogo "github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/fs"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/s3"
	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	elpostgres "github.com/deltaci/deltaci/internal/artifact/eventlog/postgres"
	elsqlite "github.com/deltaci/deltaci/internal/artifact/eventlog/sqlite"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

// blobEnv is a server on a real registry whose stored bytes a test can
// change behind its back, and a plain net/http client: what a curl user
// has, not the project's verifying client.
type blobEnv struct {
	t     testing.TB
	ctx   context.Context
	reg   *registry.Registry
	data  *dataplane.Local
	srv   *httptest.Server
	plain *http.Client
	log   *syncBuffer
	// get and put read and replace a stored file or object by its name
	// under the blob store's root; get returns nil for none, put of nil
	// removes it.
	get func(name string) []byte
	put func(name string, b []byte)
	// onS3 tells how names are laid out: flat on S3, fanned out on fs.
	onS3 bool
}

func newBlobEnv(t testing.TB, eng engine) *blobEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	e := &blobEnv{t: t, ctx: ctx, log: &syncBuffer{}}
	var drv eventlog.Driver
	var blobs blobstore.Store
	switch eng {
	case sqliteFS:
		d, err := elsqlite.Open(ctx, filepath.Join(dir, "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		drv = d
		root := filepath.Join(dir, "blobs")
		st, err := fs.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		blobs = st
		e.get = func(name string) []byte {
			b, err := os.ReadFile(filepath.Join(root, name))
			if errors.Is(err, os.ErrNotExist) {
				return nil
			} else if err != nil {
				t.Fatal(err)
			}
			return b
		}
		e.put = func(name string, b []byte) {
			p := filepath.Join(root, name)
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			if b != nil {
				if err := os.WriteFile(p, b, 0o444); err != nil {
					t.Fatal(err)
				}
			}
		}
	case postgresMinIO:
		d, err := elpostgres.Open(ctx, storetest.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		drv = d
		srv := minio.Server(t)
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		prefix := "verified/" + hex.EncodeToString(b)
		st, err := s3.Open(ctx, "s3://"+srv.Bucket+"/"+prefix, s3.Options{
			Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		blobs, e.onS3 = st, true
		u, _ := url.Parse(srv.Endpoint)
		mc, err := miniogo.New(u.Host, &miniogo.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
		if err != nil {
			t.Fatal(err)
		}
		e.get = func(name string) []byte {
			obj, err := mc.GetObject(ctx, srv.Bucket, prefix+"/"+name, miniogo.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Close()
			b, err := io.ReadAll(obj)
			if miniogo.ToErrorResponse(err).Code == miniogo.NoSuchKey {
				return nil
			} else if err != nil {
				t.Fatal(err)
			}
			return b
		}
		e.put = func(name string, b []byte) {
			if b == nil {
				if err := mc.RemoveObject(ctx, srv.Bucket, prefix+"/"+name, miniogo.RemoveObjectOptions{}); err != nil {
					t.Fatal(err)
				}
				return
			}
			if _, err := mc.PutObject(ctx, srv.Bucket, prefix+"/"+name, bytes.NewReader(b), int64(len(b)), miniogo.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() { drv.Close() })
	meta := eventlog.New(drv)
	log := slog.New(slog.NewTextHandler(e.log, nil))
	data, err := dataplane.NewLocal(meta, blobs, filepath.Join(dir, "staging"), dataplane.WithLog(log))
	if err != nil {
		t.Fatal(err)
	}
	e.data = data
	e.reg = &registry.Registry{Meta: meta, Data: data, Blobs: blobs, Alg: digest.SHA256}
	e.srv = httptest.NewServer(httpapi.New(httpapi.Options{Registry: e.reg, Log: log}))
	t.Cleanup(e.srv.Close)
	e.plain = e.srv.Client()
	return e
}

func (e *blobEnv) blobName(d digest.Digest) string {
	if e.onS3 {
		return "blobs/" + string(d.Algorithm()) + "/" + d.Hex()
	}
	return filepath.Join("blobs", string(d.Algorithm()), d.Hex()[:2], d.Hex())
}

func (e *blobEnv) indexName(d digest.Digest) string {
	if e.onS3 {
		return "chunks/" + string(d.Algorithm()) + "/" + d.Hex()
	}
	return filepath.Join("chunks", string(d.Algorithm()), d.Hex()[:2], d.Hex())
}

// store uploads data through the data plane and returns its digest.
func (e *blobEnv) store(data []byte) digest.Digest {
	e.t.Helper()
	d := sha(e.t, data)
	if _, err := e.data.Upload(e.ctx, "alice", digest.SHA256, d, bytes.NewReader(data), int64(len(data))); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// flip inverts the stored byte of d at offset; flipping again restores it.
func (e *blobEnv) flip(d digest.Digest, offset int64) {
	e.t.Helper()
	b := e.get(e.blobName(d))
	b[offset] ^= 0x20
	e.put(e.blobName(d), b)
}

// damageStored flips a byte of d in the fs store of a setup env.
func damageStored(t *testing.T, e *env, d digest.Digest) {
	t.Helper()
	p := filepath.Join(e.dir, "blobs", "blobs", string(d.Algorithm()), d.Hex()[:2], d.Hex())
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o444); err != nil {
		t.Fatal(err)
	}
}

// answer is what a plain client got: the status, the headers, the body
// bytes it read and how reading them ended.
type answer struct {
	status  int
	header  http.Header
	length  int64 // Content-Length
	body    []byte
	readErr error
}

// complete reports whether the client holds a whole successful body.
func (a answer) complete() bool {
	return (a.status == http.StatusOK || a.status == http.StatusPartialContent) && a.readErr == nil && int64(len(a.body)) == a.length
}

func (a answer) String() string {
	return fmt.Sprintf("%d, %d of %d bytes, read error %v", a.status, len(a.body), a.length, a.readErr)
}

func (e *blobEnv) fetch(d digest.Digest, rng string) answer {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, http.MethodGet, e.srv.URL+"/api/v1/blobs/"+d.String(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := e.plain.Do(req)
	if err != nil {
		// A connection cut before the status line arrived (the server
		// buffers the first bytes it writes): no body at all.
		return answer{readErr: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, length: resp.ContentLength, body: body, readErr: err}
}

// corruptions reads the data plane's metric as a scrape would.
func (e *blobEnv) corruptions(foundBy string) float64 {
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.data.Corruptions())
	mfs, err := reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
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

func randomBlob(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 14}).Read(b)
	return b
}

// attack is one GET of a damaged blob: its Range header (none for the
// whole blob), where the body starts, and whether the damage is in the
// first chunk the answer covers, so that nothing may be sent at all.
type attack struct {
	name    string
	rng     string
	start   int64
	firstOK bool // the first covered chunk is intact: some bytes may go out
}

func attacks(size, at int64) []attack {
	const chunk = digest.ChunkSize
	chunkStart := at / chunk * chunk
	around := max(0, at-3000)
	return []attack{
		{"Whole", "", 0, chunkStart > 0},
		{"WholeByRange", "bytes=0-", 0, chunkStart > 0},
		{"TheByte", fmt.Sprintf("bytes=%d-%d", at, at), at, false},
		{"Around", fmt.Sprintf("bytes=%d-%d", around, min(size-1, at+3000)), around, around < chunkStart},
		{"TheChunk", fmt.Sprintf("bytes=%d-%d", chunkStart, min(size, chunkStart+chunk)-1), chunkStart, false},
		{"SuffixFromIt", fmt.Sprintf("bytes=-%d", size-at), at, false},
		{"FromStartThroughIt", fmt.Sprintf("bytes=0-%d", at), 0, chunkStart > 0},
	}
}

// TestPlainClientNeverReadsACompleteCorruptBody damages one byte in the
// first, a middle and the last chunk of blobs of 1 KB, 3 MB and 40 MB, on
// fs with SQLite and on S3 (MinIO) with PostgreSQL, and GETs each whole
// and by ranges with a plain net/http client. No answer is ever a complete
// body; no byte the client reads differs from the blob's; damage in the
// first chunk an answer covers is a 500 before any byte; a range of an
// intact chunk is served; and each read that met the damage is logged at
// ERROR and counted.
func TestPlainClientNeverReadsACompleteCorruptBody(t *testing.T) {
	t.Parallel()
	for _, eng := range []engine{sqliteFS, postgresMinIO} {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			e := newBlobEnv(t, eng)
			for i, size := range []int64{1000, 3_000_000, 40_000_000} {
				data := randomBlob(uint64(i), int(size))
				d := e.store(data)
				for _, at := range []int64{7, size / 2, size - 3} {
					t.Run(fmt.Sprintf("%dB/byte%d", size, at), func(t *testing.T) {
						e.flip(d, at)
						defer e.flip(d, at)
						before := e.corruptions("read")
						for _, a := range attacks(size, at) {
							got := e.fetch(d, a.rng)
							if got.complete() {
								t.Errorf("%s: a complete body of a corrupt blob: %v", a.name, got)
							}
							if !bytes.Equal(got.body, data[a.start:min(size, a.start+int64(len(got.body)))]) && got.status/100 == 2 {
								t.Errorf("%s: the client read a byte that is not the blob's (%v)", a.name, got)
							}
							if !a.firstOK && got.status != http.StatusInternalServerError {
								t.Errorf("%s: %v, want 500 before any byte", a.name, got)
							}
							if got.status == http.StatusInternalServerError {
								var eb httpapi.ErrorBody
								if json.Unmarshal(got.body, &eb) != nil || eb.Error.Code != "internal" {
									t.Errorf("%s: 500 body %q, want the JSON error internal", a.name, got.body)
								}
							}
						}
						if after := e.corruptions("read"); after-before < float64(len(attacks(size, at))) {
							t.Errorf("read corruptions counted %v, want at least %d", after-before, len(attacks(size, at)))
						}
						if size > 2*digest.ChunkSize {
							other := (at/digest.ChunkSize + 1) % (size / digest.ChunkSize) * digest.ChunkSize
							got := e.fetch(d, fmt.Sprintf("bytes=%d-%d", other, other+999))
							if got.status != http.StatusPartialContent || !got.complete() || !bytes.Equal(got.body, data[other:other+1000]) {
								t.Errorf("range of an intact chunk: %v, want 206 with the blob's bytes", got)
							}
						}
					})
				}
				t.Run(fmt.Sprintf("%dB/intact", size), func(t *testing.T) {
					got := e.fetch(d, "")
					if !got.complete() || !bytes.Equal(got.body, data) {
						t.Fatalf("the restored blob: %v", got)
					}
					want, _ := digest.FieldValue(d)
					for _, h := range []string{"Repr-Digest", "Content-Digest"} {
						if v := got.header.Get(h); v != want {
							t.Errorf("%s = %q, want %q", h, v, want)
						}
					}
					if et := got.header.Get("ETag"); et != `"`+d.String()+`"` {
						t.Errorf("ETag = %q", et)
					}
				})
			}
			log := e.log.waitFor("level=ERROR", "stored blob is corrupt")
			if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "stored blob is corrupt") {
				t.Errorf("no ERROR line for the corrupt blobs:\n%.2000s", log)
			}
			if strings.Contains(log, "digest_mismatch") {
				t.Error("stored corruption was reported as a client's digest_mismatch")
			}
		})
	}
}

// TestPlainClientAndBlobsStoredWithoutIndex damages blobs stored without a
// chunk index (as before indexes existed): a whole GET streams and is cut
// before its end, a range fails with 500 before any byte, and an intact
// one is served by range and gets its index back.
func TestPlainClientAndBlobsStoredWithoutIndex(t *testing.T) {
	t.Parallel()
	for _, eng := range []engine{sqliteFS, postgresMinIO} {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			e := newBlobEnv(t, eng)
			for i, size := range []int64{1000, 3_000_000} {
				data := randomBlob(uint64(10+i), int(size))
				d := e.store(data)
				index := e.get(e.indexName(d))
				if index == nil {
					t.Fatalf("the upload of %s recorded no chunk index", d)
				}
				e.put(e.indexName(d), nil)
				e.flip(d, size/2)
				got := e.fetch(d, "")
				if got.complete() {
					t.Errorf("%d B whole: a complete body of a corrupt blob: %v", size, got)
				}
				if size <= 64<<10 && got.status != http.StatusInternalServerError {
					t.Errorf("%d B whole: %v; a blob within the held-back buffer fails before any byte", size, got)
				}
				got = e.fetch(d, fmt.Sprintf("bytes=%d-%d", size/2, size/2))
				if got.status != http.StatusInternalServerError {
					t.Errorf("%d B range: %v, want 500", size, got)
				}
				if e.get(e.indexName(d)) != nil {
					t.Errorf("%d B: an index was recorded for damaged bytes", size)
				}
				e.flip(d, size/2)
				got = e.fetch(d, fmt.Sprintf("bytes=%d-", size-10))
				if got.status != http.StatusPartialContent || !got.complete() || !bytes.Equal(got.body, data[size-10:]) {
					t.Errorf("%d B intact range: %v", size, got)
				}
				if !bytes.Equal(e.get(e.indexName(d)), index) {
					t.Errorf("%d B: the ranged read did not record the index again", size)
				}
			}
		})
	}
}

// TestUploadAgainRepairsCorruptBlob damages a blob, sees a plain GET fail,
// then uploads the same bytes again with a plain POST: the upload replaces
// the damage (it used to answer 201 and keep it), and the blob reads back
// whole. A push after a failed pull repairs too: the server, having found
// the damage, reports the blob missing, so the push uploads it.
func TestUploadAgainRepairsCorruptBlob(t *testing.T) {
	t.Parallel()
	for _, eng := range []engine{sqliteFS, postgresMinIO} {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			e := newBlobEnv(t, eng)
			data := randomBlob(20, 3_000_000)
			d := e.store(data)
			e.flip(d, 2_500_000)
			if got := e.fetch(d, ""); got.complete() {
				t.Fatalf("corrupt blob served whole: %v", got)
			}
			resp, err := e.plain.Post(e.srv.URL+"/api/v1/blobs/uploads?digest="+d.String(), "application/octet-stream", bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("upload again: %d", resp.StatusCode)
			}
			if got := e.fetch(d, ""); !got.complete() || !bytes.Equal(got.body, data) {
				t.Fatalf("after the upload: %v, want the blob whole", got)
			}
			if n := e.corruptions("upload"); n != 1 {
				t.Errorf("upload corruptions = %v, want 1", n)
			}

			// The same through push and pull, by the project's client.
			c := &httpapi.Client{BaseURL: e.srv.URL, Actor: "bob"}
			tr := &registry.Transfer{Data: c, Catalog: httpapi.Catalog{C: c}}
			src := t.TempDir()
			file := randomBlob(21, 1_500_000)
			if err := os.WriteFile(filepath.Join(src, "out.bin"), file, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.Push(e.ctx, "bob", src, "outputs/build:v1", registry.PushOptions{}); err != nil {
				t.Fatal(err)
			}
			fd := sha(t, file)
			e.flip(fd, 1_200_000)
			if _, err := tr.Pull(e.ctx, "outputs/build:v1", filepath.Join(t.TempDir(), "a"), nil); err == nil {
				t.Fatal("pull of a corrupt blob succeeded")
			}
			res, err := tr.Push(e.ctx, "bob", src, "outputs/build:v1", registry.PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Uploaded != 1 {
				t.Errorf("push after the failed pull uploaded %d blobs, want the corrupt one", res.Uploaded)
			}
			dest := filepath.Join(t.TempDir(), "b")
			if _, err := tr.Pull(e.ctx, "outputs/build:v1", dest, nil); err != nil {
				t.Fatalf("pull after the repair: %v", err)
			}
			if got, _ := os.ReadFile(filepath.Join(dest, "out.bin")); !bytes.Equal(got, file) {
				t.Error("pulled file differs after the repair")
			}
		})
	}
}

// TestManifestSizeMustMatchStoredBlob commits manifests that give a stored
// 3-byte blob other sizes, up to 2^53+1: each is refused with 400, naming
// the entry's path and both sizes, and nothing is stored; the true size is
// accepted.
func TestManifestSizeMustMatchStoredBlob(t *testing.T) {
	t.Parallel()
	for _, eng := range []engine{sqliteFS, postgresMinIO} {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			e := newBlobEnv(t, eng)
			d := e.store([]byte("abc"))
			put := func(entries ...manifest.Entry) (*http.Response, digest.Digest, []byte) {
				t.Helper()
				m := manifest.Manifest{Entries: entries}
				body, err := manifest.Encode(m)
				if err != nil {
					t.Fatal(err)
				}
				md := sha(t, body)
				req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/api/v1/manifests/"+md.String(), bytes.NewReader(body))
				req.Header.Set("Content-Type", manifest.MediaTypeCBOR)
				resp, err := e.plain.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp, md, b
			}
			file := func(path string, size int64) manifest.Entry {
				return manifest.Entry{Path: path, Digest: d, Size: size, Mode: manifest.ModeRegular | 0o644}
			}
			for _, size := range []int64{1<<53 + 1, 2, 4, 0} {
				resp, md, body := put(file("dist/big.bin", size))
				var eb httpapi.ErrorBody
				_ = json.Unmarshal(body, &eb)
				if resp.StatusCode != http.StatusBadRequest || eb.Error.Code != "invalid" {
					t.Errorf("size %d: %d %s, want 400 invalid", size, resp.StatusCode, body)
					continue
				}
				for _, want := range []string{`"dist/big.bin"`, strconv.FormatInt(size, 10) + " bytes", "has 3 bytes"} {
					if !strings.Contains(eb.Error.Message, want) {
						t.Errorf("size %d: message %q does not say %s", size, eb.Error.Message, want)
					}
				}
				if _, err := e.reg.Meta.Manifest(e.ctx, md); err == nil {
					t.Errorf("size %d: the manifest was stored", size)
				}
			}
			// The same blob twice, once with a wrong size.
			if resp, _, body := put(file("a", 3), file("b", 30)); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `\"b\"`) {
				t.Errorf("second entry wrong: %d %s, want 400 naming b", resp.StatusCode, body)
			}
			if resp, _, body := put(file("dist/big.bin", 3)); resp.StatusCode != http.StatusCreated {
				t.Errorf("true size: %d %s, want 201", resp.StatusCode, body)
			}
			// In process too, as deltaci run commits.
			_, _, err := e.reg.CommitManifest(e.ctx, "alice", manifest.Manifest{Entries: []manifest.Entry{file("x", 1<<53+1)}})
			if err == nil || !strings.Contains(err.Error(), "9007199254740993") {
				t.Errorf("local commit of a wrong size: %v", err)
			}
		})
	}
}
