package httpapi

import (
	"net/http"
	"strings"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// refName reads namespace/name:tag from the path. The name may hold
// slashes, literal or escaped as %2F; the namespace may not, even
// escaped, since joining it back would move the split.
func refName(r *http.Request) (eventlog.RefName, error) {
	ns, rest := r.PathValue("namespace"), r.PathValue("ref")
	if strings.Contains(ns, "/") {
		return eventlog.RefName{}, core.E(core.KindInvalid, "parse ref", "namespace %.100q contains a slash", ns)
	}
	return eventlog.ParseRef(ns + "/" + rest)
}

func (s *server) listRefs(w http.ResponseWriter, r *http.Request) error {
	refs, err := s.meta.Refs(r.Context(), r.URL.Query().Get("namespace"))
	if err != nil {
		return err
	}
	out := RefList{Refs: make([]RefBody, len(refs))}
	for i, ref := range refs {
		out.Refs[i] = refBody(ref)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) getRef(w http.ResponseWriter, r *http.Request) error {
	name, err := refName(r)
	if err != nil {
		return err
	}
	ref, err := s.meta.Ref(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, refBody(ref))
	return nil
}

// putRef points a ref at a committed manifest and, when the body says so,
// pins or unpins it. The two are separate events, so a failure between
// them leaves the ref set but not (un)pinned; repeating the request
// finishes it.
func (s *server) putRef(w http.ResponseWriter, r *http.Request) error {
	who, err := actor(r)
	if err != nil {
		return err
	}
	name, err := refName(r)
	if err != nil {
		return err
	}
	var req RefUpdate
	if err := decodeJSON(w, r, s.maxJSON, false, &req); err != nil {
		return err
	}
	m, err := digest.Parse(req.Manifest)
	if err != nil {
		return err
	}
	if err := s.meta.SetRef(r.Context(), who, name, m); err != nil {
		return err
	}
	if req.Pinned != nil {
		if err := s.meta.PinRef(r.Context(), who, name, *req.Pinned); err != nil {
			return err
		}
	}
	ref, err := s.meta.Ref(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, refBody(ref))
	return nil
}

func (s *server) deleteRef(w http.ResponseWriter, r *http.Request) error {
	who, err := actor(r)
	if err != nil {
		return err
	}
	name, err := refName(r)
	if err != nil {
		return err
	}
	if err := s.meta.DeleteRef(r.Context(), who, name, "deleted through the API"); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
