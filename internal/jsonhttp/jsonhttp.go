// Package jsonhttp holds what the project's two HTTP APIs, the server's
// /api/v1 and the artifact store's, share: the status of each error Kind,
// reading a JSON request body, writing a JSON answer, and the error of a
// body in a type a route does not take.
package jsonhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// StatusClientClosed answers a request whose client gave up; nobody reads
// it, but the log line shows it.
const StatusClientClosed = 499

// kindStatus is the one mapping of core Kinds to HTTP statuses.
var kindStatus = map[core.Kind]int{
	core.KindInvalid:      http.StatusBadRequest,
	core.KindNotFound:     http.StatusNotFound,
	core.KindConflict:     http.StatusConflict,
	core.KindUnauthorized: http.StatusUnauthorized,
	core.KindLeaseLost:    http.StatusConflict,
	core.KindUnavailable:  http.StatusServiceUnavailable,
	core.KindInternal:     http.StatusInternalServerError,
	core.KindCanceled:     StatusClientClosed,
}

// Status is the HTTP status of an error of Kind k, and false for a Kind
// with none.
func Status(k core.Kind) (int, bool) {
	s, ok := kindStatus[k]
	return s, ok
}

// MediaTypeError is a request body in a type the route does not take.
type MediaTypeError struct {
	Got  string   // the request's Content-Type
	Want []string // the types the route takes
}

func (e *MediaTypeError) Error() string {
	return fmt.Sprintf("content type %.100q is not accepted here; send %s", e.Got, strings.Join(e.Want, " or "))
}

// Unwrap makes the error one of kind invalid.
func (e *MediaTypeError) Unwrap() error { return &core.Error{Kind: core.KindInvalid} }

// Decode reads one JSON value of at most limit bytes into v, refusing
// another Content-Type, unknown fields and trailing data. An empty body is
// allowed only when optional is set, and leaves v untouched.
func Decode(w http.ResponseWriter, r *http.Request, limit int64, optional bool, v any) error {
	const op = "decode request"
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &MediaTypeError{Got: ct, Want: []string{"application/json"}}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return BodyError(op, err)
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

// BodyError classifies a failure to read a request body: a body over its
// limit keeps its *http.MaxBytesError (413), anything else is the client's
// connection failing.
func BodyError(op string, err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &core.Error{Kind: core.KindInvalid, Op: op, Err: err}
	}
	return &core.Error{Kind: core.KindInvalid, Op: op, Msg: "reading the request body failed", Err: err}
}

// Write writes v as JSON with the given status and flushes it, so that an
// answer a long poll waited for leaves at once. Its error is a client
// gone: the status is out, and there is nobody left to tell.
func Write(w http.ResponseWriter, status int, v any) error {
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
