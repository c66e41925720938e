package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/orchestrator"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/results"
	"github.com/deltaci/deltaci/internal/secret"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/telemetry"
)

// recheck is the long-poll's safety net against a missed wake-up.
const recheck = time.Second

func (s *Server) lease(w http.ResponseWriter, r *http.Request) error {
	c, err := s.runner(r)
	if err != nil {
		return err
	}
	var req protocol.LeaseRequest
	if err := decodeJSON(w, r, true, &req); err != nil {
		return err
	}
	if req.WaitSeconds < 0 || req.WaitSeconds > 3600 {
		// Bounded before it becomes a Duration, which could overflow.
		return core.E(core.KindInvalid, "lease", "wait_seconds must be 0 to 3600, got %d", req.WaitSeconds)
	}
	wait := min(time.Duration(req.WaitSeconds)*time.Second, s.cfg.MaxLeaseWait)
	if req.WaitSeconds == 0 {
		wait = s.cfg.MaxLeaseWait
	}
	ctx := r.Context()
	wake, unsubscribe := s.notifier.Subscribe()
	defer unsubscribe()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(recheck)
	defer tick.Stop()
	for {
		select {
		case <-s.draining:
			w.WriteHeader(http.StatusNoContent)
			return nil
		default:
		}
		claimed := time.Now()
		l, err := s.orch.LeaseAny(ctx, c.Subject, c.Labels, s.cfg.TTL)
		if err == nil {
			return s.sendLease(w, r, l, claimed)
		}
		if core.KindOf(err) != core.KindNotFound {
			return err
		}
		select {
		case <-wake:
		case <-tick.C:
		case <-deadline.C:
			w.WriteHeader(http.StatusNoContent)
			return nil
		case <-s.draining:
			w.WriteHeader(http.StatusNoContent)
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// sendLease answers a lease request with l, claimed by the claim begun at
// claimed. When the answer cannot be made or sent, the lease is handed
// back so the attempt is not left to expire.
func (s *Server) sendLease(w http.ResponseWriter, r *http.Request, l orchestrator.Leased, claimed time.Time) (err error) {
	ctx, span := s.leaseSpans(context.WithoutCancel(r.Context()), l, claimed)
	defer func() { telemetry.End(span, err) }()
	a := l.Attempt
	f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
	s.metrics.QueueWait.Observe(a.LeasedAt.Sub(a.QueuedAt).Seconds())
	body, err := s.leaseBody(ctx, l)
	body.TraceParent = telemetry.TraceParent(ctx)
	if err != nil && !unservable(err) {
		// Not the job's fault (the database failed): hand the lease back,
		// and the runner asks again.
		if rerr := s.orch.Release(ctx, a.RunnerID, f); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	if err != nil {
		// A job that cannot be given out (a secret missing on the server)
		// ends now, with the reason in its log, instead of being retried.
		msg := "deltaci: " + err.Error() + "\n"
		_, _ = s.st.AppendLog(ctx, f, 0, []byte(msg))
		if cerr := s.orch.CompleteAttempt(ctx, a.RunnerID, a, f, orchestrator.Outcome{State: core.AttemptErrored, Reason: core.ReasonConfigError}); cerr != nil {
			return errors.Join(err, cerr)
		}
		s.metrics.Attempts.WithLabelValues(string(core.AttemptErrored), string(core.ReasonConfigError)).Inc()
		s.seal(ctx, a.ID)
		s.log.WarnContext(ctx, "attempt not handed out", slog.String("attempt_id", a.ID), slog.Any("err", err))
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	s.log.InfoContext(ctx, "attempt leased", slog.String("run_id", a.RunID), slog.String("job", l.Job.Name),
		slog.String("attempt_id", a.ID), slog.String("runner_id", a.RunnerID))
	// A runner gone before the answer, or an answer that cannot be written,
	// means the runner never got it: hand it back rather than wait out the
	// TTL. (A runner that drops the connection after reading it may close
	// it before this handler returns, so only these two are evidence.)
	if r.Context().Err() != nil || encodeTo(w, http.StatusOK, body) != nil {
		if rerr := s.orch.Release(ctx, a.RunnerID, f); rerr != nil {
			s.log.WarnContext(ctx, "releasing an undelivered lease", slog.String("attempt_id", a.ID), slog.Any("err", rerr))
		}
	}
	return nil
}

// unservable reports whether a leaseBody error is the job's own, which a
// retry cannot mend: a secret missing or not allowed, its project gone.
func unservable(err error) bool {
	k := core.KindOf(err)
	return k == core.KindInvalid || k == core.KindNotFound
}

// leaseBody builds what the runner gets for a leased attempt.
func (s *Server) leaseBody(ctx context.Context, l orchestrator.Leased) (protocol.Lease, error) {
	a, j, run := l.Attempt, l.Job, l.Run
	tok, err := s.cfg.Keys.IssueJobToken(a.RunnerID, a.RunID, a.ID, a.LeaseExpiresAt)
	if err != nil {
		return protocol.Lease{}, err
	}
	body := protocol.Lease{
		AttemptID: a.ID, AttemptNumber: a.Number, LeaseToken: a.LeaseToken,
		TTLMillis: s.cfg.TTL.Milliseconds(), LeaseExpiresAt: a.LeaseExpiresAt.UTC(), JobToken: tok,
		RunID: run.ID, Repo: run.Repo, Ref: run.Ref, Commit: run.Commit, Trusted: run.Trusted,
		JobID: j.ID, Job: j.Name, Digest: j.Digest, Script: j.Spec.Run, Env: j.Spec.Env,
		TimeoutMillis: j.Spec.Timeout.Milliseconds(), Network: j.Spec.Sandbox.Network,
		Outputs: j.Spec.Outputs, Reports: j.Spec.Reports, Needs: []protocol.NeedOutputs{},
	}
	if j.Spec.Hermetic {
		body.Hermetic, body.Inputs = true, j.Spec.Inputs
	}
	if body.Env == nil {
		body.Env = map[string]string{}
	}
	if body.Outputs == nil {
		body.Outputs = []string{}
	}
	// The project is read only when its policy decides something: a
	// trusted job with secrets, an untrusted one asking for network.
	var proj core.Project
	if run.Project != "" && ((run.Trusted && len(j.Spec.Secrets) > 0) || (!run.Trusted && body.Network)) {
		if proj, err = s.st.Project(ctx, run.Project); err != nil {
			return protocol.Lease{}, fmt.Errorf("project of run %s: %w", run.ID, err) // not found: removed since
		}
		if !run.Trusted && !proj.UntrustedNetwork {
			body.Network = false
			body.NetworkDenied = true
		}
	}
	if len(j.Spec.Secrets) > 0 {
		if !run.Trusted {
			body.WithheldSecrets = j.Spec.Secrets
		} else if s.cfg.Secrets == nil {
			return protocol.Lease{}, core.E(core.KindInvalid, "secrets", "the job asks for secrets %v, but this server has no secret provider", j.Spec.Secrets)
		} else if denied := notAllowed(proj, run, j.Spec.Secrets); len(denied) > 0 {
			return protocol.Lease{}, core.E(core.KindInvalid, "secrets", "the job asks for secrets %v, which project %s may not receive (add them with deltaci projects set --secrets)", denied, run.Project)
		} else {
			vals, err := secret.Resolve(ctx, s.cfg.Secrets, j.Spec.Secrets)
			if err != nil {
				return protocol.Lease{}, err
			}
			body.Secrets = make(map[string]string, len(vals))
			for name, v := range vals {
				body.Secrets[name] = v.Reveal()
			}
		}
	}
	if body.Needs, err = s.needs(ctx, a, j); err != nil {
		return protocol.Lease{}, err
	}
	body.Cache = s.leaseCache(ctx, run, j)
	return body, nil
}

// notAllowed lists the secret names a run's project may not receive. Runs
// outside a project (made before projects existed) may receive none.
func notAllowed(p core.Project, run core.Run, names []string) []string {
	var out []string
	for _, n := range names {
		if run.Project == "" || !slices.Contains(p.Secrets, n) {
			out = append(out, n)
		}
	}
	return out
}

// needs lists the outputs manifests of the jobs j needs: of the attempt
// that succeeded, or of the one a reused job stands for.
func (s *Server) needs(ctx context.Context, a core.Attempt, j core.Job) ([]protocol.NeedOutputs, error) {
	out := []protocol.NeedOutputs{}
	if len(j.Spec.Needs) == 0 {
		return out, nil
	}
	jobs, err := s.st.Jobs(ctx, a.RunID)
	if err != nil {
		return nil, err
	}
	attempts, err := s.st.Attempts(ctx, a.RunID)
	if err != nil {
		return nil, err
	}
	succeeded := map[string]string{}
	for _, at := range attempts {
		if at.State == core.AttemptSucceeded {
			succeeded[at.JobID] = at.ID
		}
	}
	for _, up := range jobs {
		if !slices.Contains(j.Spec.Needs, up.Name) {
			continue
		}
		from := succeeded[up.ID]
		if up.State == core.JobReused {
			from = up.ReusedFrom
		}
		if from == "" || len(up.Spec.Outputs) == 0 {
			continue // skipped, or a job without outputs: nothing to restore
		}
		d, err := s.cfg.Registry.Resolve(ctx, results.OutputsRef(from))
		if err != nil {
			return nil, core.Wrap(core.KindOf(err), "outputs of "+up.Name, err)
		}
		out = append(out, protocol.NeedOutputs{Job: up.Name, Manifest: d.String()})
	}
	return out, nil
}

func fenced(w http.ResponseWriter, r *http.Request) (store.Fence, error) {
	var req protocol.Fenced
	if err := decodeJSON(w, r, false, &req); err != nil {
		return store.Fence{}, err
	}
	if req.LeaseToken == "" {
		return store.Fence{}, core.E(core.KindInvalid, "attempt write", "lease_token is required")
	}
	return store.Fence{AttemptID: r.PathValue("id"), LeaseToken: req.LeaseToken}, nil
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) error {
	runnerID, seen, err := s.attemptWriter(r, r.PathValue("id"), false)
	if err != nil {
		return err
	}
	f, err := fenced(w, r)
	if err != nil {
		return err
	}
	var read core.Attempt // the attempt the session token's check read
	if seen != nil {
		read = *seen
	}
	cancel, a, err := s.orch.Heartbeat(r.Context(), f, s.cfg.TTL, read)
	if err != nil {
		return err
	}
	tok, err := s.cfg.Keys.IssueJobToken(runnerID, a.RunID, a.ID, a.LeaseExpiresAt)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.HeartbeatResponse{Cancel: cancel, LeaseExpiresAt: a.LeaseExpiresAt.UTC(), JobToken: tok})
	return nil
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) error {
	runnerID, err := s.sessionRunner(r)
	if err != nil {
		return err
	}
	f, err := fenced(w, r)
	if err != nil {
		return err
	}
	f.RunnerID = runnerID
	// A start moves a leased attempt: the fenced update checks it all, and
	// reads the attempt only when it does not apply.
	seen := core.Attempt{ID: f.AttemptID, LeaseToken: f.LeaseToken, State: core.AttemptLeased, RunnerID: runnerID}
	if err := s.orch.StartAttempt(r.Context(), runnerID, seen, f); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) release(w http.ResponseWriter, r *http.Request) error {
	runnerID, _, err := s.attemptWriter(r, r.PathValue("id"), false)
	if err != nil {
		return err
	}
	f, err := fenced(w, r)
	if err != nil {
		return err
	}
	if err := s.orch.Release(r.Context(), runnerID, f); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	runnerID, err := s.sessionRunner(r)
	if err != nil {
		return err
	}
	var req protocol.CompleteRequest
	if err := decodeJSON(w, r, false, &req); err != nil {
		return err
	}
	if req.LeaseToken == "" {
		return core.E(core.KindInvalid, "complete", "lease_token is required")
	}
	st, err := core.ParseAttemptState(string(req.State))
	if err != nil || !st.Terminal() {
		return core.E(core.KindInvalid, "complete", "state must be a final attempt state (succeeded, failed, timed_out, canceled, errored), got %q", req.State)
	}
	if st == core.AttemptLost {
		return core.E(core.KindInvalid, "complete", "lost is the server's verdict, not a runner's")
	}
	if _, err := core.ParseReason(string(req.Reason)); err != nil {
		return err
	}
	if !runnerReason(st, req.Reason) {
		return core.E(core.KindInvalid, "complete", "reason %q does not go with state %s", req.Reason, st)
	}
	if req.ExitCode != nil && (*req.ExitCode < 0 || *req.ExitCode > 255) {
		return core.E(core.KindInvalid, "complete", "exit_code must be 0 to 255, got %d", *req.ExitCode)
	}
	ctx := r.Context()
	f := store.Fence{AttemptID: id, LeaseToken: req.LeaseToken, RunnerID: runnerID}
	out := orchestrator.Outcome{State: st, Reason: req.Reason, ExitCode: req.ExitCode}
	if req.ReportsManifest != "" {
		// Recorded before the completion, which queues the analysis that
		// reads them.
		if done, err := s.recordReports(ctx, w, f, st, req.ReportsManifest); err != nil || done {
			return err
		}
	}
	// Recorded before the completion, so that whoever sees the attempt
	// ended sees its cache too; only while the lease holds.
	s.recordCache(ctx, f, req.Cache, st)
	if st != core.AttemptSucceeded {
		// Nothing to record in the artifact store: the outcome alone,
		// which CompleteAttempt checks against the attempt it reads.
		if err := s.orch.CompleteAttempt(ctx, runnerID, core.Attempt{}, f, out); err != nil {
			return err
		}
		// The attempt was not read: its log may hold bytes to seal.
		return s.completed(w, id, st, req.Reason, true)
	}
	var (
		a       core.Attempt
		j       core.Job
		run     core.Run
		outputs digest.Digest
	)
	if req.OutputsManifest == "" {
		// Checked by the completion against the job it reads or moves.
		out.NoOutputs = true
		out.Ended = func(aa core.Attempt, jj core.Job) { a, j = aa, jj }
	} else {
		if outputs, err = digest.Parse(req.OutputsManifest); err != nil {
			return core.Wrap(core.KindInvalid, "complete: outputs_manifest", err)
		}
		// The outputs are recorded before the completion, so that the
		// dependents it queues find them: only for a completion that
		// stands a chance, so that a refused one leaves nothing behind.
		if a, err = s.st.Attempt(ctx, id); err != nil {
			return err
		}
		if a.RunnerID != runnerID || a.LeaseToken != f.LeaseToken {
			return core.E(core.KindLeaseLost, "complete", "attempt %s: lease is no longer held", id)
		}
		if a.State == st {
			// A retried completion whose answer was lost: the same answer.
			writeJSON(w, http.StatusOK, protocol.CompleteResponse{AttemptID: id, State: st})
			return nil
		}
		if a.State.Terminal() {
			return core.E(core.KindLeaseLost, "complete", "attempt %s already ended %s", id, a.State)
		}
		if err := core.CheckAttempt(a.State, st); err != nil {
			return fmt.Errorf("complete attempt %s: %w", id, err)
		}
		if j, run, err = s.st.JobRun(ctx, a.JobID); err != nil {
			return err
		}
		if err := s.results(run).RecordOutputs(ctx, a, j, outputs); err != nil {
			return err
		}
	}
	if err := s.orch.CompleteAttempt(ctx, runnerID, a, f, out); err != nil {
		return err
	}
	// Only a completion that won its fence becomes a reusable result; it
	// is recorded even if the runner hangs up now.
	if results.Reusable(j) {
		ctx := context.WithoutCancel(ctx)
		err := error(nil)
		if run.ID == "" {
			run, err = s.st.Run(ctx, a.RunID)
		}
		if err == nil {
			err = s.results(run).RecordResult(ctx, a, j, outputs)
		}
		if err != nil {
			s.log.WarnContext(ctx, "recording the result", slog.String("attempt_id", id), slog.Any("err", err))
		}
	}
	return s.completed(w, id, st, req.Reason, a.LogLength > 0)
}

// completed counts a recorded completion, has its log sealed when it has
// one (the sweep's tick finds any other) and answers.
func (s *Server) completed(w http.ResponseWriter, id string, st core.AttemptState, reason core.Reason, logged bool) error {
	if reason == core.ReasonNone {
		reason = core.AttemptOutcome(st)
	}
	s.metrics.Attempts.WithLabelValues(string(st), string(reason)).Inc()
	s.analyzer.Wake()
	if logged {
		s.kickSweep()
	}
	writeJSON(w, http.StatusOK, protocol.CompleteResponse{AttemptID: id, State: st})
	return nil
}

// runnerReasons are the reasons a runner may give for each final state;
// the others (runner_lost, released, upstream_failed) are the server's.
var runnerReasons = map[core.AttemptState][]core.Reason{
	core.AttemptSucceeded: {core.ReasonNone},
	core.AttemptFailed:    {core.ReasonNone, core.ReasonExitCode, core.ReasonResourceLimit, core.ReasonConfigError},
	core.AttemptTimedOut:  {core.ReasonNone, core.ReasonTimeout},
	core.AttemptCanceled:  {core.ReasonNone, core.ReasonCanceled},
	core.AttemptErrored:   {core.ReasonNone, core.ReasonInfraError, core.ReasonConfigError, core.ReasonResourceLimit},
}

func runnerReason(st core.AttemptState, r core.Reason) bool {
	return slices.Contains(runnerReasons[st], r)
}

// recordReports records the reports manifest of a completion that stands
// a chance (its lease holds and the attempt has not ended). It reports
// true when it answered already: a completion sent again.
func (s *Server) recordReports(ctx context.Context, w http.ResponseWriter, f store.Fence, st core.AttemptState, manifest string) (bool, error) {
	d, err := digest.Parse(manifest)
	if err != nil {
		return false, core.Wrap(core.KindInvalid, "complete: reports_manifest", err)
	}
	a, err := s.st.Attempt(ctx, f.AttemptID)
	if err != nil {
		return false, err
	}
	if a.RunnerID != f.RunnerID || a.LeaseToken != f.LeaseToken {
		return false, core.E(core.KindLeaseLost, "complete", "attempt %s: lease is no longer held", f.AttemptID)
	}
	if a.State == st {
		writeJSON(w, http.StatusOK, protocol.CompleteResponse{AttemptID: a.ID, State: st})
		return true, nil
	}
	if a.State.Terminal() {
		return false, core.E(core.KindLeaseLost, "complete", "attempt %s already ended %s", a.ID, a.State)
	}
	run, err := s.st.Run(ctx, a.RunID)
	if err != nil {
		return false, err
	}
	return false, s.results(run).RecordReports(ctx, a, d)
}
