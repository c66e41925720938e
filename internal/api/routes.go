package api

import (
	_ "embed"
	"net/http"
)

//go:embed openapi.yaml
var openapiDoc []byte

func (s *Server) routes() {
	const v1 = "/api/v1"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handle(s.healthz))
	mux.HandleFunc("GET /readyz", s.handle(s.readyz))
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET "+v1+"/openapi.yaml", s.handle(s.openapi))

	mux.HandleFunc("POST "+v1+"/runners/register", s.handle(s.register))
	mux.HandleFunc("GET "+v1+"/runners", s.handle(s.listRunners))
	mux.HandleFunc("DELETE "+v1+"/runners/{id}", s.handle(s.removeRunner))
	mux.HandleFunc("POST "+v1+"/runner/session", s.handle(s.session))
	mux.HandleFunc("POST "+v1+"/runner/lease", s.handle(s.lease))
	mux.HandleFunc("POST "+v1+"/attempts/{id}/heartbeat", s.handle(s.heartbeat))
	mux.HandleFunc("POST "+v1+"/attempts/{id}/start", s.handle(s.start))
	mux.HandleFunc("POST "+v1+"/attempts/{id}/release", s.handle(s.release))
	mux.HandleFunc("PUT "+v1+"/attempts/{id}/log", s.handle(s.putLog))
	mux.HandleFunc("GET "+v1+"/attempts/{id}/log", s.handle(s.getLog))
	mux.HandleFunc("POST "+v1+"/attempts/{id}/complete", s.handle(s.complete))

	mux.HandleFunc("GET "+v1+"/projects", s.handle(s.listProjects))
	mux.HandleFunc("POST "+v1+"/projects", s.handle(s.addProject))
	mux.HandleFunc("GET "+v1+"/projects/{name}", s.handle(s.getProject))
	mux.HandleFunc("PATCH "+v1+"/projects/{name}", s.handle(s.updateProject))
	mux.HandleFunc("DELETE "+v1+"/projects/{name}", s.handle(s.removeProject))
	mux.HandleFunc("GET "+v1+"/projects/{name}/hooks", s.handle(s.projectHooks))
	mux.HandleFunc("POST "+v1+"/projects/{name}/hooks/secret", s.handle(s.rotateHookSecret))
	mux.HandleFunc("POST "+v1+"/hooks/{forge}/{project}", s.handle(s.receiveHook))
	mux.HandleFunc("GET "+v1+"/projects/{name}/roles", s.handle(s.projectRoles))
	mux.HandleFunc("PATCH "+v1+"/projects/{name}/roles", s.handle(s.updateProjectRoles))

	mux.HandleFunc("POST "+v1+"/runs", s.handle(s.createRun))
	mux.HandleFunc("GET "+v1+"/runs", s.handle(s.listRuns))
	mux.HandleFunc("POST "+v1+"/runs/{id}/rerun", s.handle(s.rerunRun))
	mux.HandleFunc("GET "+v1+"/runs/{id}", s.handle(s.getRun))
	mux.HandleFunc("POST "+v1+"/runs/{id}/cancel", s.handle(s.cancelRun))
	mux.HandleFunc("GET "+v1+"/runs/{id}/events", s.handle(s.getRunEvents))
	mux.HandleFunc("GET "+v1+"/runs/{id}/jobs/{name}/log", s.handle(s.getJobLog))

	if s.cfg.StoreAPI != nil {
		mux.Handle(StorePrefix+"/", http.StripPrefix(StorePrefix, s.storeScope(s.cfg.StoreAPI)))
	}
	s.answerUnmatched(mux)
	s.mux = mux
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	select {
	case <-s.draining:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return nil
	default:
	}
	if err := s.st.Ready(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/yaml")
	_, err := w.Write(openapiDoc)
	return err
}
