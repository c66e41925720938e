package openapitest

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Validator is an http.RoundTripper that checks every request and answer
// against an OpenAPI document and records each answer in Coverage, so
// that every test of an API doubles as its contract test.
type Validator struct {
	t      testing.TB
	router routers.Router
	next   http.RoundTripper
	cov    *Coverage
	// Pass, when set, names requests sent on unchecked: another API's.
	Pass func(*http.Request) bool
	// UncheckedMayMiss lets an Unchecked request go to no documented
	// operation (a hostile path); otherwise that is a contract failure.
	UncheckedMayMiss bool
	// Answer, when set, checks what the document cannot say about an
	// answer of operation op (an error body's fields, a header).
	Answer func(t testing.TB, what, op string, req *http.Request, resp *http.Response, body []byte)
}

// NewValidator checks the traffic to next against doc and records it in
// cov (a Coverage of its own when nil).
func NewValidator(t testing.TB, doc *openapi3.T, next http.RoundTripper, cov *Coverage) *Validator {
	t.Helper()
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	if cov == nil {
		cov = &Coverage{}
	}
	return &Validator{t: t, router: router, next: next, cov: cov}
}

// RoundTrip implements http.RoundTripper.
func (v *Validator) RoundTrip(req *http.Request) (*http.Response, error) {
	if v.Pass != nil && v.Pass(req) {
		return v.next.RoundTrip(req)
	}
	ctx := req.Context()
	strict := !IsUnchecked(ctx)
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	fresh := func() *http.Request {
		r := req.Clone(ctx)
		if req.Body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		return r
	}
	what := req.Method + " " + req.URL.RequestURI()
	route, params, err := v.router.FindRoute(fresh())
	if err != nil {
		if strict || !v.UncheckedMayMiss {
			v.t.Errorf("contract: no operation for %s: %v", what, err)
		}
		return v.next.RoundTrip(fresh())
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.RequestValidationInput{Request: fresh(), PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && strict {
		v.t.Errorf("contract: request %s does not match the document: %v", what, err)
	}
	resp, err := v.next.RoundTrip(fresh())
	if err != nil {
		return resp, err
	}
	rb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	op := route.Operation.OperationID
	// ValidateResponse skips HEAD answers; this check covers them too.
	if route.Operation.Responses.Status(resp.StatusCode) == nil {
		v.t.Errorf("contract: %s (%s) answered %d, which the document does not list: %s", what, op, resp.StatusCode, rb)
	}
	if v.Answer != nil {
		v.Answer(v.t, what, op, req, resp, rb)
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}
	rin.SetBodyBytes(rb)
	if err := openapi3filter.ValidateResponse(ctx, rin); err != nil {
		v.t.Errorf("contract: response %d to %s does not match the document: %v", resp.StatusCode, what, err)
	}
	v.cov.Add(op, resp.StatusCode)
	return resp, nil
}
