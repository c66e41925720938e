package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/jsonhttp"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// forbidden is an authenticated caller asking for what its token does not
// allow (a job token for another attempt's store writes, say).
type forbidden struct{ msg string }

func (f *forbidden) Error() string { return f.msg }

// versionError is a runner speaking another protocol version.
type versionError struct{ got int }

func (v *versionError) Error() string {
	return "runner speaks protocol version " + strconv.Itoa(v.got) + ", this server speaks " +
		strconv.Itoa(protocol.Version) + ": install the same deltaci version on both"
}

// writeError maps err to its status and the error body. It is the only
// place errors become responses.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		tooBig  *http.MaxBytesError
		offset  *store.LogOffsetError
		forbid  *forbidden
		version *versionError
		media   *jsonhttp.MediaTypeError
		limited *rateLimited
		method  *methodNotAllowed
		config  *configError
	)
	status, code := http.StatusInternalServerError, string(core.KindInternal)
	msg := err.Error()
	var details map[string]any
	switch {
	case errors.As(err, &tooBig):
		status, code = http.StatusRequestEntityTooLarge, protocol.CodeTooLarge
		msg = "the request body is larger than the limit of " + strconv.FormatInt(tooBig.Limit, 10) + " bytes"
		details = map[string]any{"limit": tooBig.Limit}
	case errors.As(err, &offset):
		status, code = http.StatusRequestedRangeNotSatisfiable, protocol.CodeLogOffset
		details = map[string]any{"length": offset.Length}
	case errors.Is(err, store.ErrLogCapExceeded):
		status, code = http.StatusRequestEntityTooLarge, protocol.CodeLogCapExceeded
	case errors.As(err, &forbid):
		status, code = http.StatusForbidden, protocol.CodeForbidden
	case errors.As(err, &limited):
		status, code = http.StatusTooManyRequests, protocol.CodeRateLimited
		w.Header().Set("Retry-After", limited.retryAfterHeader())
	case errors.As(err, &version):
		status, code = http.StatusBadRequest, protocol.CodeProtocolVersion
		details = map[string]any{"server_version": protocol.Version, "runner_version": version.got}
	case errors.As(err, &method):
		status, code = http.StatusMethodNotAllowed, protocol.CodeMethodNotAllowed
	case errors.As(err, &media):
		status, code = http.StatusUnsupportedMediaType, protocol.CodeUnsupportedMedia
	case errors.As(err, &config):
		// The run was recorded as errored: the answer names it.
		status, code = http.StatusBadRequest, string(core.KindInvalid)
		details = map[string]any{"run_id": config.runID}
	default:
		k := core.KindOf(err)
		if st, ok := jsonhttp.Status(k); ok {
			status, code = st, string(k)
		}
	}
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
		if status == http.StatusInternalServerError {
			msg = "internal error; the server log has the details"
		}
	} else {
		s.log.DebugContext(r.Context(), "request refused", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status), slog.Any("err", err))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="deltaci"`)
	}
	writeJSON(w, status, protocol.ErrorBody{Error: protocol.ErrorDetail{Code: code, Message: msg, Details: details}})
}

// handler is a route that returns its failure instead of writing it.
type handler func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// decodeJSON reads one JSON request body of at most DefaultMaxJSONBytes
// into v (jsonhttp.Decode).
func decodeJSON(w http.ResponseWriter, r *http.Request, optional bool, v any) error {
	return jsonhttp.Decode(w, r, DefaultMaxJSONBytes, optional, v)
}

// writeJSON writes v with the given status; a client gone is nobody's
// business here.
func writeJSON(w http.ResponseWriter, status int, v any) { _ = jsonhttp.Write(w, status, v) }

// encodeTo writes v with the given status and reports whether it was sent.
func encodeTo(w http.ResponseWriter, status int, v any) error { return jsonhttp.Write(w, status, v) }

// answerUnmatched makes mux answer the requests that no route takes with
// the documented error body instead of its plain text: 405 with an Allow
// header when the path is served with other methods, else 404. It is
// registered as "/", the least specific pattern, so matched requests pay
// nothing; call it after every route.
func (s *Server) answerUnmatched(mux *http.ServeMux) {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range methods {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
				allow = append(allow, m)
			}
		}
		what := r.Method + " " + r.URL.Path
		if len(allow) == 0 {
			s.writeError(w, r, core.E(core.KindNotFound, what, "no such API route; GET /api/v1/openapi.yaml lists them"))
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, &methodNotAllowed{method: r.Method, allow: allow})
	})
}

// methodNotAllowed is a request for a path that takes other methods.
type methodNotAllowed struct {
	method string
	allow  []string
}

func (m *methodNotAllowed) Error() string {
	return "this path takes " + strings.Join(m.allow, ", ") + ", not " + m.method
}
