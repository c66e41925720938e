package httpapi

import (
	"net/http"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// routes lists every route of the API and what each asks of the caller's
// token (see admit). The OpenAPI document describes the same set, and the
// contract test checks each of them.
//
// Blobs and manifests belong to no namespace: any scope lets a token read
// them (a digest is only found through a ref it may read, or by knowing
// the content), and write on some namespace lets it upload them and lease
// them against GC while it pushes (unused ones are collected). Refs and
// retention are checked against their namespace. The log, GC, scrubs,
// verification and tokens span every namespace and need a "*" scope.
func (s *server) routes() {
	const v1 = "/api/v1"
	const read, write, admin = eventlog.RoleRead, eventlog.RoleWrite, eventlog.RoleAdmin
	s.mux.HandleFunc("GET /healthz", s.handle(public, s.healthz))
	s.mux.HandleFunc("GET /readyz", s.handle(public, s.readyz))
	s.mux.HandleFunc("GET /metrics", s.handle(public, s.serveMetrics))
	s.mux.HandleFunc("GET "+v1+"/openapi.yaml", s.handle(public, s.openapi))

	s.mux.HandleFunc("HEAD "+v1+"/blobs/{digest}", s.handle(anyNamespace(read), s.headBlob))
	s.mux.HandleFunc("GET "+v1+"/blobs/{digest}", s.handle(anyNamespace(read), s.getBlob))
	s.mux.HandleFunc("POST "+v1+"/blobs/uploads", s.handle(anyNamespace(write), s.startUpload))
	s.mux.HandleFunc("GET "+v1+"/blobs/uploads/{id}", s.handle(anyNamespace(write), s.uploadStatus))
	s.mux.HandleFunc("PATCH "+v1+"/blobs/uploads/{id}", s.handle(anyNamespace(write), s.appendChunk))
	s.mux.HandleFunc("PUT "+v1+"/blobs/uploads/{id}", s.handle(anyNamespace(write), s.finishUpload))
	s.mux.HandleFunc("DELETE "+v1+"/blobs/uploads/{id}", s.handle(anyNamespace(write), s.cancelUpload))
	s.mux.HandleFunc("POST "+v1+"/blobs/find-missing", s.handle(anyNamespace(read), s.findMissing))

	s.mux.HandleFunc("PUT "+v1+"/manifests/{digest}", s.handle(anyNamespace(write), s.putManifest))
	s.mux.HandleFunc("GET "+v1+"/manifests/{digest}", s.handle(anyNamespace(read), s.getManifest))

	s.mux.HandleFunc("GET "+v1+"/refs", s.handle(queryNamespace(read), s.listRefs))
	s.mux.HandleFunc("GET "+v1+"/refs/{namespace}/{ref...}", s.handle(pathNamespace(read), s.getRef))
	s.mux.HandleFunc("PUT "+v1+"/refs/{namespace}/{ref...}", s.handle(pathNamespace(write), s.putRef))
	s.mux.HandleFunc("DELETE "+v1+"/refs/{namespace}/{ref...}", s.handle(pathNamespace(write), s.deleteRef))

	s.mux.HandleFunc("GET "+v1+"/events", s.handle(everyNamespace(read), s.events))
	s.mux.HandleFunc("GET "+v1+"/audit", s.handle(everyNamespace(read), s.audit))

	s.mux.HandleFunc("GET "+v1+"/retention", s.handle(queryNamespace(read), s.listRetention))
	s.mux.HandleFunc("PUT "+v1+"/retention/{namespace}", s.handle(pathNamespace(admin), s.putRetention))
	s.mux.HandleFunc("DELETE "+v1+"/retention/{namespace}", s.handle(pathNamespace(admin), s.deleteRetention))
	s.mux.HandleFunc("POST "+v1+"/retention/apply", s.handle(retentionApply, s.applyRetention))

	s.mux.HandleFunc("POST "+v1+"/gc", s.handle(everyNamespace(admin), s.gc))
	s.mux.HandleFunc("POST "+v1+"/gc/leases", s.handle(anyNamespace(write), s.takeLease))
	s.mux.HandleFunc("PUT "+v1+"/gc/leases/{id}", s.handle(anyNamespace(write), s.renewLease))
	s.mux.HandleFunc("DELETE "+v1+"/gc/leases/{id}", s.handle(anyNamespace(write), s.releaseLease))
	s.mux.HandleFunc("GET "+v1+"/replay/verify", s.handle(everyNamespace(admin), s.verify))
	s.mux.HandleFunc("POST "+v1+"/replay/verify", s.handle(everyNamespace(admin), s.verify))
	s.mux.HandleFunc("GET "+v1+"/checkpoints/latest", s.handle(everyNamespace(read), s.latestCheckpoint))
	s.mux.HandleFunc("POST "+v1+"/scrub", s.handle(everyNamespace(admin), s.startScrub))
	s.mux.HandleFunc("GET "+v1+"/scrub", s.handle(everyNamespace(read), s.scrubStatus))

	s.mux.HandleFunc("GET "+v1+"/tokens", s.handle(everyNamespace(admin), s.listTokens))
	s.mux.HandleFunc("POST "+v1+"/tokens", s.handle(everyNamespace(admin), s.createToken))
	s.mux.HandleFunc("DELETE "+v1+"/tokens/{name}", s.handle(everyNamespace(admin), s.revokeToken))
}

// serveMetrics serves Options.Metrics; a store mounted in another server
// has none of its own.
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	if s.metrics == nil {
		return core.E(core.KindNotFound, "metrics", "this server serves its metrics elsewhere")
	}
	s.metrics.Handler().ServeHTTP(w, r)
	return nil
}
