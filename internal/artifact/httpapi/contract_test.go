package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
)

// hdr builds a header from key, value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

var jsonCT = hdr("Content-Type", "application/json")

func TestOpenAPIEmbeddedCopy(t *testing.T) {
	t.Parallel()
	embedded, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(embedded, readDoc(t)) {
		t.Fatalf("internal/artifact/httpapi/openapi.yaml differs from api/artifactstore.openapi.yaml; copy the canonical file over it")
	}
}

// TestContract drives every operation of the OpenAPI document, with each
// status the document lists, through a server on SQLite and fs; the
// validating transport checks every request and response against the
// document, and the end of the test checks that nothing listed went
// unexercised.
func TestContract(t *testing.T) {
	t.Parallel()
	cov := &coverage{}
	e := setup(t, withCoverage(cov))
	ctx, bad := e.ctx, unchecked(e.ctx)

	t.Run("meta", func(t *testing.T) {
		e.expect(ctx, http.StatusOK, "GET", "/healthz", nil, nil)
		e.expect(ctx, http.StatusOK, "GET", "/readyz", nil, nil)
		r := e.expect(ctx, http.StatusOK, "GET", "/api/v1/openapi.yaml", nil, nil)
		if !bytes.Equal(r.body, readDoc(t)) {
			t.Error("GET /api/v1/openapi.yaml is not the canonical document")
		}
		// A server whose database is gone is alive but not ready.
		down := setup(t, withCoverage(cov))
		down.meta.Close()
		down.expect(ctx, http.StatusServiceUnavailable, "GET", "/readyz", nil, nil)
		down.expect(ctx, http.StatusOK, "GET", "/healthz", nil, nil)
	})

	hello, world := []byte("hello, world"), []byte("other bytes")
	helloD, worldD := sha(t, hello), sha(t, world)
	absent := sha(t, []byte("never stored"))
	doomedContent := []byte("a blob GC is deleting")
	doomed := sha(t, doomedContent)

	t.Run("blobs", func(t *testing.T) {
		oct := hdr("Content-Type", "application/octet-stream")
		e.expect(ctx, http.StatusCreated, "POST", "/api/v1/blobs/uploads?digest="+helloD.String(), oct, hello)
		e.expect(bad, http.StatusBadRequest, "POST", "/api/v1/blobs/uploads?digest=sha256:xyz", oct, hello)
		r := e.expect(ctx, http.StatusBadRequest, "POST", "/api/v1/blobs/uploads?digest="+worldD.String(), oct, hello)
		if code := r.errorBody(t).Code; code != httpapi.CodeDigestMismatch {
			t.Errorf("mismatched monolithic upload: code %q, want digest_mismatch", code)
		}
		e.expect(ctx, http.StatusNotFound, "HEAD", "/api/v1/blobs/"+worldD.String(), nil, nil)
		e.expect(ctx, http.StatusRequestEntityTooLarge, "POST", "/api/v1/blobs/uploads?digest="+worldD.String(), oct,
			make([]byte, testMaxChunk+1))
		e.expect(ctx, http.StatusCreated, "POST", "/api/v1/blobs/uploads?digest="+doomed.String(), oct, doomedContent)
		if ok, err := e.meta.MarkDeleting(ctx, "gc", doomed, time.Now().Add(time.Hour)); err != nil || !ok {
			t.Fatalf("mark %s deleting: %v %v", doomed, ok, err)
		}
		e.expect(ctx, http.StatusConflict, "POST", "/api/v1/blobs/uploads?digest="+doomed.String(), oct, doomedContent)

		r = e.expect(ctx, http.StatusAccepted, "POST", "/api/v1/blobs/uploads", jsonCT, []byte(`{"algorithm":"sha256"}`))
		if loc := r.header.Get("Location"); !strings.HasPrefix(loc, "/api/v1/blobs/uploads/") {
			t.Errorf("session Location = %q", loc)
		}
		e.expect(bad, http.StatusBadRequest, "POST", "/api/v1/blobs/uploads", jsonCT, []byte(`{"algorithm":"md5"}`))
		e.expect(bad, http.StatusUnsupportedMediaType, "POST", "/api/v1/blobs/uploads", hdr("Content-Type", "text/plain"), []byte("x"))

		e.expect(ctx, http.StatusOK, "HEAD", "/api/v1/blobs/"+helloD.String(), nil, nil)
		e.expect(bad, http.StatusBadRequest, "HEAD", "/api/v1/blobs/sha256:nothex", nil, nil)
		e.expect(ctx, http.StatusNotFound, "HEAD", "/api/v1/blobs/"+absent.String(), nil, nil)
		r = e.expect(ctx, http.StatusOK, "GET", "/api/v1/blobs/"+helloD.String(), nil, nil)
		if !bytes.Equal(r.body, hello) || r.header.Get("ETag") != `"`+helloD.String()+`"` {
			t.Errorf("GET blob = %q, ETag %q", r.body, r.header.Get("ETag"))
		}
		r = e.expect(ctx, http.StatusPartialContent, "GET", "/api/v1/blobs/"+helloD.String(), hdr("Range", "bytes=2-5"), nil)
		if string(r.body) != "llo," || r.header.Get("Content-Range") != "bytes 2-5/12" {
			t.Errorf("ranged GET = %q, Content-Range %q", r.body, r.header.Get("Content-Range"))
		}
		r = e.expect(ctx, http.StatusRequestedRangeNotSatisfiable, "GET", "/api/v1/blobs/"+helloD.String(), hdr("Range", "bytes=12-"), nil)
		if cr := r.header.Get("Content-Range"); cr != "bytes */12" {
			t.Errorf("416 Content-Range = %q, want bytes */12", cr)
		}
		e.expect(ctx, http.StatusBadRequest, "GET", "/api/v1/blobs/"+helloD.String(), hdr("Range", "bytes=x-y"), nil)
		e.expect(ctx, http.StatusNotFound, "GET", "/api/v1/blobs/"+absent.String(), nil, nil)
		rotten := []byte("bytes a failing disk will change")
		rottenD := sha(t, rotten)
		e.expect(ctx, http.StatusCreated, "POST", "/api/v1/blobs/uploads?digest="+rottenD.String(), oct, rotten)
		damageStored(t, e, rottenD)
		e.expect(ctx, http.StatusInternalServerError, "GET", "/api/v1/blobs/"+rottenD.String(), nil, nil)
	})

	// startSession opens a session and returns its path.
	startSession := func(t *testing.T) string {
		t.Helper()
		r := e.expect(ctx, http.StatusAccepted, "POST", "/api/v1/blobs/uploads", nil, nil)
		return r.header.Get("Location")
	}

	t.Run("uploads", func(t *testing.T) {
		oct := hdr("Content-Type", "application/octet-stream")
		s := startSession(t)
		r := e.expect(ctx, http.StatusAccepted, "PATCH", s, hdr("Content-Type", "application/octet-stream", "Content-Range", "bytes 0-4"), hello[:5])
		if r.header.Get("Range") != "0-4" {
			t.Errorf("PATCH Range = %q, want 0-4", r.header.Get("Range"))
		}
		r = e.expect(ctx, http.StatusRequestedRangeNotSatisfiable, "PATCH", s+"?offset=0", oct, hello[:5])
		if d := r.errorBody(t); d.Code != httpapi.CodeOffsetMismatch || d.Details["offset"] != float64(5) || r.header.Get("Range") != "0-4" {
			t.Errorf("wrong offset: %+v, Range %q", d, r.header.Get("Range"))
		}
		e.expect(ctx, http.StatusBadRequest, "PATCH", s, oct, hello[5:])
		e.expect(ctx, http.StatusRequestEntityTooLarge, "PATCH", s+"?offset=5", oct, make([]byte, testMaxChunk+1))
		e.expect(ctx, http.StatusNotFound, "PATCH", "/api/v1/blobs/uploads/no-such-session?offset=0", oct, hello)
		e.expect(ctx, http.StatusRequestedRangeNotSatisfiable, "PUT", s+"?offset=3&digest="+helloD.String(), oct, hello[3:])
		e.expect(ctx, http.StatusRequestEntityTooLarge, "PUT", s+"?offset=5&digest="+helloD.String(), oct, make([]byte, testMaxChunk+1))
		e.expect(bad, http.StatusBadRequest, "PUT", s+"?digest=md5:abc", nil, nil)
		r = e.expect(ctx, http.StatusCreated, "PUT", s+"?digest="+helloD.String(), hdr("Content-Type", "application/octet-stream", "Content-Range", "bytes 5-11/12"), hello[5:])
		if r.header.Get("Location") != "/api/v1/blobs/"+helloD.String() {
			t.Errorf("finish Location = %q", r.header.Get("Location"))
		}
		e.expect(ctx, http.StatusNotFound, "PUT", s+"?digest="+helloD.String(), nil, nil)

		s = startSession(t)
		e.expect(ctx, http.StatusAccepted, "PATCH", s+"?offset=0", oct, hello)
		r = e.expect(ctx, http.StatusBadRequest, "PUT", s+"?digest="+worldD.String(), nil, nil)
		if code := r.errorBody(t).Code; code != httpapi.CodeDigestMismatch {
			t.Errorf("finish with the wrong digest: code %q", code)
		}
		e.expect(ctx, http.StatusNotFound, "HEAD", "/api/v1/blobs/"+worldD.String(), nil, nil)

		s = startSession(t)
		e.expect(ctx, http.StatusAccepted, "PATCH", s+"?offset=0", oct, doomedContent)
		e.expect(ctx, http.StatusConflict, "PUT", s+"?digest="+doomed.String(), nil, nil)
		e.expect(ctx, http.StatusNoContent, "DELETE", s, nil, nil)
		e.expect(ctx, http.StatusNotFound, "DELETE", s, nil, nil)
		e.expect(bad, http.StatusBadRequest, "DELETE", "/api/v1/blobs/uploads/bad%20id", nil, nil)
	})

	t.Run("find-missing", func(t *testing.T) {
		r := e.expect(ctx, http.StatusOK, "POST", "/api/v1/blobs/find-missing", jsonCT,
			mustJSON(t, httpapi.FindMissingRequest{Digests: []string{helloD.String(), absent.String()}}))
		if !bytes.Contains(r.body, []byte(absent.String())) || bytes.Contains(r.body, []byte(helloD.String())) {
			t.Errorf("find-missing = %s", r.body)
		}
		e.expect(bad, http.StatusBadRequest, "POST", "/api/v1/blobs/find-missing", jsonCT, []byte(`{"digests":["sha256:0"]}`))
		e.expect(bad, http.StatusRequestEntityTooLarge, "POST", "/api/v1/blobs/find-missing", jsonCT, bytes.Repeat([]byte(" "), testMaxJSON+1))
		e.expect(bad, http.StatusUnsupportedMediaType, "POST", "/api/v1/blobs/find-missing", hdr("Content-Type", "text/plain"), []byte(`{}`))
	})

	m := fileManifest(t, map[string][]byte{"hello.txt": hello})
	body, err := manifest.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	md := sha(t, body)

	t.Run("manifests", func(t *testing.T) {
		cborCT := hdr("Content-Type", manifest.MediaTypeCBOR)
		r := e.expect(ctx, http.StatusCreated, "PUT", "/api/v1/manifests/"+md.String(), cborCT, body)
		if r.header.Get("Location") != "/api/v1/manifests/"+md.String() {
			t.Errorf("manifest Location = %q", r.header.Get("Location"))
		}
		view, err := manifest.JSON(m)
		if err != nil {
			t.Fatal(err)
		}
		e.expect(ctx, http.StatusCreated, "PUT", "/api/v1/manifests/"+md.String(), hdr("Content-Type", manifest.MediaTypeJSON), view)
		e.expect(ctx, http.StatusCreated, "PUT", "/api/v1/manifests/"+md.String(), jsonCT, view)
		e.expect(ctx, http.StatusCreated, "PUT", "/api/v1/manifests/"+md.String(), hdr("Content-Type", "application/cbor"), body)

		r = e.expect(ctx, http.StatusBadRequest, "PUT", "/api/v1/manifests/"+absent.String(), cborCT, body)
		if code := r.errorBody(t).Code; code != httpapi.CodeDigestMismatch {
			t.Errorf("manifest under the wrong digest: code %q", code)
		}
		e.expect(bad, http.StatusBadRequest, "PUT", "/api/v1/manifests/sha256:"+strings.Repeat("A", 64), cborCT, body)
		b3, err := digest.FromBytes(digest.BLAKE3, body)
		if err != nil {
			t.Fatal(err)
		}
		e.expect(ctx, http.StatusBadRequest, "PUT", "/api/v1/manifests/"+b3.String(), cborCT, body)

		missing := fileManifest(t, map[string][]byte{"a": []byte("missing a"), "b": []byte("missing b"), "hello.txt": hello})
		mb, err := manifest.Encode(missing)
		if err != nil {
			t.Fatal(err)
		}
		r = e.expect(ctx, http.StatusNotFound, "PUT", "/api/v1/manifests/"+sha(t, mb).String(), cborCT, mb)
		if got := r.errorBody(t).Details["missing"]; len(got.([]any)) != 2 {
			t.Errorf("missing blobs = %v, want the two unstored ones", got)
		}
		gcd := fileManifest(t, map[string][]byte{"doomed": doomedContent})
		gb, err := manifest.Encode(gcd)
		if err != nil {
			t.Fatal(err)
		}
		e.expect(ctx, http.StatusConflict, "PUT", "/api/v1/manifests/"+sha(t, gb).String(), cborCT, gb)
		big := make([]byte, testMaxManifest+1)
		e.expect(ctx, http.StatusRequestEntityTooLarge, "PUT", "/api/v1/manifests/"+sha(t, big).String(), cborCT, big)
		e.expect(bad, http.StatusUnsupportedMediaType, "PUT", "/api/v1/manifests/"+md.String(), hdr("Content-Type", "text/plain"), body)

		r = e.expect(ctx, http.StatusOK, "GET", "/api/v1/manifests/"+md.String(), nil, nil)
		if !bytes.Equal(r.body, body) || r.header.Get("Content-Type") != manifest.MediaTypeCBOR {
			t.Errorf("GET manifest: %s %q", r.header.Get("Content-Type"), r.body)
		}
		for _, accept := range []string{manifest.MediaTypeJSON, "application/json", "application/cbor;q=0.5, application/json"} {
			r = e.expect(ctx, http.StatusOK, "GET", "/api/v1/manifests/"+md.String(), hdr("Accept", accept), nil)
			if !bytes.Equal(r.body, view) {
				t.Errorf("GET manifest, Accept %q: %s", accept, r.body)
			}
		}
		e.expect(bad, http.StatusBadRequest, "GET", "/api/v1/manifests/sha256:", nil, nil)
		e.expect(ctx, http.StatusNotFound, "GET", "/api/v1/manifests/"+absent.String(), nil, nil)
	})

	ref := "/api/v1/refs/outputs/build%2Fsub:v1"
	t.Run("refs", func(t *testing.T) {
		actor := bearer(e.tokens["carol"], "Content-Type", "application/json")
		r := e.expect(ctx, http.StatusOK, "PUT", ref, actor, mustJSON(t, httpapi.RefUpdate{Manifest: md.String()}))
		if !bytes.Contains(r.body, []byte(`"ref":"outputs/build/sub:v1"`)) {
			t.Errorf("PUT ref = %s", r.body)
		}
		pin := true
		r = e.expect(ctx, http.StatusOK, "PUT", ref, actor, mustJSON(t, httpapi.RefUpdate{Manifest: md.String(), Pinned: &pin}))
		if !bytes.Contains(r.body, []byte(`"pinned":true`)) {
			t.Errorf("pinned ref = %s", r.body)
		}
		e.expect(ctx, http.StatusNotFound, "PUT", "/api/v1/refs/outputs/other:v1", jsonCT, mustJSON(t, httpapi.RefUpdate{Manifest: absent.String()}))
		e.expect(ctx, http.StatusBadRequest, "PUT", "/api/v1/refs/outputs/%2E%2E%2Fetc:v1", jsonCT, mustJSON(t, httpapi.RefUpdate{Manifest: md.String()}))
		e.expect(bad, http.StatusRequestEntityTooLarge, "PUT", ref, jsonCT, bytes.Repeat([]byte(" "), testMaxJSON+1))
		e.expect(bad, http.StatusUnsupportedMediaType, "PUT", ref, hdr("Content-Type", "text/plain"), []byte(`{}`))

		r = e.expect(ctx, http.StatusOK, "GET", ref, nil, nil)
		if !bytes.Contains(r.body, []byte(md.String())) {
			t.Errorf("GET ref = %s", r.body)
		}
		e.expect(ctx, http.StatusNotFound, "GET", "/api/v1/refs/outputs/nothing:here", nil, nil)
		e.expect(ctx, http.StatusBadRequest, "GET", "/api/v1/refs/outputs/bad%20name:v1", nil, nil)
		e.expect(ctx, http.StatusOK, "GET", "/api/v1/refs", nil, nil)
		r = e.expect(ctx, http.StatusOK, "GET", "/api/v1/refs?namespace=outputs", nil, nil)
		if !bytes.Contains(r.body, []byte("build/sub")) {
			t.Errorf("list refs = %s", r.body)
		}
		e.expect(ctx, http.StatusOK, "PUT", "/api/v1/refs/outputs/gone:v1", jsonCT, mustJSON(t, httpapi.RefUpdate{Manifest: md.String()}))
		e.expect(ctx, http.StatusNoContent, "DELETE", "/api/v1/refs/outputs/gone:v1", nil, nil)
		e.expect(ctx, http.StatusNotFound, "DELETE", "/api/v1/refs/outputs/gone:v1", nil, nil)
		e.expect(ctx, http.StatusBadRequest, "DELETE", "/api/v1/refs/outputs/-x:v1", nil, nil)
	})

	t.Run("log", func(t *testing.T) {
		r := e.expect(ctx, http.StatusOK, "GET", "/api/v1/events?after=0&limit=3", nil, nil)
		if n := bytes.Count(r.body, []byte(`"seq":`)); n != 3 {
			t.Errorf("events page has %d events, want 3: %s", n, r.body)
		}
		e.expect(bad, http.StatusBadRequest, "GET", "/api/v1/events?limit=0", nil, nil)
		since := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
		r = e.expect(ctx, http.StatusOK, "GET", "/api/v1/audit?actor=token:carol&since="+since, nil, nil)
		if !bytes.Contains(r.body, []byte(`"kind":"ref.pinned"`)) || bytes.Contains(r.body, []byte(`"actor":"token:alice"`)) {
			t.Errorf("audit for carol = %s", r.body)
		}
		e.expect(bad, http.StatusBadRequest, "GET", "/api/v1/audit?since=yesterday", nil, nil)
	})

	t.Run("retention", func(t *testing.T) {
		r := e.expect(ctx, http.StatusOK, "PUT", "/api/v1/retention/outputs", jsonCT,
			mustJSON(t, httpapi.PolicyUpdate{Selector: "**", KeepLast: 1, KeepWithin: "72h"}))
		if !bytes.Contains(r.body, []byte(`"keep_within":"72h0m0s"`)) {
			t.Errorf("PUT retention = %s", r.body)
		}
		e.expect(ctx, http.StatusBadRequest, "PUT", "/api/v1/retention/outputs", jsonCT, mustJSON(t, httpapi.PolicyUpdate{Selector: "**"}))
		e.expect(bad, http.StatusRequestEntityTooLarge, "PUT", "/api/v1/retention/outputs", jsonCT, bytes.Repeat([]byte(" "), testMaxJSON+1))
		e.expect(bad, http.StatusUnsupportedMediaType, "PUT", "/api/v1/retention/outputs", hdr("Content-Type", "text/csv"), []byte(`x`))
		e.expect(ctx, http.StatusOK, "GET", "/api/v1/retention", nil, nil)
		r = e.expect(ctx, http.StatusOK, "POST", "/api/v1/retention/apply?namespace=outputs&dry_run=true", nil, nil)
		if !bytes.Contains(r.body, []byte(`"dry_run":true`)) {
			t.Errorf("dry run = %s", r.body)
		}
		e.expect(bad, http.StatusBadRequest, "POST", "/api/v1/retention/apply?dry_run=maybe", nil, nil)
		e.expect(ctx, http.StatusNoContent, "DELETE", "/api/v1/retention/outputs?selector=**", nil, nil)
		e.expect(ctx, http.StatusNotFound, "DELETE", "/api/v1/retention/outputs?selector=**", nil, nil)
		e.expect(bad, http.StatusBadRequest, "DELETE", "/api/v1/retention/outputs", nil, nil)
	})

	t.Run("gc", func(t *testing.T) {
		e.expect(ctx, http.StatusOK, "POST", "/api/v1/gc", jsonCT, []byte(`{"grace":"1h"}`))
		e.expect(ctx, http.StatusOK, "POST", "/api/v1/gc", nil, nil)
		e.expect(ctx, http.StatusOK, "POST", "/api/v1/gc", jsonCT, []byte(`{"grace":"0s"}`))
		e.expect(bad, http.StatusBadRequest, "POST", "/api/v1/gc", jsonCT, []byte(`{"grace":"-1h"}`))
		e.expect(bad, http.StatusUnsupportedMediaType, "POST", "/api/v1/gc", hdr("Content-Type", "text/plain"), []byte(`{}`))
	})

	t.Run("leases", func(t *testing.T) { contractLeases(t, e) })

	t.Run("checkpoints", func(t *testing.T) { contractCheckpoints(t, e) })

	t.Run("scrub", func(t *testing.T) { contractScrub(t, e) })

	t.Run("replay", func(t *testing.T) {
		r := e.expect(ctx, http.StatusOK, "GET", "/api/v1/replay/verify", nil, nil)
		if !bytes.Contains(r.body, []byte(`"match":true`)) {
			t.Errorf("verify = %s", r.body)
		}
		e.expect(ctx, http.StatusOK, "POST", "/api/v1/replay/verify", nil, nil)
		if err := e.tamper(ctx, "UPDATE store_events SET actor = 'mallory' WHERE seq = 1"); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"GET", "POST"} {
			r := e.expect(ctx, http.StatusConflict, m, "/api/v1/replay/verify", nil, nil)
			if msg := r.errorBody(t).Message; !strings.Contains(msg, "event 1") {
				t.Errorf("tampered log: %q does not name event 1", msg)
			}
		}
	})

	t.Run("auth", func(t *testing.T) { contractAuth(t, e, cov) })

	// Every operation with every status the document lists.
	doc, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				if code == "default" {
					continue
				}
				status, err := strconv.Atoi(code)
				if err != nil {
					t.Fatalf("%s %s: response %q", method, path, code)
				}
				if !cov.Has(op.OperationID, status) {
					t.Errorf("never exercised: %s %s (%s) → %d", method, path, op.OperationID, status)
				}
			}
		}
	}
	if t.Failed() {
		t.Logf("exercised operations: %v", cov.Operations())
	}
}

// TestContractPaths checks that routes.go and the document list the same
// operations: every documented operation answers something other than
// 404/405 for no route, and nothing undocumented is served.
func TestContractPaths(t *testing.T) {
	t.Parallel()
	e := setup(t)
	doc, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		prefix := "/api/v1"
		if len(item.Servers) > 0 {
			prefix = strings.TrimSuffix(item.Servers[0].URL, "/")
		}
		concrete := strings.NewReplacer("{digest}", "sha256:"+strings.Repeat("0", 64), "{id}", "x", "{namespace}", "ns", "{ref}", "n:t").Replace(path)
		for method := range item.Operations() {
			r := e.send(unchecked(context.Background()), method, prefix+concrete, nil, nil)
			unrouted := r.status == http.StatusMethodNotAllowed ||
				r.status == http.StatusNotFound && method != http.MethodHead && strings.Contains(r.errorBody(t).Message, "no route")
			if unrouted {
				t.Errorf("%s %s is documented but not routed (%d %s)", method, prefix+concrete, r.status, r.body)
			}
		}
	}
}
