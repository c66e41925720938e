package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// listRuns answers GET /runs: a page of run history, newest first, for
// any signed-in user. The runs come without their jobs (GET /runs/{id}).
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.user(r); err != nil {
		return err
	}
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "project", "ref", "state", "event", "limit", "cursor":
		default:
			return core.E(core.KindInvalid, "list runs", "unknown query parameter %q (want project, ref, state, event, limit or cursor)", k)
		}
	}
	f := store.RunFilter{Project: q.Get("project"), Ref: q.Get("ref"), State: q.Get("state"), Event: q.Get("event"), Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return core.E(core.KindInvalid, "list runs", "limit %q is not a page size: give 1 to %d", l, store.MaxRunPage)
		}
		f.Limit = n
	}
	page, err := s.st.ListRuns(r.Context(), f)
	if err != nil {
		return err
	}
	out := protocol.RunList{Runs: make([]protocol.RunSummary, 0, len(page.Runs)), NextCursor: page.Next}
	for _, run := range page.Runs {
		out.Runs = append(out.Runs, protocol.RunSummary{
			ID: run.ID, Project: run.Project, Repo: run.Repo, Ref: run.Ref, Commit: run.Commit, Event: run.Event,
			Trusted: run.Trusted, TrustReason: run.TrustReason, State: string(run.State), Reason: string(run.Reason),
			RerunOf: run.RerunOf, CreatedAt: run.CreatedAt.UTC(), StartedAt: ts(run.StartedAt), FinishedAt: ts(run.FinishedAt),
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// rerunRun answers POST /runs/{id}/rerun: a new run of the same project,
// ref, commit and event that runs again the jobs that did not succeed (or
// the one the body names, and those that need it and did not succeed) and
// reuses the original's results for the rest. Its trust is derived again
// as for a new run, and never exceeds the original's.
func (s *Server) rerunRun(w http.ResponseWriter, r *http.Request) error {
	who, err := s.runStarter(r)
	if err != nil {
		return err
	}
	var req protocol.RerunRequest
	if err := decodeJSON(w, r, true, &req); err != nil {
		return err
	}
	out, err := s.Rerun(r.Context(), who.actor, r.PathValue("id"), req.Job)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// Rerun makes a new run of the same project, ref, commit and event as
// run id that runs again the jobs that did not succeed (or job, and those
// that need it and did not succeed) and reuses the original's results for
// the rest, on behalf of actor, and returns it. The caller has checked
// that actor may start runs. Errors: core.KindNotFound for an unknown run
// or job, core.KindConflict for a run that has not ended or has nothing
// to run again.
func (s *Server) Rerun(ctx context.Context, actor, id, job string) (protocol.Run, error) {
	orig, err := s.st.Run(ctx, id)
	if err != nil {
		return protocol.Run{}, err
	}
	const op = "rerun"
	if !orig.State.Terminal() {
		return protocol.Run{}, core.E(core.KindConflict, op, "run %s is %s: only a run that has ended can be rerun (cancel it first)", orig.ID, orig.State)
	}
	if orig.Project == "" {
		return protocol.Run{}, core.E(core.KindInvalid, op, "run %s belongs to no project", orig.ID)
	}
	jobs, err := s.st.Jobs(ctx, orig.ID)
	if err != nil {
		return protocol.Run{}, err
	}
	attempts, err := s.st.Attempts(ctx, orig.ID)
	if err != nil {
		return protocol.Run{}, err
	}
	plan, err := rerunJobs(orig, jobs, attempts, job)
	if err != nil {
		return protocol.Run{}, err
	}
	proj, err := s.st.Project(ctx, orig.Project)
	if err != nil {
		return protocol.Run{}, err
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), planTimeout)
	defer cancel()
	unlock, err := s.planning.lock(pctx, proj.Name)
	if err != nil {
		return protocol.Run{}, core.E(core.KindUnavailable, op, "project %s is still planning an earlier run after %s", proj.Name, planTimeout)
	}
	trusted, why, err := s.rerunTrust(pctx, proj, orig)
	if err != nil {
		unlock()
		return protocol.Run{}, err
	}
	nr := store.NewRun{
		Project: proj.Name, Repo: orig.Repo, Ref: orig.Ref, Commit: orig.Commit, Event: orig.Event,
		Trusted: trusted, TrustReason: why, RerunOf: orig.ID, Jobs: plan, Forge: runForge(proj, orig.Commit),
	}
	// A rerun compares with the base its original was planned against.
	if base, err := s.st.RunBase(pctx, orig.ID); err == nil {
		nr.Base = base.Commit
		if base.ChangedPaths >= 0 {
			nr.ChangedPaths = &base.ChangedPaths
		}
	}
	run, _, err := s.st.CreateRun(pctx, actor, nr)
	if err == nil {
		err = s.orch.StartRun(pctx, run.ID)
	}
	unlock()
	if err != nil {
		return protocol.Run{}, err
	}
	s.log.InfoContext(ctx, "rerun created", slog.String("run_id", run.ID), slog.String("rerun_of", orig.ID),
		slog.String("project", proj.Name), slog.String("job", job), slog.Bool("trusted", trusted),
		slog.String("trust", why), slog.String("actor", actor))
	return s.runBody(pctx, run.ID)
}

// rerunTrust derives a rerun's trust as createRun derives a new run's,
// from the server's own fetch of the project, and keeps a rerun of an
// untrusted run untrusted.
func (s *Server) rerunTrust(ctx context.Context, proj core.Project, orig core.Run) (bool, string, error) {
	if !orig.Trusted {
		return false, fmt.Sprintf("rerun of untrusted run %s: %s", orig.ID, orig.TrustReason), nil
	}
	repo := proj.RepoURL
	if repo != orig.Repo {
		return false, fmt.Sprintf("project %s is now the repository %s, not %s", proj.Name, repo, orig.Repo), nil
	}
	mirror, err := s.fetch(ctx, repo, func(ctx context.Context) (string, error) { return s.cfg.Mirrors.Fetch(ctx, repo) })
	if err != nil {
		return false, "", err
	}
	if _, err := s.fetch(ctx, repo, func(ctx context.Context) (string, error) { return s.cfg.Mirrors.Ensure(ctx, repo, orig.Commit) }); err != nil {
		return false, "", err
	}
	branch, _ := strings.CutPrefix(orig.Ref, "refs/heads/")
	if branch == orig.Ref {
		branch = ""
	}
	tip := ""
	if branch != "" {
		if tip, err = gitx.ResolveRev(ctx, mirror, "refs/heads/"+branch); err != nil {
			return false, fmt.Sprintf("branch %s is no longer in project %s as the server fetched it", branch, proj.Name), nil
		}
	}
	return s.trust(ctx, mirror, proj, orig.Event, branch, tip, orig.Commit)
}

// rerunJobs plans a rerun of orig from its jobs (in pipeline order) and
// attempts, without planning the commit again: a job that succeeded is
// reused from the attempt that succeeded, a reused or skipped job stays
// so, and the jobs chosen run again. With only empty they are the jobs
// that did not succeed; with only set, that job and the jobs that need it
// (directly or not) and did not succeed, and the other jobs that did not
// succeed end failed at once (reason not_rerun).
//
// Errors: core.KindNotFound for a job orig does not have; core.KindConflict
// when there is nothing to run again, or when the job chosen needs a job
// that did not succeed.
func rerunJobs(orig core.Run, jobs []core.Job, attempts []core.Attempt, only string) ([]store.NewJob, error) {
	const op = "rerun"
	if len(jobs) == 0 {
		return nil, core.E(core.KindConflict, op, "run %s has no jobs (it ended %s before any was planned): start a new run", orig.ID, orig.State)
	}
	succeeded := map[string]core.Attempt{}
	for _, a := range attempts {
		if a.State == core.AttemptSucceeded {
			succeeded[a.JobID] = a
		}
	}
	// ok reports whether the job's result can stand in the rerun.
	ok := func(j core.Job) bool {
		if j.State == core.JobSucceeded {
			_, has := succeeded[j.ID]
			return has
		}
		return j.State.Successful()
	}
	again := map[string]bool{}
	if only == "" {
		for _, j := range jobs {
			if !ok(j) {
				again[j.Name] = true
			}
		}
		if len(again) == 0 {
			return nil, core.E(core.KindConflict, op, "every job of run %s succeeded: name the job to run again", orig.ID)
		}
	} else {
		if !slices.ContainsFunc(jobs, func(j core.Job) bool { return j.Name == only }) {
			names := make([]string, len(jobs))
			for k, j := range jobs {
				names[k] = j.Name
			}
			return nil, core.E(core.KindNotFound, op, "run %s has no job %q (its jobs: %s)", orig.ID, only, strings.Join(names, ", "))
		}
		// The dependents of the job, to a fixed point; jobs are in
		// pipeline order, but a fixed point does not rely on it.
		after := map[string]bool{only: true}
		for grew := true; grew; {
			grew = false
			for _, j := range jobs {
				if after[j.Name] {
					continue
				}
				for _, n := range j.Spec.Needs {
					if after[n] {
						after[j.Name], grew = true, true
						break
					}
				}
			}
		}
		for _, j := range jobs {
			if j.Name == only || after[j.Name] && !ok(j) {
				again[j.Name] = true
			}
		}
	}
	// A job that runs again needs results: of jobs that run again too, or
	// that stand as they were.
	for _, j := range jobs {
		if !again[j.Name] {
			continue
		}
		for _, up := range jobs {
			if slices.Contains(j.Spec.Needs, up.Name) && !again[up.Name] && !ok(up) {
				return nil, core.E(core.KindConflict, op, "job %s needs %s, which ended %s in run %s and is not part of this rerun: rerun %s, or every job that did not succeed",
					j.Name, up.Name, up.State, orig.ID, up.Name)
			}
		}
	}
	out := make([]store.NewJob, 0, len(jobs))
	for _, j := range jobs {
		nj := store.NewJob{Spec: j.Spec, Digest: j.Digest}
		switch {
		case again[j.Name]:
			nj.Explain = fmt.Sprintf("runs again: it ended %s in run %s", j.State, orig.ID)
			if only != "" && j.Name == only {
				nj.Explain = fmt.Sprintf("runs again, as asked: it ended %s in run %s", j.State, orig.ID)
			}
		case j.State == core.JobSucceeded:
			a := succeeded[j.ID]
			nj.Decision, nj.ReusedFrom = core.JobReused, a.ID
			nj.Explain = fmt.Sprintf("reused from run %s attempt %d, where it succeeded", orig.ID, a.Number)
		case j.State == core.JobReused:
			nj.Decision, nj.ReusedFrom = core.JobReused, j.ReusedFrom
			nj.Explain = fmt.Sprintf("reused as in run %s: %s", orig.ID, j.Explain)
		case j.State == core.JobSkipped:
			nj.Decision = core.JobSkipped
			nj.Explain = fmt.Sprintf("skipped as in run %s: %s", orig.ID, j.Explain)
		default:
			// Left out of a one-job rerun: the failure stands, so the
			// rerun cannot end green while a job of the commit is red.
			nj.Decision = core.JobFailed
			nj.Explain = fmt.Sprintf("not part of this rerun of job %s: it ended %s in run %s, and that stands", only, j.State, orig.ID)
		}
		out = append(out, nj)
	}
	return out, nil
}
