package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/core"
)

// TestPushTreeAndReadBack pushes a small tree the way the CLI does over
// HTTP (find-missing, uploads, manifest, ref) and reads it back, on both
// engine pairs: the API behaves the same over either.
func TestPushTreeAndReadBack(t *testing.T) {
	t.Parallel()
	for _, eng := range []engine{sqliteFS, postgresMinIO} {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			e := setup(t, on(eng))
			c := e.client
			c.ChunkSize = 1 << 10 // the big file goes through a resumable session
			big := make([]byte, 5000)
			for i := range big {
				big[i] = byte(i * 7)
			}
			files := map[string][]byte{"README": []byte("read me\n"), "bin/tool": []byte("#!/bin/sh\necho hi\n"), "data/big.bin": big, "empty": {}}
			m := fileManifest(t, files)
			m.Entries = append(m.Entries, manifest.Entry{Path: "link", Mode: manifest.ModeSymlink | manifest.ModePerm, Target: "README"})
			manifest.SortEntries(m.Entries)
			m.Annotations = map[string]string{"job": "build"}

			// Before the uploads, the manifest is refused with every missing blob named.
			_, err := c.PutManifest(e.ctx, m)
			var mb *httpapi.MissingBlobsError
			if !errors.As(err, &mb) || core.KindOf(err) != core.KindNotFound || len(mb.Missing) != 4 {
				t.Fatalf("manifest before uploads: %v (missing %+v), want not_found listing 4 blobs", err, mb)
			}
			var want []digest.Digest
			for _, en := range m.Entries {
				if !en.IsSymlink() {
					want = append(want, en.Digest)
				}
			}
			missing, err := c.FindMissing(e.ctx, want)
			if err != nil || len(missing) != 4 {
				t.Fatalf("find-missing = %v, %v", missing, err)
			}
			for _, en := range m.Entries {
				if en.IsSymlink() {
					continue
				}
				b, err := c.Upload(e.ctx, "", "", en.Digest, bytes.NewReader(files[en.Path]), en.Size)
				if err != nil || b.Digest != en.Digest || b.Size != en.Size {
					t.Fatalf("upload %s: %+v %v", en.Path, b, err)
				}
			}
			if missing, err := c.FindMissing(e.ctx, want); err != nil || len(missing) != 0 {
				t.Fatalf("find-missing after uploads = %v, %v", missing, err)
			}
			md, err := c.PutManifest(e.ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			pin := true
			ref, err := c.SetRef(e.ctx, "outputs/attempt/42:v1", md, &pin)
			if err != nil || ref.Manifest != md || !ref.Pinned || ref.Name != "attempt/42" {
				t.Fatalf("set ref = %+v, %v", ref, err)
			}

			got, err := c.GetRef(e.ctx, "outputs/attempt/42:v1")
			if err != nil || got.Manifest != md {
				t.Fatalf("get ref = %+v, %v", got, err)
			}
			back, err := c.GetManifest(e.ctx, got.Manifest)
			if err != nil {
				t.Fatal(err)
			}
			if len(back.Entries) != 5 || back.Annotations["job"] != "build" {
				t.Fatalf("manifest read back = %+v", back)
			}
			for _, en := range back.Entries {
				if en.IsSymlink() {
					if en.Target != "README" {
						t.Errorf("link target = %q", en.Target)
					}
					continue
				}
				rc, size, err := c.Open(e.ctx, en.Digest, 0, -1)
				if err != nil {
					t.Fatalf("open %s: %v", en.Path, err)
				}
				content, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || size != en.Size || !bytes.Equal(content, files[en.Path]) {
					t.Errorf("%s read back: %d bytes (size %d), %v", en.Path, len(content), size, err)
				}
			}

			// What went in over HTTP comes out of the registry on the server.
			dest := filepath.Join(t.TempDir(), "pulled")
			if _, err := e.reg.Pull(e.ctx, "outputs/attempt/42:v1", dest, nil); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dest, "data/big.bin")); err != nil || !bytes.Equal(b, big) {
				t.Errorf("pulled big.bin: %d bytes, %v", len(b), err)
			}

			refs, err := c.Refs(e.ctx, "outputs")
			if err != nil || len(refs) != 1 || refs[0].String() != "outputs/attempt/42:v1" {
				t.Errorf("refs = %+v, %v", refs, err)
			}
			audit, err := c.Audit(e.ctx, eventlog.AuditFilter{Actor: "token:alice", Subject: "outputs/attempt/42:v1"})
			if err != nil || len(audit) != 2 || audit[0].Kind != "ref.set" || audit[1].Kind != "ref.pinned" {
				t.Errorf("audit of the ref = %+v, %v", audit, err)
			}
			evs, err := c.Events(e.ctx, 0, 0)
			if err != nil || len(evs) == 0 || evs[0].Seq != 1 || evs[0].At.IsZero() {
				t.Errorf("events = %+v, %v", evs, err)
			}
			rep, err := c.Verify(e.ctx)
			if err != nil || !rep.Match() || rep.Head.Seq != int64(len(evs)) {
				t.Errorf("verify = %+v, %v", rep, err)
			}
			if err := c.Ready(e.ctx); err != nil {
				t.Error(err)
			}
			if err := c.DeleteRef(e.ctx, "outputs/attempt/42:v1"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetRef(e.ctx, "outputs/attempt/42:v1"); core.KindOf(err) != core.KindNotFound {
				t.Errorf("deleted ref: %v, want not_found", err)
			}
		})
	}
}

