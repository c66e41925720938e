package api

import (
	"net/http"

	"github.com/deltaci/deltaci/internal/analyzer"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// getRunAnalysis answers GET /runs/{id}/analysis: per job, its latest
// analyzed attempt and its failures against the base's result.
func (s *Server) getRunAnalysis(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.user(r); err != nil {
		return err
	}
	out, err := analyzer.RunView(r.Context(), s.st, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getAttemptAnalysis answers GET /attempts/{id}/analysis: one attempt's
// analysis, 404 until it is made.
func (s *Server) getAttemptAnalysis(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.user(r); err != nil {
		return err
	}
	ctx, id := r.Context(), r.PathValue("id")
	a, err := s.st.Analysis(ctx, id)
	if core.KindOf(err) == core.KindNotFound {
		at, aerr := s.st.Attempt(ctx, id)
		if aerr != nil {
			return aerr
		}
		if !at.State.Terminal() {
			return core.E(core.KindNotFound, "analysis", "attempt %s is %s: it is analyzed once it ends", id, at.State)
		}
		if at.State == core.AttemptCanceled {
			return core.E(core.KindNotFound, "analysis", "attempt %s was canceled: there is nothing to analyze", id)
		}
		return core.E(core.KindNotFound, "analysis", "attempt %s ended %s and is not analyzed yet", id, at.State)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// getProjectFlaky answers GET /projects/{name}/flaky: the project's jobs
// and tests proven flaky, those cleared since only with ?all=true.
func (s *Server) getProjectFlaky(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.user(r); err != nil {
		return err
	}
	all := false
	switch v := r.URL.Query().Get("all"); v {
	case "", "false":
	case "true":
		all = true
	default:
		return core.E(core.KindInvalid, "flaky", "all must be true or false, got %q", v)
	}
	ctx := r.Context()
	p, err := s.st.Project(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	fl, err := s.st.Flaky(ctx, store.Scope(core.Run{Project: p.Name}), "")
	if err != nil {
		return err
	}
	out := protocol.FlakyList{Project: p.Name, Flaky: []core.Flaky{}}
	for _, f := range fl {
		if all || f.Active() {
			out.Flaky = append(out.Flaky, f)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
