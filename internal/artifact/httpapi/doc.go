// Package httpapi is the artifact store's HTTP API, /api/v1, and a Go
// client for it.
//
// The contract is api/artifactstore.openapi.yaml (served at
// /api/v1/openapi.yaml); the tests validate real requests and responses of
// a running server against it. routes.go lists every route.
//
// # Errors
//
// Every failure is a JSON body
//
//	{"error": {"code": "not_found", "message": "...", "details": {...}}}
//
// where code is a core.Kind in snake_case (invalid, not_found, conflict,
// unauthorized, lease_lost, unavailable, internal, canceled) or one of the
// finer codes digest_mismatch, size_mismatch, offset_mismatch,
// range_not_satisfiable, too_large and unsupported_media_type, each of
// which belongs to one Kind. One function, writeError, maps errors to
// statuses and is the only place that logs failed requests. The Client
// turns such a body back into a *core.Error of the same Kind (wrapping
// *digest.MismatchError, *dataplane.OffsetError or *MissingBlobsError when
// the details carry them), so callers behave the same against a local
// registry and a remote one.
//
// # Identity
//
// Every route but health, metrics and the OpenAPI document authenticates
// its caller (Options.Auth; TokenAuth for a standalone server: API tokens
// kept hashed, each with scopes, a role per namespace) and checks the
// caller's scopes against what the route asks (routes.go): 401
// unauthorized, 403 forbidden. The actor recorded on writes, and so in the
// audit trail, is the caller's principal ("token:<name>"); an X-Actor
// header is ignored. A server that mounts the API behind its own
// authentication names the caller with WithActor instead.
//
// # Bodies
//
// Every request body is bounded. JSON bodies and manifests are read whole
// up to Options.MaxJSONBytes and Options.MaxManifestBytes; blob bodies
// (a monolithic upload, a PATCH chunk, the final chunk of a PUT) are
// streamed to the data plane, never buffered, and refused past
// Options.MaxChunkBytes with 413.
package httpapi