// lossy forwards requests and, for the ones drop selects, throws the
// server's answer away and reports a broken connection instead: the
// server did the work but the client never heard.
type lossy struct {
	next http.RoundTripper
	drop func(*http.Request) bool
	lost atomic.Int32
}

func (l *lossy) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err == nil && l.drop(req) {
		resp.Body.Close()
		l.lost.Add(1)
		return nil, errors.New("connection reset by peer (simulated)")
	}
	return resp, err
}

func TestResumableUpload(t *testing.T) {
	t.Parallel()
	content := make([]byte, 20_000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range content {
		content[i] = byte(rng.IntN(256))
	}
	want := sha(t, content)

	t.Run("LostAnswerResumesAtServerOffset", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		var patches, finishes atomic.Int32
		l := &lossy{next: e.val, drop: func(r *http.Request) bool {
			// The second chunk and the finish each lose their answer once.
			switch r.Method {
			case http.MethodPatch:
				return patches.Add(1) == 2
			case http.MethodPut:
				return finishes.Add(1) == 1
			}
			return false
		}}
		c := &httpapi.Client{BaseURL: e.srv.URL, HTTP: &http.Client{Transport: l}, ChunkSize: 4096}
		// No expected digest: the client hashes while it streams.
		b, err := c.Upload(e.ctx, "", digest.SHA256, digest.Digest{}, bytes.NewReader(content), -1)
		if err != nil {
			t.Fatal(err)
		}
		if b.Digest != want || b.Size != int64(len(content)) {
			t.Fatalf("uploaded %+v, want %s (%d bytes)", b, want, len(content))
		}
		if l.lost.Load() != 2 {
			t.Errorf("%d answers were lost, want 2 (a chunk and the finish)", l.lost.Load())
		}
		rc, _, err := c.Open(e.ctx, want, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("read back %d bytes, %v", len(got), err)
		}
	})

	t.Run("WrongOffsetIs416WithTheOffset", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		c := e.client
		sess, err := c.StartUpload(e.ctx, digest.SHA256, want)
		if err != nil {
			t.Fatal(err)
		}
		next, err := c.Append(e.ctx, sess.ID, 0, bytes.NewReader(content[:1000]))
		if err != nil || next != 1000 {
			t.Fatalf("first chunk: %d, %v", next, err)
		}
		// A client that lost track sends from 500: the server refuses it,
		// stores nothing of it, and says where it is.
		next, err = c.Append(e.ctx, sess.ID, 500, bytes.NewReader(content[500:2000]))
		var oe *dataplane.OffsetError
		if !errors.As(err, &oe) || oe.Offset != 1000 || next != 1000 || core.KindOf(err) != core.KindConflict {
			t.Fatalf("append at a wrong offset: next %d, %v", next, err)
		}
		next, err = c.Append(e.ctx, sess.ID, oe.Offset, bytes.NewReader(content[oe.Offset:]))
		if err != nil || next != int64(len(content)) {
			t.Fatalf("resumed chunk: %d, %v", next, err)
		}
		b, err := c.Finish(e.ctx, "", sess.ID, want)
		if err != nil || b.Digest != want {
			t.Fatalf("finish = %+v, %v", b, err)
		}
		if err := c.Cancel(e.ctx, sess.ID); core.KindOf(err) != core.KindNotFound {
			t.Errorf("cancel a finished session: %v, want not_found", err)
		}
	})
}

