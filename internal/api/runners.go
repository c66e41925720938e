package api

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// Limits on what a runner registers.
const (
	maxLabels   = 64
	maxLabelLen = 128
	maxNameLen  = 128
)

func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	if err := s.limit(r, "register"); err != nil {
		return err
	}
	if err := auth.CheckRegistrationToken(s.cfg.RegistrationToken, bearer(r)); err != nil {
		return s.authFailed(r, "register", err)
	}
	var req protocol.RegisterRequest
	if err := decodeJSON(w, r, false, &req); err != nil {
		return err
	}
	if req.ProtocolVersion != protocol.Version {
		return &versionError{got: req.ProtocolVersion}
	}
	if err := checkText("name", req.Name, maxNameLen, false); err != nil {
		return err
	}
	if len(req.Labels) > maxLabels {
		return core.E(core.KindInvalid, "register runner", "at most %d labels, got %d", maxLabels, len(req.Labels))
	}
	for _, l := range req.Labels {
		if err := checkText("label", l, maxLabelLen, true); err != nil {
			return err
		}
	}
	cred, hash := auth.NewCredential()
	rn, err := s.st.RegisterRunner(r.Context(), store.Runner{
		Name: req.Name, Labels: req.Labels, CredentialHash: hash, ProtocolVersion: req.ProtocolVersion,
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "runner registered", "runner_id", rn.ID, "name", rn.Name, "labels", rn.Labels)
	s.forgetRunners() // waiting reasons see it at once
	writeJSON(w, http.StatusCreated, protocol.RegisterResponse{RunnerID: rn.ID, Credential: cred, ProtocolVersion: protocol.Version})
	return nil
}

// checkText validates a short printable string; a label also has no
// spaces or commas, which would make label lists ambiguous.
func checkText(what, v string, max int, label bool) error {
	if v == "" || len(v) > max {
		return core.E(core.KindInvalid, "register runner", "%s must be 1 to %d bytes, got %d", what, max, len(v))
	}
	bad := func(c rune) bool { return unicode.IsControl(c) || (label && (unicode.IsSpace(c) || c == ',')) }
	if strings.IndexFunc(v, bad) >= 0 {
		return core.E(core.KindInvalid, "register runner", "%s %q has a control, space or comma character", what, v)
	}
	return nil
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) error {
	if err := s.limit(r, "session"); err != nil {
		return err
	}
	var req protocol.SessionRequest
	if err := decodeJSON(w, r, false, &req); err != nil {
		return err
	}
	if req.ProtocolVersion != protocol.Version {
		return &versionError{got: req.ProtocolVersion}
	}
	refused := core.E(core.KindUnauthorized, "runner session", "unknown runner or wrong credential")
	if req.RunnerID == "" || req.Credential == "" || len(req.RunnerID) > 64 {
		return s.authFailed(r, "session", refused)
	}
	rn, err := s.st.Runner(r.Context(), req.RunnerID)
	if core.KindOf(err) == core.KindNotFound {
		return s.authFailed(r, "session", refused)
	}
	if err != nil {
		return err
	}
	if err := auth.CheckCredential(rn.CredentialHash, req.Credential); err != nil {
		return s.authFailed(r, "session", refused)
	}
	tok, exp, err := s.cfg.Keys.IssueSession(rn.ID, rn.Labels)
	if err != nil {
		return err
	}
	if err := s.st.TouchRunner(r.Context(), rn.ID); err != nil {
		return err
	}
	s.forgetRunners() // waiting reasons see it at once
	writeJSON(w, http.StatusOK, protocol.SessionResponse{Token: tok, ExpiresAt: exp.UTC()})
	return nil
}

func (s *Server) listRunners(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.admin(r); err != nil {
		return err
	}
	out, err := s.Runners(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Runners lists the registered runners with their state (idle, busy or
// offline), their last contact and the attempts they hold.
func (s *Server) Runners(ctx context.Context) (protocol.RunnerList, error) {
	runners, err := s.st.Runners(ctx)
	if err != nil {
		return protocol.RunnerList{}, err
	}
	held, err := s.st.HeldAttempts(ctx)
	if err != nil {
		return protocol.RunnerList{}, err
	}
	now := time.Now()
	out := protocol.RunnerList{Runners: make([]protocol.RunnerInfo, 0, len(runners))}
	for _, rn := range runners {
		labels := rn.Labels
		if labels == nil {
			labels = []string{}
		}
		info := protocol.RunnerInfo{
			ID: rn.ID, Name: rn.Name, Labels: labels, ProtocolVersion: rn.ProtocolVersion,
			CreatedAt: rn.CreatedAt.UTC(), LastSeenAt: rn.LastSeenAt.UTC(),
			Attempts: make([]protocol.RunnerAttempt, 0, len(held[rn.ID])),
		}
		for _, a := range held[rn.ID] {
			info.Attempts = append(info.Attempts, protocol.RunnerAttempt{
				AttemptID: a.ID, RunID: a.RunID, Job: a.Job, State: string(a.State), LeasedAt: a.LeasedAt.UTC(),
			})
			// A lease is taken or renewed by the runner: its last renewal
			// (a heartbeat) is a contact more recent than the row may say.
			for _, at := range []time.Time{a.LeasedAt, a.LeaseExpiresAt.Add(-s.cfg.TTL)} {
				if at.After(info.LastSeenAt) && !at.After(now) {
					info.LastSeenAt = at.UTC()
				}
			}
		}
		switch {
		case !s.runnerOnline(rn.LastSeenAt, now):
			info.State = protocol.RunnerOffline
		case len(info.Attempts) > 0:
			info.State = protocol.RunnerBusy
		default:
			info.State = protocol.RunnerIdle
		}
		out.Runners = append(out.Runners, info)
	}
	return out, nil
}

// runnerSilence is how long a live runner may go without a recorded
// contact: it asks for a lease at least every MaxLeaseWait, or heartbeats
// its attempts every TTL/3, and its contact is written every ContactFlush.
func (s *Server) runnerSilence() time.Duration {
	return s.cfg.ContactFlush + 2*max(s.cfg.MaxLeaseWait, s.cfg.TTL)
}

// runnerOnline reports whether a runner last in touch at lastSeen is
// taken to be running still.
func (s *Server) runnerOnline(lastSeen, now time.Time) bool {
	return now.Sub(lastSeen) <= s.runnerSilence()
}

// removeRunner forgets a runner: its credential buys no more sessions, and
// its session and job tokens are refused (on other replicas within
// liveFor). Its attempts in flight are left to the reaper.
func (s *Server) removeRunner(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.admin(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.st.RemoveRunner(r.Context(), id); err != nil {
		return err
	}
	s.live.forget(id)
	s.forgetRunners()
	s.log.InfoContext(r.Context(), "runner removed", "runner_id", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
