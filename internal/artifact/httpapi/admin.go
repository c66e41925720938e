package httpapi

import (
	"context"
	_ "embed"
	"net/http"
	"strconv"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/artifact/retention"
	"github.com/deltaci/deltaci/internal/core"
)

func (s *server) listRetention(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.meta.Policies(r.Context(), r.URL.Query().Get("namespace"))
	if err != nil {
		return err
	}
	out := PolicyList{Policies: make([]PolicyBody, len(ps))}
	for i, p := range ps {
		out.Policies[i] = policyBody(p)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// putRetention creates or replaces the policy of (namespace, selector) and
// answers with it as stored.
func (s *server) putRetention(w http.ResponseWriter, r *http.Request) error {
	who, err := actor(r)
	if err != nil {
		return err
	}
	var req PolicyUpdate
	if err := decodeJSON(w, r, s.maxJSON, false, &req); err != nil {
		return err
	}
	p, err := PolicyBody{Namespace: r.PathValue("namespace"), Selector: req.Selector, KeepLast: req.KeepLast,
		KeepWithin: req.KeepWithin, KeepPinned: req.KeepPinned}.policy()
	if err != nil {
		return err
	}
	if err := s.meta.SetPolicy(r.Context(), who, p); err != nil {
		return err
	}
	ps, err := s.meta.Policies(r.Context(), p.Namespace)
	if err != nil {
		return err
	}
	for _, stored := range ps {
		if stored.Selector == p.Selector {
			writeJSON(w, http.StatusOK, policyBody(stored))
			return nil
		}
	}
	return core.E(core.KindConflict, "set retention", "the policy for %s %q was removed while being set", p.Namespace, p.Selector)
}

func (s *server) deleteRetention(w http.ResponseWriter, r *http.Request) error {
	who, err := actor(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if q.Get("selector") == "" {
		return core.E(core.KindInvalid, "delete retention", "?selector= names the policy to delete")
	}
	if err := s.meta.DeletePolicy(r.Context(), who, r.PathValue("namespace"), q.Get("selector")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// applyRetention evaluates the policies of ?namespace= (all when empty)
// and, unless ?dry_run=true, deletes the refs they do not keep.
func (s *server) applyRetention(w http.ResponseWriter, r *http.Request) error {
	who, err := actor(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	dry := false
	if q.Has("dry_run") {
		if dry, err = strconv.ParseBool(q.Get("dry_run")); err != nil {
			return core.E(core.KindInvalid, "apply retention", "dry_run %.20q is not true or false", q.Get("dry_run"))
		}
	}
	var plan []retention.Decision
	if dry {
		plan, err = s.reg.PlanRetention(r.Context(), q.Get("namespace"))
	} else {
		plan, err = s.reg.ApplyRetention(r.Context(), who, q.Get("namespace"))
	}
	if err != nil {
		return err
	}
	out := RetentionPlan{DryRun: dry, Decisions: make([]DecisionBody, len(plan))}
	for i, d := range plan {
		out.Decisions[i] = decisionBody(d)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) gc(w http.ResponseWriter, r *http.Request) error {
	who, err := actor(r)
	if err != nil {
		return err
	}
	var req GCRequest
	if err := decodeJSON(w, r, s.maxJSON, true, &req); err != nil {
		return err
	}
	grace := registry.DefaultGrace
	if req.Grace != "" {
		// "0s" is zero: pushes hold leases, not the window (see registry.GC).
		if grace, err = time.ParseDuration(req.Grace); err != nil || grace < 0 {
			return core.E(core.KindInvalid, "gc", "grace %.40q is not a duration of zero or more such as \"1h\" or \"0s\"", req.Grace)
		}
	}
	rep, err := s.reg.GC(r.Context(), who, grace)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, gcBody(rep))
	return nil
}

// verify rebuilds the projections from the log and compares them with the
// live ones. A broken hash chain, or a checkpoint or expected head the log
// does not reach, is a 409 naming it.
func (s *server) verify(w http.ResponseWriter, r *http.Request) error {
	opts, err := s.verifyOptions(w, r)
	if err != nil {
		return err
	}
	rep, err := s.meta.ReplayWith(r.Context(), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, replayBody(rep))
	return nil
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
	return nil
}

// readyTimeout bounds the database probe of /readyz, so that a hung
// database fails the probe instead of hanging it.
const readyTimeout = 5 * time.Second

func (s *server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if _, err := s.meta.Head(ctx); err != nil {
		return core.Wrap(core.KindUnavailable, "readyz: metadata database", err)
	}
	writeJSON(w, http.StatusOK, Health{Status: "ready"})
	return nil
}

// openAPI is the contract, a copy of api/artifactstore.openapi.yaml kept
// identical by TestOpenAPIEmbeddedCopy.
//
//go:embed openapi.yaml
var openAPI []byte

func (s *server) openapi(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPI)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPI)
	return nil
}