func TestRangedDownload(t *testing.T) {
	t.Parallel()
	e := setup(t)
	content := []byte("0123456789abcdef")
	d := e.upload(content)
	for _, tc := range []struct {
		name           string
		offset, length int64
		want           string
	}{
		{"Middle", 3, 4, "3456"},
		{"ToEnd", 10, -1, "abcdef"},
		{"LastByte", 15, 1, "f"},
		{"Whole", 0, -1, string(content)},
		{"EmptyAtEnd", 16, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, size, err := e.client.Open(e.ctx, d, tc.offset, tc.length)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(got) != tc.want || size != int64(len(content)) {
				t.Errorf("Open(%d, %d) = %q (size %d), %v; want %q", tc.offset, tc.length, got, size, err, tc.want)
			}
		})
	}
	t.Run("PastTheEnd", func(t *testing.T) {
		_, _, err := e.client.Open(e.ctx, d, 16, 1)
		if core.KindOf(err) != core.KindInvalid {
			t.Errorf("range past the end: %v, want invalid", err)
		}
		r := e.expect(e.ctx, http.StatusRequestedRangeNotSatisfiable, "GET", "/api/v1/blobs/"+d.String(), hdr("Range", "bytes=-0"), nil)
		if r.header.Get("Content-Range") != "bytes */16" {
			t.Errorf("416 Content-Range = %q", r.header.Get("Content-Range"))
		}
	})
	t.Run("SuffixAndMultiRange", func(t *testing.T) {
		r := e.expect(e.ctx, http.StatusPartialContent, "GET", "/api/v1/blobs/"+d.String(), hdr("Range", "bytes=-3"), nil)
		if string(r.body) != "def" || r.header.Get("Content-Range") != "bytes 13-15/16" {
			t.Errorf("suffix range = %q, %q", r.body, r.header.Get("Content-Range"))
		}
		// Several ranges are not served as multipart: the whole blob comes.
		r = e.expect(e.ctx, http.StatusOK, "GET", "/api/v1/blobs/"+d.String(), hdr("Range", "bytes=0-1,4-5"), nil)
		if !bytes.Equal(r.body, content) {
			t.Errorf("multi-range = %q", r.body)
		}
	})
	t.Run("Absent", func(t *testing.T) {
		if _, _, err := e.client.Open(e.ctx, sha(t, []byte("nope")), 0, -1); core.KindOf(err) != core.KindNotFound {
			t.Errorf("absent blob: %v, want not_found", err)
		}
		if _, err := e.client.Stat(e.ctx, sha(t, []byte("nope"))); core.KindOf(err) != core.KindNotFound {
			t.Errorf("stat absent blob: %v, want not_found", err)
		}
	})
}

