package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/jsonhttp"
)

// Error codes finer than a Kind. Each belongs to exactly one Kind, which
// is what a client gets back (see codeKinds).
const (
	CodeDigestMismatch       = "digest_mismatch"        // invalid: content does not hash to the digest
	CodeSizeMismatch         = "size_mismatch"          // invalid: content is not the announced size
	CodeOffsetMismatch       = "offset_mismatch"        // conflict: a chunk not at the session's offset
	CodeRangeNotSatisfiable  = "range_not_satisfiable"  // invalid: a Range outside the blob
	CodeTooLarge             = "too_large"              // invalid: a body over its limit
	CodeUnsupportedMediaType = "unsupported_media_type" // invalid: a body in a type the route does not take
	CodeMethodNotAllowed     = "method_not_allowed"     // not_found: the path exists for other methods
	CodeForbidden            = "forbidden"              // unauthorized: a valid credential whose scopes do not allow the request
)

// codeKinds is the Kind each fine code belongs to; a code that is a Kind
// itself maps to that Kind.
var codeKinds = map[string]core.Kind{
	CodeDigestMismatch:       core.KindInvalid,
	CodeSizeMismatch:         core.KindInvalid,
	CodeOffsetMismatch:       core.KindConflict,
	CodeRangeNotSatisfiable:  core.KindInvalid,
	CodeTooLarge:             core.KindInvalid,
	CodeUnsupportedMediaType: core.KindInvalid,
	CodeMethodNotAllowed:     core.KindNotFound,
	CodeForbidden:            core.KindUnauthorized,
}

// ErrorBody is the JSON body of every failed request.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what failed: Code is a Kind or a finer code (see the
// package doc), Details carries what a client needs to react (the offset
// to resume from, the missing blobs, the digests that differed).
type ErrorDetail struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// failure is a mapped error: the response to send for it.
type failure struct {
	status  int
	code    string
	message string
	details map[string]any
	header  http.Header
}

// classify maps err to a response. Typed errors the API knows come first,
// because they carry details and a finer status than their Kind.
func classify(err error) failure {
	var (
		tooBig   *http.MaxBytesError
		offset   *dataplane.OffsetError
		mismatch *digest.MismatchError
		size     *digest.SizeError
		rng      *rangeError
		missing  *MissingBlobsError
		media    *jsonhttp.MediaTypeError
		method   *methodError
		forbid   *ForbiddenError
	)
	f := failure{message: err.Error(), header: http.Header{}}
	switch {
	case errors.As(err, &tooBig):
		f.status, f.code = http.StatusRequestEntityTooLarge, CodeTooLarge
		f.message = fmt.Sprintf("the request body is larger than the limit of %d bytes", tooBig.Limit)
		f.details = map[string]any{"limit": tooBig.Limit}
	case errors.As(err, &offset):
		f.status, f.code = http.StatusRequestedRangeNotSatisfiable, CodeOffsetMismatch
		f.details = map[string]any{"offset": offset.Offset}
		if offset.Offset > 0 {
			f.header.Set("Range", "0-"+strconv.FormatInt(offset.Offset-1, 10))
		}
	case errors.As(err, &mismatch):
		f.status, f.code = http.StatusBadRequest, CodeDigestMismatch
		f.details = map[string]any{"expected": mismatch.Expected.String(), "actual": mismatch.Actual.String()}
	case errors.As(err, &size):
		f.status, f.code = http.StatusBadRequest, CodeSizeMismatch
		f.details = map[string]any{"expected_size": size.Expected, "actual_size": size.Actual}
	case errors.As(err, &rng):
		f.status, f.code = http.StatusRequestedRangeNotSatisfiable, CodeRangeNotSatisfiable
		f.details = map[string]any{"size": rng.size}
		f.header.Set("Content-Range", "bytes */"+strconv.FormatInt(rng.size, 10))
	case errors.As(err, &missing):
		f.status, f.code = http.StatusNotFound, string(core.KindNotFound)
		f.details = map[string]any{"manifest": missing.Manifest.String(), "missing": digestStrings(missing.Missing)}
	case errors.As(err, &media):
		f.status, f.code = http.StatusUnsupportedMediaType, CodeUnsupportedMediaType
		f.details = map[string]any{"supported": media.Want}
	case errors.As(err, &method):
		f.status, f.code = http.StatusMethodNotAllowed, CodeMethodNotAllowed
		f.header.Set("Allow", strings.Join(method.allow, ", "))
	case errors.As(err, &forbid):
		f.status, f.code = http.StatusForbidden, CodeForbidden
		f.details = map[string]any{"principal": forbid.Principal, "namespace": forbid.Namespace,
			"role": string(forbid.Role), "scopes": forbid.Scopes.String()}
	default:
		kind := core.KindOf(err)
		var ok bool
		f.status, ok = jsonhttp.Status(kind)
		f.code = string(kind)
		if !ok {
			f.status, f.code = http.StatusInternalServerError, string(core.KindInternal)
		}
	}
	if f.status >= 500 && f.status != http.StatusServiceUnavailable {
		// The cause stays in the log; the client learns only that it was
		// not its fault.
		f.message = "internal error"
	}
	return f
}

