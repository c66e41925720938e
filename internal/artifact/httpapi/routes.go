package httpapi

// routes lists every route of the API. The OpenAPI document describes the
// same set, and the contract test checks each of them.
func (s *server) routes() {
	const v1 = "/api/v1"
	s.mux.HandleFunc("GET /healthz", s.handle(s.healthz))
	s.mux.HandleFunc("GET /readyz", s.handle(s.readyz))
	s.mux.HandleFunc("GET "+v1+"/openapi.yaml", s.handle(s.openapi))

	s.mux.HandleFunc("HEAD "+v1+"/blobs/{digest}", s.handle(s.headBlob))
	s.mux.HandleFunc("GET "+v1+"/blobs/{digest}", s.handle(s.getBlob))
	s.mux.HandleFunc("POST "+v1+"/blobs/uploads", s.handle(s.startUpload))
	s.mux.HandleFunc("PATCH "+v1+"/blobs/uploads/{id}", s.handle(s.appendChunk))
	s.mux.HandleFunc("PUT "+v1+"/blobs/uploads/{id}", s.handle(s.finishUpload))
	s.mux.HandleFunc("DELETE "+v1+"/blobs/uploads/{id}", s.handle(s.cancelUpload))
	s.mux.HandleFunc("POST "+v1+"/blobs/find-missing", s.handle(s.findMissing))

	s.mux.HandleFunc("PUT "+v1+"/manifests/{digest}", s.handle(s.putManifest))
	s.mux.HandleFunc("GET "+v1+"/manifests/{digest}", s.handle(s.getManifest))

	s.mux.HandleFunc("GET "+v1+"/refs", s.handle(s.listRefs))
	s.mux.HandleFunc("GET "+v1+"/refs/{namespace}/{ref...}", s.handle(s.getRef))
	s.mux.HandleFunc("PUT "+v1+"/refs/{namespace}/{ref...}", s.handle(s.putRef))
	s.mux.HandleFunc("DELETE "+v1+"/refs/{namespace}/{ref...}", s.handle(s.deleteRef))

	s.mux.HandleFunc("GET "+v1+"/events", s.handle(s.events))
	s.mux.HandleFunc("GET "+v1+"/audit", s.handle(s.audit))

	s.mux.HandleFunc("GET "+v1+"/retention", s.handle(s.listRetention))
	s.mux.HandleFunc("PUT "+v1+"/retention/{namespace}", s.handle(s.putRetention))
	s.mux.HandleFunc("DELETE "+v1+"/retention/{namespace}", s.handle(s.deleteRetention))
	s.mux.HandleFunc("POST "+v1+"/retention/apply", s.handle(s.applyRetention))

	s.mux.HandleFunc("POST "+v1+"/gc", s.handle(s.gc))
	s.mux.HandleFunc("GET "+v1+"/replay/verify", s.handle(s.verify))
	s.mux.HandleFunc("POST "+v1+"/replay/verify", s.handle(s.verify))
	s.mux.HandleFunc("GET "+v1+"/checkpoints/latest", s.handle(s.latestCheckpoint))
}