func TestDigestMismatchStoresNothing(t *testing.T) {
	t.Parallel()
	e := setup(t)
	content, claimed := []byte("the real bytes"), sha(t, []byte("what the client claimed"))
	for _, tc := range []struct {
		name  string
		chunk int64
	}{{"Monolithic", 0}, {"Chunked", 4}} {
		t.Run(tc.name, func(t *testing.T) {
			c := *e.client
			c.ChunkSize = tc.chunk
			_, err := c.Upload(e.ctx, "", "", claimed, bytes.NewReader(content), int64(len(content)))
			var mm *digest.MismatchError
			if !errors.As(err, &mm) || mm.Expected != claimed || mm.Actual != sha(t, content) || core.KindOf(err) != core.KindInvalid {
				t.Fatalf("upload under the wrong digest: %v, want invalid wrapping a digest mismatch", err)
			}
			for _, d := range []digest.Digest{claimed, sha(t, content)} {
				if _, err := c.Stat(e.ctx, d); core.KindOf(err) != core.KindNotFound {
					t.Errorf("%s after a mismatch: %v, want not_found", d, err)
				}
			}
		})
	}
	evs, err := e.client.Events(e.ctx, 0, 0)
	if err != nil || len(evs) != 0 {
		t.Errorf("events after failed uploads = %+v, %v; want none", evs, err)
	}
}

