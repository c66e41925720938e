package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// kindStatus is the one mapping of core Kinds to HTTP statuses.
var kindStatus = map[core.Kind]int{
	core.KindInvalid:      http.StatusBadRequest,
	core.KindNotFound:     http.StatusNotFound,
	core.KindConflict:     http.StatusConflict,
	core.KindUnauthorized: http.StatusUnauthorized,
	core.KindLeaseLost:    http.StatusConflict,
	core.KindUnavailable:  http.StatusServiceUnavailable,
	core.KindInternal:     http.StatusInternalServerError,
	core.KindCanceled:     499, // the client gave up; only the log line sees it
}

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

// mediaError is a body in a type the route does not take.
type mediaError struct{ got, want string }

func (m *mediaError) Error() string {
	return "Content-Type " + strconv.Quote(m.got) + " is not accepted here; send " + m.want
}

// writeError maps err to its status and the error body. It is the only
// place errors become responses.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		tooBig  *http.MaxBytesError
		offset  *store.LogOffsetError
		forbid  *forbidden
		version *versionError
		media   *mediaError
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
		status, code = http.StatusForbidden, "forbidden"
	case errors.As(err, &version):
		status, code = http.StatusBadRequest, protocol.CodeProtocolVersion
		details = map[string]any{"server_version": protocol.Version, "runner_version": version.got}
	case errors.As(err, &media):
		status, code = http.StatusUnsupportedMediaType, protocol.CodeUnsupportedMedia
	default:
		k := core.KindOf(err)
		if st, ok := kindStatus[k]; ok {
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

// decodeJSON reads one JSON value of at most DefaultMaxJSONBytes into v,
// refusing unknown fields and trailing data. An empty body leaves v as is
// when optional is set.
func decodeJSON(w http.ResponseWriter, r *http.Request, optional bool, v any) error {
	const op = "decode request"
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &mediaError{got: ct, want: "application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, DefaultMaxJSONBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return &core.Error{Kind: core.KindInvalid, Op: op, Msg: "reading the request body failed", Err: err}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return core.E(core.KindInvalid, op, "the request needs a JSON body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &core.Error{Kind: core.KindInvalid, Op: op, Msg: "malformed JSON body", Err: err}
	}
	if dec.More() {
		return core.E(core.KindInvalid, op, "trailing data after the JSON body")
	}
	return nil
}

// writeJSON writes v with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the status is out; a failed write is a client gone
}

// encodeTo writes v with the given status and reports whether it was sent.
func encodeTo(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}