// writeError is the error mapper: the only place that turns an error into
// a status and the only place that logs a failed request.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	f := classify(err)
	level := slog.LevelInfo
	switch {
	case f.status >= 500 && f.status != jsonhttp.StatusClientClosed:
		level = slog.LevelError
	case f.status == http.StatusUnauthorized:
		// Anyone can send these, and a flood of them must not flood the
		// log: the metrics count them.
		level = slog.LevelDebug
	}
	tw, _ := w.(*trackingWriter)
	streaming := tw != nil && tw.wrote
	s.log.LogAttrs(r.Context(), level, "request failed",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", f.status), slog.String("code", f.code),
		slog.Bool("mid_response", streaming), slog.String("error", err.Error()))
	if streaming {
		// The status line is gone; cutting the connection is the only way
		// left to tell the client the body is incomplete.
		tw.aborted = true
		panic(http.ErrAbortHandler)
	}
	for k, v := range f.header {
		w.Header()[k] = v
	}
	writeJSON(w, f.status, ErrorBody{Error: ErrorDetail{Code: f.code, Message: f.message, Details: f.details}})
}

// MissingBlobsError is a manifest commit refused because blobs it lists
// are not stored. It is a core.KindNotFound error; the server sends
// Missing in the details and the Client rebuilds it, so a caller can
// upload exactly those and retry.
type MissingBlobsError struct {
	Manifest digest.Digest
	Missing  []digest.Digest
}

// Error says how many blobs are missing; Missing lists them.
func (e *MissingBlobsError) Error() string {
	return fmt.Sprintf("manifest %s references %d blob(s) that are not stored; upload them first", e.Manifest, len(e.Missing))
}

// Unwrap classifies the error as not found.
func (e *MissingBlobsError) Unwrap() error { return &core.Error{Kind: core.KindNotFound} }

// rangeError is a Range no byte of the blob satisfies.
type rangeError struct {
	size int64
}

func (e *rangeError) Error() string {
	return fmt.Sprintf("the requested range is outside the blob (%d bytes)", e.size)
}

func (e *rangeError) Unwrap() error { return &core.Error{Kind: core.KindInvalid} }

// methodError is a path served for other methods only.
type methodError struct {
	method string
	allow  []string
}

func (e *methodError) Error() string {
	return fmt.Sprintf("method %.20s is not allowed here (allowed: %s)", e.method, strings.Join(e.allow, ", "))
}

func (e *methodError) Unwrap() error { return &core.Error{Kind: core.KindNotFound} }

func digestStrings(ds []digest.Digest) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// decodeError turns a failed response back into a *core.Error of the Kind
// the server mapped, wrapping the typed error its details describe.
func decodeError(op string, resp *http.Response, body []byte) error {
	var eb struct {
		Error struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Details json.RawMessage `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" {
		// Not our error body (a proxy in between, a crash): classify by
		// status alone.
		return core.E(kindOfStatus(resp.StatusCode), op, "%s: %.200s", resp.Status, strings.TrimSpace(string(body)))
	}
	kind, ok := codeKinds[eb.Error.Code]
	if !ok {
		kind = core.Kind(eb.Error.Code)
		if _, known := jsonhttp.Status(kind); !known {
			kind = kindOfStatus(resp.StatusCode)
		}
	}
	// A rebuilt typed error says the same as the message, so it replaces
	// it rather than repeating it.
	if typed := detailError(eb.Error.Code, eb.Error.Details); typed != nil {
		return &core.Error{Kind: kind, Op: op, Err: typed}
	}
	return &core.Error{Kind: kind, Op: op, Msg: eb.Error.Message}
}

// detailError rebuilds the typed error of a fine code from its details, or
// returns nil when there is none to rebuild.
func detailError(code string, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var d struct {
		Offset   int64    `json:"offset"`
		Expected string   `json:"expected"`
		Actual   string   `json:"actual"`
		ExpSize  int64    `json:"expected_size"`
		ActSize  int64    `json:"actual_size"`
		Manifest string   `json:"manifest"`
		Missing  []string `json:"missing"`

		Principal string `json:"principal"`
		Namespace string `json:"namespace"`
		Role      string `json:"role"`
		Scopes    string `json:"scopes"`
	}
	if json.Unmarshal(raw, &d) != nil {
		return nil
	}
	switch {
	case code == CodeOffsetMismatch:
		return &dataplane.OffsetError{Offset: d.Offset, Got: -1}
	case code == CodeDigestMismatch:
		exp, err1 := digest.Parse(d.Expected)
		act, err2 := digest.Parse(d.Actual)
		if err1 != nil || err2 != nil {
			return nil
		}
		return &digest.MismatchError{Expected: exp, Actual: act}
	case code == CodeSizeMismatch:
		return &digest.SizeError{Expected: d.ExpSize, Actual: d.ActSize}
	case code == CodeForbidden:
		scopes, _ := eventlog.ParseScopes(d.Scopes)
		return &ForbiddenError{Principal: d.Principal, Namespace: d.Namespace, Role: eventlog.Role(d.Role), Scopes: scopes}
	case code == string(core.KindNotFound) && d.Missing != nil:
		m := &MissingBlobsError{}
		m.Manifest, _ = digest.Parse(d.Manifest)
		for _, s := range d.Missing {
			if md, err := digest.Parse(s); err == nil {
				m.Missing = append(m.Missing, md)
			}
		}
		return m
	}
	return nil
}

// kindOfStatus classifies a response that carries no error code.
func kindOfStatus(status int) core.Kind {
	switch {
	case status == http.StatusBadRequest, status == http.StatusRequestEntityTooLarge,
		status == http.StatusUnsupportedMediaType, status == http.StatusRequestedRangeNotSatisfiable:
		return core.KindInvalid
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return core.KindUnauthorized
	case status == http.StatusNotFound, status == http.StatusMethodNotAllowed:
		return core.KindNotFound
	case status == http.StatusConflict:
		return core.KindConflict
	case status == http.StatusServiceUnavailable, status == http.StatusBadGateway, status == http.StatusGatewayTimeout,
		status == http.StatusTooManyRequests:
		return core.KindUnavailable
	case status == jsonhttp.StatusClientClosed:
		return core.KindCanceled
	}
	return core.KindInternal
}