func TestHostileInput(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := unchecked(e.ctx)
	stored := e.upload([]byte("stored"))
	m := fileManifest(t, map[string][]byte{"f": []byte("stored")})
	body, err := manifest.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	// The same manifest with its version written as a two-byte integer:
	// valid CBOR, same meaning, not canonical.
	i := bytes.LastIndex(body, []byte{0x61, 'v', 0x01})
	if i < 0 {
		t.Fatal("no version key in the manifest CBOR")
	}
	nonCanonical := append(append(bytes.Clone(body[:i+2]), 0x18, 0x01), body[i+3:]...)
	for _, tc := range []struct {
		name   string
		method string
		path   string
		header http.Header
		body   []byte
		status int
		code   string
	}{
		{"HugeBlobBody", "POST", "/api/v1/blobs/uploads?digest=" + sha(t, []byte("x")).String(), nil, make([]byte, testMaxChunk*2), 413, httpapi.CodeTooLarge},
		{"HugeJSON", "POST", "/api/v1/blobs/find-missing", jsonCT, []byte(`{"digests":["` + strings.Repeat("a", testMaxJSON) + `"]}`), 413, httpapi.CodeTooLarge},
		{"HugeManifest", "PUT", "/api/v1/manifests/" + stored.String(), hdr("Content-Type", manifest.MediaTypeCBOR), make([]byte, testMaxManifest+10), 413, httpapi.CodeTooLarge},
		{"MalformedJSON", "PUT", "/api/v1/refs/outputs/x:v1", jsonCT, []byte(`{"manifest": `), 400, "invalid"},
		{"UnknownJSONField", "PUT", "/api/v1/refs/outputs/x:v1", jsonCT, []byte(`{"manifest":"` + stored.String() + `","evil":1}`), 400, "invalid"},
		{"TrailingJSON", "POST", "/api/v1/gc", jsonCT, []byte(`{} {}`), 400, "invalid"},
		{"DigestUppercase", "GET", "/api/v1/blobs/sha256:" + strings.ToUpper(stored.Hex()), nil, nil, 400, "invalid"},
		{"DigestShort", "GET", "/api/v1/blobs/sha256:abc", nil, nil, 400, "invalid"},
		{"DigestUnknownAlgorithm", "GET", "/api/v1/blobs/md5:" + stored.Hex(), nil, nil, 400, "invalid"},
		{"DigestNUL", "GET", "/api/v1/blobs/sha256:%00" + stored.Hex()[1:], nil, nil, 400, "invalid"},
		{"FindMissingBadDigest", "POST", "/api/v1/blobs/find-missing", jsonCT, []byte(`{"digests":["../../etc/passwd"]}`), 400, "invalid"},
		{"RefTraversalEscaped", "GET", "/api/v1/refs/outputs/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd:v1", nil, nil, 400, "invalid"},
		{"RefNamespaceWithSlash", "GET", "/api/v1/refs/out%2Fputs/x:v1", nil, nil, 400, "invalid"},
		{"RefBackslash", "GET", "/api/v1/refs/outputs/a%5Cb:v1", nil, nil, 400, "invalid"},
		{"RefEmptySegment", "GET", "/api/v1/refs/outputs/a%2F%2Fb:v1", nil, nil, 400, "invalid"},
		{"NonCanonicalCBOR", "PUT", "/api/v1/manifests/" + sha(t, nonCanonical).String(), hdr("Content-Type", manifest.MediaTypeCBOR), nonCanonical, 400, "invalid"},
		{"NotCBOR", "PUT", "/api/v1/manifests/" + sha(t, []byte("{}")).String(), hdr("Content-Type", manifest.MediaTypeCBOR), []byte("{}"), 400, "invalid"},
		{"ChunkLongerThanContentRange", "PATCH", "/api/v1/blobs/uploads/x", hdr("Content-Range", "bytes 0-1"), []byte("abc"), 400, "invalid"},
		{"ContentRangeBackwards", "PATCH", "/api/v1/blobs/uploads/x", hdr("Content-Range", "bytes 5-1"), []byte("abc"), 400, "invalid"},
		{"UnknownRoute", "GET", "/api/v1/nope", nil, nil, 404, "not_found"},
		{"WrongMethod", "DELETE", "/api/v1/blobs/" + stored.String(), nil, nil, 405, httpapi.CodeMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(ctx, tc.method, tc.path, tc.header, tc.body)
			if r.status != tc.status {
				t.Fatalf("%s %s = %d, want %d: %s", tc.method, tc.path, r.status, tc.status, r.body)
			}
			if got := r.errorBody(t); got.Code != tc.code || got.Message == "" {
				t.Errorf("error = %+v, want code %q", got, tc.code)
			}
		})
	}
	t.Run("ChunkedBodiesOverTheLimit", func(t *testing.T) {
		// Without a Content-Length the limit can only be found while
		// streaming: the server stops reading at it and stores nothing.
		huge := func() io.Reader {
			return io.MultiReader(bytes.NewReader(make([]byte, testMaxChunk)), strings.NewReader("+1"))
		}
		sess, err := e.client.StartUpload(e.ctx, digest.SHA256, digest.Digest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ method, path string }{
			{"POST", "/api/v1/blobs/uploads?digest=" + sha(t, []byte("x")).String()},
			{"PATCH", "/api/v1/blobs/uploads/" + sess.ID + "?offset=0"},
		} {
			req, err := http.NewRequestWithContext(ctx, tc.method, e.srv.URL+tc.path, huge())
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := e.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("%s %s with a chunked body over the limit = %d, want 413", tc.method, tc.path, resp.StatusCode)
			}
		}
		// The refused chunk left the session where it was.
		if next, err := e.client.Append(e.ctx, sess.ID, 0, strings.NewReader("ok")); err != nil || next != 2 {
			t.Errorf("append after a refused chunk = %d, %v; want 2", next, err)
		}
	})
	t.Run("RawDotDotIsNotServed", func(t *testing.T) {
		// An unescaped ".." is cleaned away by the router before any
		// handler sees it, and the cleaned path is not a route.
		r := e.send(ctx, "GET", "/api/v1/refs/outputs/../../../etc/passwd:v1", nil, nil)
		if r.status < 300 {
			t.Errorf("raw traversal = %d %s", r.status, r.body)
		}
	})
	t.Run("WrongMethodAllow", func(t *testing.T) {
		r := e.send(ctx, "DELETE", "/api/v1/blobs/"+stored.String(), nil, nil)
		if r.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("Allow = %q, want GET, HEAD", r.header.Get("Allow"))
		}
	})
	t.Run("NothingChanged", func(t *testing.T) {
		refs, err := e.client.Refs(e.ctx, "")
		if err != nil || len(refs) != 0 {
			t.Errorf("refs after hostile requests = %+v, %v", refs, err)
		}
		rep, err := e.client.Verify(e.ctx)
		if err != nil || !rep.Match() || rep.Events != 1 {
			t.Errorf("log after hostile requests = %+v, %v; want the one upload", rep, err)
		}
	})
	t.Run("FailuresAreLogged", func(t *testing.T) {
		if log := e.log.waitFor("status=413", "code=too_large"); !strings.Contains(log, "status=413") || !strings.Contains(log, "code=too_large") {
			t.Errorf("server log lacks the failed requests:\n%s", log)
		}
	})
}

