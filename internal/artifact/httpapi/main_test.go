package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"go.uber.org/goleak"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/fs"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/s3"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/s3/miniotest"
	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	elpostgres "github.com/deltaci/deltaci/internal/artifact/eventlog/postgres"
	elsqlite "github.com/deltaci/deltaci/internal/artifact/eventlog/sqlite"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/openapitest"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

var minio miniotest.Shared

const docPath = "../../../api/artifactstore.openapi.yaml"

func TestMain(m *testing.M) {
	// Body decoders are global in kin-openapi; register them before any
	// test runs. Manifest CBOR is opaque bytes to the contract.
	for _, ct := range []string{manifest.MediaTypeCBOR, "application/cbor"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
	goleak.VerifyTestMain(minio.StopAfter(m))
}

// engine is the pair of metadata database and blob store a test runs on.
type engine string

const (
	sqliteFS      engine = "sqlite+fs"
	postgresMinIO engine = "postgres+minio"
)

// clock is the store's clock: real time until a test sets it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// syncBuffer collects the server's log lines.
type syncBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	grew chan struct{} // closed by the next Write
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.grew != nil {
		close(b.grew)
		b.grew = nil
	}
	return b.buf.Write(p)
}

// waitFor returns the log once it holds every one of subs, or what it
// holds after a deadline. The server logs a request after the client may
// have its answer, so a test that reads the log right away can miss it.
func (b *syncBuffer) waitFor(subs ...string) string {
	deadline := time.After(20 * time.Second)
	for {
		b.mu.Lock()
		log := b.buf.String()
		missing := slices.ContainsFunc(subs, func(s string) bool { return !strings.Contains(log, s) })
		if !missing {
			b.mu.Unlock()
			return log
		}
		if b.grew == nil {
			b.grew = make(chan struct{})
		}
		grew := b.grew
		b.mu.Unlock()
		select {
		case <-grew:
		case <-deadline:
			return b.String()
		}
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a running server on a real registry, and clients whose every
// exchange is validated against the OpenAPI document.
type env struct {
	t      *testing.T
	ctx    context.Context
	reg    *registry.Registry
	meta   *eventlog.Store
	srv    *httptest.Server
	client *httpapi.Client
	http   *http.Client
	val    *openapitest.Validator
	clock  *clock
	log    *syncBuffer
	dir    string // the server's files: meta.db, blobs/, staging/
	// tamper runs SQL on the metadata database with the append-only
	// guards dropped (SQLite only).
	tamper func(ctx context.Context, sql string) error
	// tokens are the secrets of the server's API tokens by name: alice
	// and carol are admins on every namespace. Requests without an
	// Authorization header are sent with alice's, unless their context is
	// anonymous.
	tokens map[string]string
	// scrub runs the server's scrubs.
	scrub *registry.Scrubber
}

// limits are small in tests so that 413s cost nothing to provoke.
const (
	testMaxChunk    = 64 << 10
	testMaxJSON     = 8 << 10
	testMaxManifest = 32 << 10
)

type setupOptions struct {
	engine   engine
	coverage *coverage
	mounted  bool
}

type setupOption func(*setupOptions)

func on(e engine) setupOption { return func(o *setupOptions) { o.engine = e } }

func withCoverage(c *coverage) setupOption { return func(o *setupOptions) { o.coverage = c } }

// mounted serves the API as a deltaci server mounts it: without its own
// authentication or metrics.
func mounted() setupOption { return func(o *setupOptions) { o.mounted = true } }

func setup(t *testing.T, opts ...setupOption) *env {
	t.Helper()
	o := setupOptions{engine: sqliteFS}
	for _, f := range opts {
		f(&o)
	}
	ctx := context.Background()
	dir := t.TempDir()
	c := &clock{}
	e := &env{t: t, ctx: ctx, clock: c, log: &syncBuffer{}, dir: dir}
	var drv eventlog.Driver
	var blobs blobstore.Store
	switch o.engine {
	case sqliteFS:
		d, err := elsqlite.Open(ctx, filepath.Join(dir, "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		drv = d
		t.Cleanup(func() { d.Close() })
		e.tamper = func(ctx context.Context, sql string) error {
			for _, q := range []string{"DROP TRIGGER IF EXISTS store_events_no_update", "DROP TRIGGER IF EXISTS store_events_no_delete", sql} {
				if err := d.Exec(ctx, q); err != nil {
					return err
				}
			}
			return nil
		}
		fsStore, err := fs.Open(filepath.Join(dir, "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		blobs = fsStore
	case postgresMinIO:
		d, err := elpostgres.Open(ctx, storetest.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		drv = d
		t.Cleanup(func() { d.Close() })
		srv := minio.Server(t)
		prefix := make([]byte, 6)
		_, _ = rand.Read(prefix)
		s3Store, err := s3.Open(ctx, "s3://"+srv.Bucket+"/httpapi/"+hex.EncodeToString(prefix), s3.Options{
			Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s3Store.Close)
		blobs = s3Store
	}
	e.meta = eventlog.New(drv, eventlog.WithClock(c.now))
	data, err := dataplane.NewLocal(e.meta, blobs, filepath.Join(dir, "staging"))
	if err != nil {
		t.Fatal(err)
	}
	e.reg = &registry.Registry{Meta: e.meta, Data: data, Blobs: blobs, Alg: digest.SHA256}
	e.tokens = map[string]string{}
	for _, name := range []string{"alice", "carol"} {
		e.tokens[name] = e.newToken(name, "*:admin")
	}
	e.scrub = &registry.Scrubber{Registry: e.reg}
	t.Cleanup(e.scrub.Stop)
	api := httpapi.Options{
		Registry: e.reg, Log: slog.New(slog.NewTextHandler(e.log, nil)),
		MaxChunkBytes: testMaxChunk, MaxJSONBytes: testMaxJSON, MaxManifestBytes: testMaxManifest,
		Auth: &httpapi.TokenAuth{Meta: e.meta}, Metrics: httpapi.NewMetrics(e.meta), Scrubber: e.scrub,
	}
	if o.mounted {
		api.Auth, api.Metrics = nil, nil
	}
	e.srv = httptest.NewServer(httpapi.New(api))
	t.Cleanup(e.srv.Close)
	e.val = newValidator(t, bearerAs(e.srv.Client().Transport, e.tokens["alice"]), o.coverage)
	e.http = &http.Client{Transport: e.val}
	e.client = &httpapi.Client{BaseURL: e.srv.URL, HTTP: e.http, Token: e.tokens["alice"]}
	return e
}

// newToken makes an API token with the given scopes on the server's store
// and returns its secret.
func (e *env) newToken(name, scopes string) string {
	e.t.Helper()
	sc, err := eventlog.ParseScopes(scopes)
	if err != nil {
		e.t.Fatal(err)
	}
	_, secret, err := e.meta.CreateToken(e.ctx, "test", name, sc)
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// bearer is the Authorization header of a token.
func bearer(token string, kv ...string) http.Header {
	return hdr(append([]string{"Authorization", "Bearer " + token}, kv...)...)
}

type anonymousKey struct{}

// anonymous marks a request to be sent without any credential.
func anonymous(ctx context.Context) context.Context {
	return context.WithValue(ctx, anonymousKey{}, true)
}

// bearerAs sends requests that carry no Authorization header with token's,
// unless their context is anonymous.
func bearerAs(next http.RoundTripper, token string) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		if r.Header.Get("Authorization") == "" && r.Context().Value(anonymousKey{}) == nil {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+token)
		}
		return next.RoundTrip(r)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// contract is the OpenAPI document and its router, loaded once.
var contract = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromFile(docPath)
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(context.Background())
})

// coverage and unchecked are the shared contract-test pieces.
type coverage = openapitest.Coverage

var unchecked = openapitest.Unchecked

// newValidator checks the traffic to next against the artifact store's
// document.
func newValidator(t testing.TB, next http.RoundTripper, cov *coverage) *openapitest.Validator {
	t.Helper()
	doc, err := contract()
	if err != nil {
		t.Fatalf("load %s: %v", docPath, err)
	}
	v := openapitest.NewValidator(t, doc, next, cov)
	v.UncheckedMayMiss = true
	v.Answer = func(t testing.TB, what, _ string, req *http.Request, resp *http.Response, rb []byte) {
		if resp.StatusCode >= 400 && req.Method != http.MethodHead {
			var eb httpapi.ErrorBody
			if resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(rb, &eb) != nil || eb.Error.Code == "" {
				t.Errorf("contract: %s answered %d without a JSON error body: %q", what, resp.StatusCode, rb)
			}
		}
	}
	return v
}

// response is what send returns: status, headers and the whole body.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorBody decodes an error response.
func (r response) errorBody(t testing.TB) httpapi.ErrorDetail {
	t.Helper()
	var eb httpapi.ErrorBody
	if err := json.Unmarshal(r.body, &eb); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return eb.Error
}

// send makes one raw request through the validating client.
func (e *env) send(ctx context.Context, method, path string, header http.Header, body []byte) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// expect sends a request and fails the test unless the status is want.
func (e *env) expect(ctx context.Context, want int, method, path string, header http.Header, body []byte) response {
	e.t.Helper()
	r := e.send(ctx, method, path, header, body)
	if r.status != want {
		e.t.Errorf("%s %s = %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

// upload stores content through the client and returns its digest.
func (e *env) upload(content []byte) digest.Digest {
	e.t.Helper()
	d, err := digest.FromBytes(digest.SHA256, content)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.client.Upload(e.ctx, "", "", d, bytes.NewReader(content), int64(len(content))); err != nil {
		e.t.Fatalf("upload %s: %v", d, err)
	}
	return d
}

// fileManifest is a manifest of regular files with the given contents.
func fileManifest(t testing.TB, files map[string][]byte) manifest.Manifest {
	t.Helper()
	var m manifest.Manifest
	for p, content := range files {
		d, err := digest.FromBytes(digest.SHA256, content)
		if err != nil {
			t.Fatal(err)
		}
		m.Entries = append(m.Entries, manifest.Entry{Path: p, Digest: d, Size: int64(len(content)), Mode: manifest.ModeRegular | 0o644})
	}
	manifest.SortEntries(m.Entries)
	return m
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(t testing.TB, b []byte) digest.Digest {
	t.Helper()
	d, err := digest.FromBytes(digest.SHA256, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// readDoc is the canonical OpenAPI file.
func readDoc(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
