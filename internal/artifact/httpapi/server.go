package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/jsonhttp"
)

// Default body limits; see Options.
const (
	DefaultMaxJSONBytes     = 1 << 20  // a JSON request body
	DefaultMaxManifestBytes = 16 << 20 // a manifest, CBOR or JSON
	DefaultMaxChunkBytes    = 1 << 30  // one blob body, streamed
)

// Options wires the API to a registry.
type Options struct {
	// Registry is required: manifests, refs, retention and GC go through it.
	Registry *registry.Registry
	// Data and Meta default to Registry.Data and Registry.Meta.
	Data dataplane.DataPlane
	Meta *eventlog.Store
	// Log receives one line per failed request; nil discards.
	Log *slog.Logger
	// MaxJSONBytes bounds JSON request bodies (DefaultMaxJSONBytes when 0).
	MaxJSONBytes int64
	// MaxManifestBytes bounds a manifest body, CBOR or JSON
	// (DefaultMaxManifestBytes when 0).
	MaxManifestBytes int64
	// MaxChunkBytes bounds one blob body: a monolithic upload or one chunk
	// of a resumable upload (DefaultMaxChunkBytes when 0). Bodies are
	// streamed, so the limit costs no memory.
	MaxChunkBytes int64
	// Auth authenticates every request but /healthz, /readyz, /metrics and
	// the OpenAPI document, and the route then checks the principal's
	// scopes (see routes.go). Nil serves every request as the principal a
	// mounting server named with WithActor, or as Anonymous: for a server
	// that authenticates requests itself before it hands them on.
	Auth Authenticator
	// Metrics, when set, counts requests and is served at /metrics.
	Metrics *Metrics
	// Scrubber runs the scrubs POST /scrub asks for, and GET /scrub
	// reports them; without one, both answer 404. The caller starts and
	// stops it.
	Scrubber *registry.Scrubber
}

// server holds the wired dependencies of the handlers.
type server struct {
	reg     *registry.Registry
	data    dataplane.DataPlane
	meta    *eventlog.Store
	log     *slog.Logger
	mux     *http.ServeMux
	auth    Authenticator
	metrics *Metrics
	scrub   *registry.Scrubber

	maxJSON, maxManifest, maxChunk int64
}

// New returns the API handler. It panics when opts.Registry, or the data
// plane and metadata store it falls back to, are missing: that is a wiring
// bug, not a runtime condition.
func New(opts Options) http.Handler {
	if opts.Registry == nil {
		panic("httpapi.New: Options.Registry is required")
	}
	s := &server{
		reg: opts.Registry, data: opts.Data, meta: opts.Meta, log: opts.Log, auth: opts.Auth, metrics: opts.Metrics, scrub: opts.Scrubber,
		maxJSON: opts.MaxJSONBytes, maxManifest: opts.MaxManifestBytes, maxChunk: opts.MaxChunkBytes,
	}
	if s.data == nil {
		s.data = opts.Registry.Data
	}
	if s.meta == nil {
		s.meta = opts.Registry.Meta
	}
	if s.data == nil || s.meta == nil {
		panic("httpapi.New: no data plane or metadata store (set Options.Data and Options.Meta or the Registry's)")
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.maxJSON = orDefault(s.maxJSON, DefaultMaxJSONBytes)
	s.maxManifest = orDefault(s.maxManifest, DefaultMaxManifestBytes)
	s.maxChunk = orDefault(s.maxChunk, DefaultMaxChunkBytes)
	s.mux = http.NewServeMux()
	s.routes()
	return s
}

func orDefault(v, def int64) int64 {
	if v <= 0 {
		return def
	}
	return v
}

// ServeHTTP answers unrouted requests itself so that 404 and 405 carry the
// same JSON error body as every other failure, turns a handler panic into
// a 500 through the error mapper, and counts every request in Metrics.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tw := &trackingWriter{ResponseWriter: w}
	_, pattern := s.mux.Handler(r)
	if s.metrics != nil {
		in := &countingBody{ReadCloser: r.Body}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = in
		}
		start := time.Now()
		// Deferred first, so it runs last: after a panic is mapped, and
		// also when the connection is cut mid-body.
		defer func() { s.metrics.observe(pattern, tw, in.n, time.Since(start)) }()
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.writeError(tw, r, core.E(core.KindInternal, "httpapi", "handler panic: %v", v))
		}
	}()
	if pattern == "" {
		s.writeError(tw, r, s.unrouted(r))
		return
	}
	s.mux.ServeHTTP(tw, r)
}

// unrouted explains why no route matched: the path exists for other
// methods (405, with Allow), or not at all (404).
func (s *server) unrouted(r *http.Request) error {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		return &methodError{method: r.Method, allow: allow}
	}
	return core.E(core.KindNotFound, "httpapi", "no route for %s %.200s", r.Method, r.URL.Path)
}

// trackingWriter remembers whether the status line went out, so that an
// error after a streamed body started is logged rather than written; and
// the status and body bytes, for the metrics.
type trackingWriter struct {
	http.ResponseWriter
	wrote   bool
	aborted bool // the connection was cut mid-body
	status  int
	n       int64
}

func (t *trackingWriter) WriteHeader(code int) {
	if !t.wrote {
		t.status = code
	}
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(p []byte) (int, error) {
	if !t.wrote {
		t.status = http.StatusOK
	}
	t.wrote = true
	n, err := t.ResponseWriter.Write(p)
	t.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// handler is the shape of every route: it returns an error instead of
// writing one, so that writeError stays the only place errors are mapped.
type handler func(w http.ResponseWriter, r *http.Request) error

// handle admits a request as need says (see admit), then runs h.
func (s *server) handle(need access, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		admitted, err := s.admit(r, need)
		if err == nil {
			r = admitted
			err = h(w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	}
}

// countingBody counts the request body bytes a handler reads.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// decodeJSON reads one JSON request body of at most limit bytes into v
// (jsonhttp.Decode).
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, optional bool, v any) error {
	return jsonhttp.Decode(w, r, limit, optional, v)
}

// writeJSON writes v with the given status; a client gone is nobody's
// business here.
func writeJSON(w http.ResponseWriter, status int, v any) { _ = jsonhttp.Write(w, status, v) }