func TestGCAndRetentionThroughAPI(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.client
	start := time.Now().UTC().Truncate(time.Second)
	e.clock.set(start)
	var digests []digest.Digest
	for i, content := range []string{"build one", "build two", "build three"} {
		d := e.upload([]byte(content))
		digests = append(digests, d)
		md, err := c.PutManifest(e.ctx, fileManifest(t, map[string][]byte{"out": []byte(content)}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SetRef(e.ctx, "outputs/build:v"+string(rune('1'+i)), md, nil); err != nil {
			t.Fatal(err)
		}
		e.clock.set(start.Add(time.Duration(i+1) * time.Minute))
	}
	if _, err := c.SetRetention(e.ctx, eventlog.Policy{Namespace: "outputs", Selector: "build:*", KeepLast: 1}); err != nil {
		t.Fatal(err)
	}
	ps, err := c.Retention(e.ctx, "outputs")
	if err != nil || len(ps) != 1 || ps[0].KeepLast != 1 || ps[0].Selector != "build:*" {
		t.Fatalf("policies = %+v, %v", ps, err)
	}
	before, err := c.Events(e.ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}

	plan, err := c.ApplyRetention(e.ctx, "outputs", true)
	if err != nil {
		t.Fatal(err)
	}
	var gone []string
	for _, d := range plan {
		if !d.Keep {
			gone = append(gone, d.Ref.String())
			if d.Reason == "" {
				t.Errorf("%s goes without a reason", d.Ref)
			}
		}
	}
	if len(plan) != 3 || strings.Join(gone, " ") != "outputs/build:v1 outputs/build:v2" {
		t.Fatalf("dry run would delete %v of %d refs, want v1 and v2", gone, len(plan))
	}
	after, err := c.Events(e.ctx, 0, 0)
	if err != nil || len(after) != len(before) {
		t.Fatalf("the dry run appended %d events", len(after)-len(before))
	}
	if refs, err := c.Refs(e.ctx, "outputs"); err != nil || len(refs) != 3 {
		t.Fatalf("refs after the dry run = %d, %v", len(refs), err)
	}

	if _, err := c.ApplyRetention(e.ctx, "outputs", false); err != nil {
		t.Fatal(err)
	}
	refs, err := c.Refs(e.ctx, "outputs")
	if err != nil || len(refs) != 1 || refs[0].Tag != "v3" {
		t.Fatalf("refs after retention = %+v, %v", refs, err)
	}

	// Within the grace window nothing goes; past it, the two builds do.
	rep, err := c.GC(e.ctx, time.Hour)
	if err != nil || rep.Manifests != 0 || rep.Blobs != 0 {
		t.Fatalf("GC inside the grace window = %+v, %v", rep, err)
	}
	e.clock.set(start.Add(3 * time.Hour))
	rep, err = c.GC(e.ctx, time.Hour)
	if err != nil || rep.Manifests != 2 || rep.Blobs != 2 || rep.Bytes != int64(len("build one")+len("build two")) {
		t.Fatalf("GC past the grace window = %+v, %v", rep, err)
	}
	missing, err := c.FindMissing(e.ctx, digests)
	if err != nil || len(missing) != 2 || missing[0] != digests[0] || missing[1] != digests[1] {
		t.Errorf("find-missing after GC = %v, %v", missing, err)
	}
	if err := c.DeleteRetention(e.ctx, "outputs", "build:*"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteRetention(e.ctx, "outputs", "build:*"); core.KindOf(err) != core.KindNotFound {
		t.Errorf("deleting a deleted policy: %v, want not_found", err)
	}
}

// TestErrorKindsMatchLocal checks that the client reports the same Kind as
// the registry does in process for the same mistake.
func TestErrorKindsMatchLocal(t *testing.T) {
	t.Parallel()
	e := setup(t)
	absent := sha(t, []byte("absent"))
	ctx := context.Background()
	for _, tc := range []struct {
		name          string
		local, remote func() error
	}{
		{"RefNotFound",
			func() error {
				_, err := e.meta.Ref(ctx, eventlog.RefName{Namespace: "ns", Name: "n", Tag: "t"})
				return err
			},
			func() error { _, err := e.client.GetRef(ctx, "ns/n:t"); return err }},
		{"TagAbsentManifest",
			func() error { _, err := e.reg.Tag(ctx, "a", "ns/n:t", absent.String()); return err },
			func() error { _, err := e.client.SetRef(ctx, "ns/n:t", absent, nil); return err }},
		{"BadRef",
			func() error { _, err := eventlog.ParseRef("ns/../x:t"); return err },
			func() error { _, err := e.client.GetRef(ctx, "ns/../x:t"); return err }},
		{"SessionNotFound",
			func() error { return e.reg.Data.Cancel(ctx, "0000") },
			func() error { return e.client.Cancel(ctx, "0000") }},
		{"PolicyKeepsNothing",
			func() error { return e.meta.SetPolicy(ctx, "a", eventlog.Policy{Namespace: "ns", Selector: "*"}) },
			func() error {
				_, err := e.client.SetRetention(ctx, eventlog.Policy{Namespace: "ns", Selector: "*"})
				return err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local, remote := tc.local(), tc.remote()
			if local == nil || core.KindOf(local) != core.KindOf(remote) {
				t.Errorf("local %v (%s), remote %v (%s)", local, core.KindOf(local), remote, core.KindOf(remote))
			}
		})
	}
	t.Run("Unreachable", func(t *testing.T) {
		c := &httpapi.Client{BaseURL: "http://127.0.0.1:1"}
		if err := c.Ready(ctx); core.KindOf(err) != core.KindUnavailable {
			t.Errorf("unreachable server: %v, want unavailable", err)
		}
	})
}

// TestCorruptBlobFailsTheDownload checks that bytes that no longer hash to
// their digest never reach a caller as a good download, and that the
// server reports them as its own failure, not the client's.
func TestCorruptBlobFailsTheDownload(t *testing.T) {
	t.Parallel()
	e := setup(t)
	content := bytes.Repeat([]byte("precious "), 1000)
	d := e.upload(content)
	path := filepath.Join(e.dir, "blobs", "blobs", string(d.Algorithm()), d.Hex()[:2], d.Hex())
	bad := bytes.Clone(content)
	bad[len(bad)/2] ^= 0xff
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	rc, _, err := e.client.Open(e.ctx, d, 0, -1)
	if err == nil {
		var got []byte
		got, err = io.ReadAll(rc)
		rc.Close()
		if err == nil {
			t.Fatalf("corrupt blob downloaded without error (%d bytes)", len(got))
		}
	}
	if k := core.KindOf(err); k != core.KindInternal && k != core.KindUnavailable {
		t.Errorf("corrupt download: %v (%s), want internal or a cut connection", err, k)
	}
	if log := e.log.waitFor("level=ERROR", "is corrupt"); !strings.Contains(log, "is corrupt") {
		t.Errorf("the server did not log the corruption at ERROR:\n%s", log)
	}
}
