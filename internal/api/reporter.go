package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/forge"
	"github.com/deltaci/deltaci/internal/secret"
	"github.com/deltaci/deltaci/internal/store"
)

// The Status Reporter: every move of a run that reports to a forge, or of
// one of its jobs, bumps its status context in the outbox in the move's own
// transaction (a trigger on the events table); this loop, on every
// replica, claims due contexts and posts each one's state as it is when
// posted. A context is held by one claim at a time and the version a post
// covered only grows, so an older state never overwrites a newer one.

// Defaults of the Status Reporter.
const (
	// DefaultStatusPoll is how often a replica looks for statuses to post.
	DefaultStatusPoll = 200 * time.Millisecond
	// DefaultStatusRetryMax caps the wait between tries of a status the
	// forge did not take.
	DefaultStatusRetryMax = 5 * time.Minute
	// DefaultStatusLease bounds one post; past it another replica may post
	// the context. It is well above statusPostTimeout, so a post in flight
	// has ended before another can begin.
	DefaultStatusLease = 30 * time.Second
	statusPostTimeout  = 15 * time.Second
	statusBatch        = 16
	// statusRetryBase is the first wait after a failed post.
	statusRetryBase = time.Second
)

// runReporter posts due statuses until ctx ends.
func (s *Server) runReporter(ctx context.Context) {
	t := time.NewTicker(s.cfg.StatusPoll)
	defer t.Stop()
	for {
		n, oldest, err := s.st.StatusBacklog(ctx)
		if err == nil {
			s.metrics.OutboxDepth.Set(float64(n))
			age := 0.0
			if !oldest.IsZero() {
				age = time.Since(oldest).Seconds()
			}
			s.metrics.OutboxOldest.Set(age)
		}
		for err == nil && n > 0 && ctx.Err() == nil {
			var rows []store.StatusRow
			if rows, err = s.st.ClaimStatuses(ctx, statusBatch, s.cfg.StatusLease); err != nil {
				if ctx.Err() == nil {
					s.log.WarnContext(ctx, "claiming commit statuses", slog.Any("err", err))
				}
				break
			}
			for _, r := range rows {
				if time.Until(r.LeaseUntil) < s.postTimeout() {
					// Posts before it took long: what is left of its lease
					// could end while it is in flight, so another replica
					// could post it at the same time. Hand it back.
					if err := s.st.RetryStatus(context.WithoutCancel(ctx), r, 0, r.LastError); err != nil {
						s.log.WarnContext(ctx, "handing a commit status back", slog.String("run_id", r.RunID), slog.Any("err", err))
					}
					continue
				}
				s.postStatus(ctx, r)
			}
			if len(rows) < statusBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// postStatus posts one claimed context's state and records the outcome.
func (s *Server) postStatus(ctx context.Context, r store.StatusRow) {
	bg := context.WithoutCancel(ctx)
	log := s.log.With(slog.String("run_id", r.RunID), slog.String("job_id", r.JobID))
	f, err := s.st.RunForge(ctx, r.RunID)
	var st forge.Status
	if err == nil {
		st, err = s.composeStatus(ctx, r)
	}
	if core.KindOf(err) == core.KindNotFound {
		// The run or job is gone (pruned): nothing left to show.
		s.recordStatus(bg, log, r, "", "nothing to post: "+err.Error())
		return
	}
	if err != nil {
		s.retryStatus(bg, log, r, f.Kind, 0, err)
		return
	}
	shown := string(st.State) + " " + st.Description
	if shown == r.PostedState {
		s.recordStatus(bg, log, r, shown, "")
		return
	}
	var tok secret.Value
	if s.cfg.Secrets == nil {
		err = core.E(core.KindNotFound, "forge token", "the server has no secret provider to read %s from", f.TokenSecret)
	} else {
		tok, err = s.cfg.Secrets.Lookup(ctx, f.TokenSecret)
	}
	if err != nil {
		// The operator can set it; until then, keep trying, slowly.
		s.retryStatus(bg, log, r, f.Kind, 0, fmt.Errorf("forge token: %w", err))
		return
	}
	// A post ends well within the claim's lease, so no other replica can
	// post the context while it is in flight.
	pctx, cancel := context.WithTimeout(ctx, s.postTimeout())
	err = forge.Post(pctx, s.forgeClient, forge.Target{
		Kind: forge.Kind(f.Kind), APIURL: f.APIURL, Repo: f.Repo, Commit: f.Commit, Token: tok.Reveal(),
	}, st)
	cancel()
	if err == nil {
		s.metrics.StatusLatency.WithLabelValues(f.Kind).Observe(time.Since(r.ChangedAt).Seconds())
		log.DebugContext(ctx, "commit status posted", slog.String("context", st.Context), slog.String("state", string(st.State)))
		s.recordStatus(bg, log, r, shown, "")
		return
	}
	var pe *forge.PostError
	if forge.Retryable(err) || ctx.Err() != nil {
		var after time.Duration
		if errors.As(err, &pe) {
			after = pe.RetryAfter
		}
		s.retryStatus(bg, log, r, f.Kind, after, err)
		return
	}
	// Refused for good (a 404 repository, a 422 state): trying the same
	// again will not help; the next move tries again.
	s.metrics.StatusFailures.WithLabelValues(f.Kind, "refused").Inc()
	log.ErrorContext(ctx, "forge refused a commit status", slog.String("context", st.Context), slog.String("forge", f.Kind),
		slog.String("repo", f.Repo), slog.Any("err", err))
	s.recordStatus(bg, log, r, "", err.Error())
}

// postTimeout bounds one status post: half a claim's lease at most.
func (s *Server) postTimeout() time.Duration { return min(statusPostTimeout, s.cfg.StatusLease/2) }

func (s *Server) recordStatus(ctx context.Context, log *slog.Logger, r store.StatusRow, shown, lastErr string) {
	if err := s.st.FinishStatus(ctx, r, shown, lastErr); err != nil {
		log.WarnContext(ctx, "recording a commit status", slog.Any("err", err))
	}
}

func (s *Server) retryStatus(ctx context.Context, log *slog.Logger, r store.StatusRow, kind string, after time.Duration, cause error) {
	wait := max(backoff(r.Tries-1, statusRetryBase, s.cfg.StatusRetryMax), min(after, s.cfg.StatusRetryMax))
	s.metrics.StatusFailures.WithLabelValues(kind, "retry").Inc()
	log.WarnContext(ctx, "commit status will be posted again", slog.Int("tries", r.Tries), slog.Duration("wait", wait), slog.Any("err", cause))
	if err := s.st.RetryStatus(ctx, r, wait, cause.Error()); err != nil {
		log.WarnContext(ctx, "recording a commit status", slog.Any("err", err))
	}
}

// Descriptions are cut by the forge client to each forge's limit.
func (s *Server) composeStatus(ctx context.Context, r store.StatusRow) (forge.Status, error) {
	run, err := s.st.Run(ctx, r.RunID)
	if err != nil {
		return forge.Status{}, err
	}
	if r.JobID == "" {
		return s.runStatus(ctx, run)
	}
	j, err := s.st.Job(ctx, r.JobID)
	if err != nil {
		return forge.Status{}, err
	}
	return s.jobStatus(ctx, run, j)
}

// statusContext is the check name of the run ("deltaci") or of one job.
func statusContext(job string) string {
	if job == "" {
		return "deltaci"
	}
	return "deltaci/" + job
}

func (s *Server) runStatus(ctx context.Context, run core.Run) (forge.Status, error) {
	st := forge.Status{Context: statusContext(""), TargetURL: s.runURL(run.ID, "")}
	switch run.State {
	case core.RunQueued, core.RunPlanning:
		st.State, st.Description = forge.Pending, "queued"
		return st, nil
	case core.RunCanceled:
		st.State, st.Description = forge.Canceled, "canceled"
		return st, nil
	case core.RunErrored:
		msg, err := s.st.RunMessage(ctx, run.ID)
		if err != nil {
			return st, err
		}
		first, _, _ := strings.Cut(msg, "\n")
		if strings.TrimSpace(first) == "" {
			first = strings.ReplaceAll(string(run.Reason), "_", " ")
		}
		st.State, st.Description = forge.Failure, "error: "+first
		return st, nil
	}
	jobs, err := s.st.Jobs(ctx, run.ID)
	if err != nil {
		return st, err
	}
	var done, reused, skipped int
	var failed []string
	for _, j := range jobs {
		switch {
		case j.State == core.JobReused:
			reused++
		case j.State == core.JobSkipped:
			skipped++
		case j.State == core.JobFailed || j.State == core.JobUpstreamFailed || j.State == core.JobCanceled:
			failed = append(failed, j.Name)
		}
		if j.State.Terminal() {
			done++
		}
	}
	switch run.State {
	case core.RunRunning:
		st.State, st.Description = forge.Running, fmt.Sprintf("running: %d of %d jobs done", done, len(jobs))
	case core.RunCanceling:
		st.State, st.Description = forge.Running, "canceling"
	case core.RunSucceeded:
		st.State = forge.Success
		st.Description = fmt.Sprintf("%d %s passed", len(jobs), plural(len(jobs), "job", "jobs"))
		if reused+skipped > 0 {
			st.Description += fmt.Sprintf(" (%d reused, %d skipped)", reused, skipped)
		}
	default: // failed
		st.State = forge.Failure
		shown := failed[:min(len(failed), 3)]
		st.Description = "failed: " + strings.Join(shown, ", ")
		if len(failed) > len(shown) {
			st.Description += fmt.Sprintf(" and %d more", len(failed)-len(shown))
		}
	}
	return st, nil
}

func (s *Server) jobStatus(ctx context.Context, run core.Run, j core.Job) (forge.Status, error) {
	st := forge.Status{Context: statusContext(j.Name), TargetURL: s.runURL(run.ID, j.Name)}
	switch j.State {
	case core.JobPending:
		st.State, st.Description = forge.Pending, "waiting for "+strings.Join(j.Spec.Needs, ", ")
		if len(j.Spec.Needs) == 0 {
			st.Description = "queued"
		}
	case core.JobQueued:
		st.State, st.Description = forge.Pending, "queued"
	case core.JobRunning:
		st.State, st.Description = forge.Running, "running"
	case core.JobSucceeded:
		st.State, st.Description = forge.Success, "passed"
		if d := j.FinishedAt.Sub(j.StartedAt); !j.StartedAt.IsZero() && d > 0 {
			st.Description = "passed in " + d.Round(time.Second).String()
		}
	case core.JobReused:
		st.State, st.Description = forge.Success, "reused: same inputs as an earlier run"
		if a, err := s.st.Attempt(ctx, j.ReusedFrom); err == nil {
			st.Description = "reused: same inputs as run " + a.RunID
		} else if core.KindOf(err) != core.KindNotFound {
			return st, err
		}
	case core.JobSkipped:
		st.State, st.Description = forge.Success, "skipped: "+j.Explain
	case core.JobUpstreamFailed:
		st.State, st.Description = forge.Failure, "not run: a job it needs did not succeed"
	case core.JobCanceled:
		st.State, st.Description = forge.Canceled, "canceled"
	default: // failed
		st.State, st.Description = forge.Failure, "failed"
		if err := s.failedJobText(ctx, run, j, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// failedJobText says how a failed job failed: its last attempt's reason
// and exit code.
func (s *Server) failedJobText(ctx context.Context, run core.Run, j core.Job, st *forge.Status) error {
	if j.Reason == core.ReasonNotRerun {
		st.Description = "failed in the run this one reruns, and not run again"
		return nil
	}
	attempts, err := s.st.Attempts(ctx, run.ID)
	if err != nil {
		return err
	}
	var last *core.Attempt
	for i := range attempts {
		if attempts[i].JobID == j.ID {
			last = &attempts[i]
		}
	}
	switch {
	case last == nil:
	case last.ExitCode != nil && last.Reason == core.ReasonExitCode:
		st.Description = fmt.Sprintf("failed: exit code %d", *last.ExitCode)
	case last.Reason != core.ReasonNone:
		st.Description = "failed: " + strings.ReplaceAll(string(last.Reason), "_", " ")
	}
	if last != nil {
		if a, err := s.st.Analysis(ctx, last.ID); err == nil {
			if d := failedTestsText(a); d != "" {
				st.Description = d
			}
		} else if core.KindOf(err) != core.KindNotFound {
			return err
		}
	}
	if last != nil && last.Number > 1 {
		st.Description += fmt.Sprintf(" (attempt %d)", last.Number)
	}
	return nil
}

// failedTestsText says which tests an analyzed attempt failed, as "3 tests
// failed: TestA, TestB, +1", or "" when its reports name none.
func failedTestsText(a core.Analysis) string {
	n := a.Totals.Failed + a.Totals.Errored
	if n == 0 || len(a.Failures) == 0 {
		return ""
	}
	const named = 2
	var names []string
	for _, f := range a.Failures[:min(named, len(a.Failures))] {
		name := f.Name
		if r := []rune(name); len(r) > 40 {
			name = string(r[:39]) + "…"
		}
		names = append(names, name)
	}
	text := fmt.Sprintf("%d %s failed: %s", n, plural(n, "test", "tests"), strings.Join(names, ", "))
	if n > len(names) {
		text += fmt.Sprintf(", +%d", n-len(names))
	}
	return text
}

// runURL links a status to the run's page (and a job's place on it), when
// the server knows its external URL.
func (s *Server) runURL(runID, job string) string {
	if s.cfg.ExternalURL == "" {
		return ""
	}
	u := strings.TrimSuffix(s.cfg.ExternalURL, "/") + "/runs/" + url.PathEscape(runID)
	if job != "" {
		u += "/jobs/" + url.PathEscape(job)
	}
	return u
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// newForgeClient is the HTTP client statuses are posted with; forge.Post
// refuses redirects itself, so a token never goes on to another host.
func newForgeClient() *http.Client { return &http.Client{Timeout: statusPostTimeout} }
