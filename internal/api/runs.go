package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/pipeline"
	"github.com/deltaci/deltaci/internal/planner"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/results"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/telemetry"
)

// ExecutorLabel is the label that ties an attempt to runners of the
// executor its plan assumed (the executor is part of every job digest).
func ExecutorLabel(executor string) string { return "executor:" + executor }

// planTimeout bounds fetching and planning one run, waiting for the
// project's planning lock included.
const planTimeout = 5 * time.Minute

// DefaultFetchTimeout bounds one fetch of a project's repository.
const DefaultFetchTimeout = 2 * time.Minute

// results is the results store of a run: trusted runs write their
// project's shared namespace; others write one of their branch's and read
// the shared one too.
func (s *Server) results(run core.Run) *results.Store {
	shared := results.SharedOf(run.Project)
	if run.Trusted {
		return &results.Store{Reg: s.cfg.Registry, Write: shared, Read: []string{shared}, Actor: "server"}
	}
	sum := sha256.Sum256([]byte(run.Project + "\x00" + run.Repo + "\x00" + run.Ref))
	ns := "branch-" + hex.EncodeToString(sum[:8])
	return &results.Store{Reg: s.cfg.Registry, Write: ns, Read: []string{shared, ns}, Actor: "server"}
}

// protected reports whether branch matches one of the project's
// protected-branch globs.
func protected(p core.Project, branch string) bool {
	if branch == "" {
		return false
	}
	for _, g := range p.Protected {
		if ok, _ := doublestar.Match(g, branch); ok {
			return true
		}
	}
	return false
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) (err error) {
	who, err := s.runStarter(r)
	if err != nil {
		return err
	}
	var req protocol.CreateRunRequest
	if err := decodeJSON(w, r, false, &req); err != nil {
		return err
	}
	const op = "create run"
	switch {
	case req.Project == "" && req.Repo == "":
		return core.E(core.KindInvalid, op, "name the project (or its repository URL)")
	case strings.HasPrefix(req.Repo, "-"):
		return core.E(core.KindInvalid, op, "repo must be a local path or a git URL, got %q", req.Repo)
	case req.Ref != "" && (strings.HasPrefix(req.Ref, "-") || strings.ContainsAny(req.Ref, " \t\n:") || len(req.Ref) > 255):
		return core.E(core.KindInvalid, op, "ref must be a branch or revision, got %q", req.Ref)
	case req.Commit != "" && !isHex(req.Commit):
		return core.E(core.KindInvalid, op, "commit must be a commit id in hex, got %q", req.Commit)
	case req.Before != "" && !isHex(req.Before):
		return core.E(core.KindInvalid, op, "before must be a commit id in hex, got %q", req.Before)
	}
	if req.Event == "" {
		req.Event = core.EventPush
	}
	if req.Event != core.EventPush && req.Event != core.EventManual {
		return core.E(core.KindInvalid, op, "event must be push or manual, got %q", req.Event)
	}
	proj, err := s.projectOf(r.Context(), req)
	if err != nil {
		return err
	}
	if req.Ref == "" {
		req.Ref = proj.DefaultBranch
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), planTimeout)
	defer cancel()
	ctx, span := s.startRoot(ctx, spanTrigger, telemetry.AttrProject.String(proj.Name), telemetry.AttrEvent.String(req.Event))
	defer func() { telemetry.End(span, err) }()
	unlock, err := s.planning.lock(ctx, proj.Name)
	if err != nil {
		return core.E(core.KindUnavailable, op, "project %s is still planning an earlier run after %s", proj.Name, planTimeout)
	}
	run, err := s.startRun(ctx, who, proj, runRequest{Event: req.Event, Ref: req.Ref, Commit: req.Commit, Before: req.Before})
	unlock()
	if err != nil {
		return err
	}
	out, err := s.runBody(ctx, run.ID)
	if err != nil {
		return err
	}
	if out.Warnings, err = s.creationWarnings(ctx, run.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// projectOf finds the project a run request is for: by name, or by its
// repository URL. Runs are made only for registered projects.
func (s *Server) projectOf(ctx context.Context, req protocol.CreateRunRequest) (core.Project, error) {
	if req.Project != "" {
		p, err := s.st.Project(ctx, req.Project)
		if err != nil {
			return core.Project{}, err
		}
		if req.Repo != "" && req.Repo != p.RepoURL {
			return core.Project{}, core.E(core.KindInvalid, "create run", "project %s is the repository %s, not %s", p.Name, p.RepoURL, req.Repo)
		}
		return p, nil
	}
	p, err := s.st.ProjectByRepo(ctx, req.Repo)
	if core.KindOf(err) == core.KindNotFound {
		return core.Project{}, core.E(core.KindNotFound, "create run",
			"repository %s is not a registered project; an admin adds it with deltaci projects add", req.Repo)
	}
	return p, err
}

// runRequest is what a run is made for, from the API or a webhook.
type runRequest struct {
	Event string
	// Ref is a branch name, a full ref or a revision; a pull request's
	// is the forge's ref of its head (refs/pull/<n>/head).
	Ref    string
	Commit string
	// Before is, for a push, the branch's commit before it.
	Before string
	// Source and Target are a pull request's branch and the branch it
	// merges into; Fork says whether it comes from another repository.
	Source, Target string
	Fork           bool
	// Delivery is the claimed webhook delivery the run is made for.
	Delivery *store.Delivery
}

// startRun fetches the project's repository, derives the run's trust,
// plans the commit, records the run and queues its first jobs. The span
// in ctx, the root of the run's trace, is kept with the run.
func (s *Server) startRun(ctx context.Context, who principal, proj core.Project, req runRequest) (_ core.Run, err error) {
	begin := time.Now()
	root, traceParent := trace.SpanFromContext(ctx), telemetry.TraceParent(ctx)
	ctx, span := s.tracer.Start(ctx, spanPlan, trace.WithAttributes(telemetry.AttrProject.String(proj.Name), telemetry.AttrEvent.String(req.Event)))
	defer func() { telemetry.End(span, err) }()
	repo := proj.RepoURL
	before := req.Before
	if before == "" && req.Event == core.EventPush {
		before = s.branchTip(ctx, repo, req.Ref)
	}
	mirror, err := s.fetch(ctx, repo, func(ctx context.Context) (string, error) { return s.cfg.Mirrors.Fetch(ctx, repo) })
	if err != nil {
		return core.Run{}, err
	}
	ref := req.Ref
	branch := ""
	if req.Event == core.EventPullRequest {
		// A pull request's head is no branch of the project: it is
		// trusted by nothing, and job filters match its source branch.
	} else if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		branch = b
	} else if ok, err := gitx.CommitExists(ctx, mirror, "refs/heads/"+ref); err != nil {
		return core.Run{}, err
	} else if ok {
		branch, ref = ref, "refs/heads/"+ref
	}
	tip := ""
	if branch != "" {
		if tip, err = gitx.ResolveRev(ctx, mirror, "refs/heads/"+branch); err != nil {
			return core.Run{}, core.Wrap(core.KindInvalid, "resolve branch "+branch, err)
		}
	}
	commit := req.Commit
	if commit == "" {
		if commit, err = gitx.ResolveRev(ctx, mirror, ref); err != nil {
			return core.Run{}, core.Wrap(core.KindInvalid, "resolve "+req.Ref, err)
		}
	} else if _, err := s.fetch(ctx, repo, func(ctx context.Context) (string, error) { return s.cfg.Mirrors.Ensure(ctx, repo, commit) }); err != nil {
		return core.Run{}, err
	} else if commit, err = gitx.ResolveRev(ctx, mirror, commit+"^{commit}"); err != nil {
		return core.Run{}, core.Wrap(core.KindInvalid, "commit "+req.Commit, err)
	}
	trusted, why, err := s.trust(ctx, mirror, proj, req.Event, branch, tip, commit)
	if err != nil {
		return core.Run{}, err
	}
	if req.Event == core.EventPullRequest {
		why = prTrustReason(req)
	}
	nr := store.NewRun{
		Project: proj.Name, Repo: repo, Ref: ref, Commit: commit, Event: req.Event, Trusted: trusted, TrustReason: why,
		Forge: runForge(proj, commit), Delivery: req.Delivery, TraceParent: traceParent,
	}
	b, err := gitx.FileAt(ctx, mirror, commit, pipeline.FileName, pipeline.MaxFileSize)
	if core.KindOf(err) == core.KindNotFound {
		return core.Run{}, s.erroredRun(ctx, who, nr, core.E(core.KindInvalid, "create run", "commit %s has no %s", commit, pipeline.FileName))
	}
	if core.KindOf(err) == core.KindInvalid {
		return core.Run{}, s.erroredRun(ctx, who, nr, err) // a file past the size limit
	}
	if err != nil {
		return core.Run{}, err
	}
	p, err := pipeline.Parse(pipeline.FileName+"@"+commit[:12], b)
	if err != nil {
		return core.Run{}, s.erroredRun(ctx, who, nr, core.Wrap(core.KindInvalid, "create run", err))
	}
	if err := allowedLabels(proj, p); err != nil {
		return core.Run{}, s.erroredRun(ctx, who, nr, err)
	}
	draft := core.Run{Project: proj.Name, Repo: repo, Ref: ref, Trusted: trusted}
	trig := planner.Trigger{Kind: planner.TriggerPush, Head: commit, Branch: branch, Before: before}
	switch req.Event {
	case core.EventManual:
		trig = planner.Trigger{Kind: planner.TriggerManual, Head: commit, Branch: branch}
	case core.EventPullRequest:
		trig = planner.Trigger{Kind: planner.TriggerPullRequest, Head: commit, Branch: req.Source, Target: "refs/heads/" + req.Target}
	}
	pl, err := planner.Make(ctx, planner.Options{
		Dir: mirror, Pipeline: p, Trigger: trig, Executor: s.cfg.Executor, Salt: s.cfg.Salt,
		Lookup: s.results(draft).Lookup(ctx), BasePipelineAt: planner.PipelineAt(mirror),
	})
	if core.KindOf(err) == core.KindInvalid {
		return core.Run{}, s.erroredRun(ctx, who, nr, err) // the pipeline's globs or needs
	}
	if err != nil {
		return core.Run{}, err
	}
	nr.Base = pl.Base.Commit
	nr.ChangedPaths = &pl.ChangedFiles
	reused := 0
	for _, spec := range p.Jobs {
		pj, ok := pl.Job(spec.Name)
		if !ok {
			continue // filtered out by branch or event
		}
		pj.SetCache(&spec)
		spec.RunsOn = append(append([]string(nil), spec.RunsOn...), ExecutorLabel(s.cfg.Executor))
		nj := store.NewJob{Spec: spec, Digest: pj.Digest, Explain: pj.Explain()}
		switch pj.Decision {
		case planner.Reuse:
			nj.Decision, nj.ReusedFrom = core.JobReused, pj.ReusedFrom.AttemptID
			reused++
		case planner.Skip:
			nj.Decision = core.JobSkipped
		}
		nr.Jobs = append(nr.Jobs, nj)
	}
	run, _, err := s.st.CreateRun(ctx, who.actor, nr)
	if err != nil {
		return core.Run{}, err
	}
	// Once recorded, the run is started even if the caller gives up.
	if err := s.orch.StartRun(context.WithoutCancel(ctx), run.ID); err != nil {
		return core.Run{}, err
	}
	s.metrics.PlanSeconds.Observe(time.Since(begin).Seconds())
	s.metrics.JobsReused.Add(float64(reused))
	root.SetAttributes(telemetry.AttrRunID.String(run.ID))
	span.SetAttributes(telemetry.AttrRunID.String(run.ID), telemetry.AttrTrusted.Bool(trusted), attrJobs.Int(len(nr.Jobs)), attrReused.Int(reused))
	s.log.InfoContext(ctx, "run created", slog.String("run_id", run.ID), slog.String("project", proj.Name),
		slog.String("ref", ref), slog.String("commit", commit), slog.Bool("trusted", trusted), slog.String("trust", why),
		slog.Int("jobs", len(nr.Jobs)), slog.Int("reused", reused), slog.String("actor", who.actor))
	return run, nil
}

// prTrustReason says why a pull request's run is not trusted.
func prTrustReason(req runRequest) string {
	if req.Fork {
		return fmt.Sprintf("a pull request from a fork (branch %s) is not trusted", req.Source)
	}
	return fmt.Sprintf("a pull request (branch %s into %s) is not trusted: its code is not on a protected branch yet", req.Source, req.Target)
}

// runForge is where the statuses of a project's run of commit go: nowhere
// when the project has no forge or no token to post with.
func runForge(p core.Project, commit string) *store.RunForge {
	f := p.Forge
	if f.Kind == "" || f.TokenSecret == "" {
		return nil
	}
	api := f.APIURL
	if api == "" {
		api = defaultGitHubAPI
	}
	return &store.RunForge{Kind: f.Kind, APIURL: api, Repo: f.Repo, Commit: commit, TokenSecret: f.TokenSecret}
}

// defaultGitHubAPI is the API of github.com, for a github project that
// names none.
const defaultGitHubAPI = "https://api.github.com"

// fetch runs one fetch of repo (fn) within the fetch timeout, so that a
// silent host gives up the project's planning lock.
func (s *Server) fetch(ctx context.Context, repo string, fn func(context.Context) (string, error)) (_ string, err error) {
	ctx, span := s.tracer.Start(ctx, spanFetch)
	defer func() { telemetry.End(span, err) }()
	fctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	mirror, err := fn(fctx)
	switch {
	case err == nil:
		return mirror, nil
	case fctx.Err() != nil && ctx.Err() == nil:
		return "", core.E(core.KindUnavailable, "fetch "+repo, "no answer within the fetch timeout of %s", s.cfg.FetchTimeout)
	case ctx.Err() != nil:
		return "", core.Wrap(core.KindCanceled, "fetch "+repo, ctx.Err())
	}
	return "", &fetchError{core.Wrap(core.KindInvalid, "fetch "+repo, err)}
}

// fetchError is a failed fetch of a project's repository: a bad URL to the
// API's caller, but maybe a passing network error, so a webhook delivery
// is tried again.
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// trust decides whether a run is trusted, and says why, from what the
// server knows itself: the project's protected branches and its own fetch
// of the branch (tip is "" when ref is no branch). The caller may start
// runs (runStarter), and a push or manual run of a protected branch at a
// commit on it runs code the branch already holds, so neither the event
// nor anything else in the request can make a run trusted.
func (s *Server) trust(ctx context.Context, mirror string, p core.Project, event, branch, tip, commit string) (bool, string, error) {
	switch {
	case event != core.EventPush && event != core.EventManual:
		return false, fmt.Sprintf("a %s event is not trusted", event), nil
	case branch == "":
		return false, "the ref is not a branch of project " + p.Name, nil
	case !protected(p, branch):
		return false, fmt.Sprintf("branch %s is not protected in project %s", branch, p.Name), nil
	case commit == tip:
		return true, fmt.Sprintf("%s of protected branch %s at its tip %.12s, as the server fetched it", event, branch, tip), nil
	}
	on, err := gitx.IsAncestor(ctx, mirror, commit, tip)
	if err != nil {
		return false, "", err
	}
	if on {
		return true, fmt.Sprintf("%s of protected branch %s at %.12s, reachable from its tip %.12s as the server fetched it", event, branch, commit, tip), nil
	}
	return false, fmt.Sprintf("commit %.12s is not on protected branch %s as the server fetched it (tip %.12s)", commit, branch, tip), nil
}

// allowedLabels refuses a pipeline whose jobs ask for runner labels the
// project does not allow (any are allowed when the project lists none).
func allowedLabels(p core.Project, pl *core.Pipeline) error {
	if len(p.Labels) == 0 {
		return nil
	}
	for _, j := range pl.Jobs {
		for _, l := range j.RunsOn {
			if !slices.Contains(p.Labels, l) {
				return core.E(core.KindInvalid, "create run", "job %s asks for runner label %q, which project %s does not allow (allowed: %s)",
					j.Name, l, p.Name, strings.Join(p.Labels, ", "))
			}
		}
	}
	return nil
}

// branchTip is where the server's mirror had a branch before this fetch:
// the "before" of a push the server learns of by being asked to run it.
// It is "" when the mirror or the branch is new.
func (s *Server) branchTip(ctx context.Context, repo, ref string) string {
	path := s.cfg.Mirrors.Path(repo)
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	if !strings.HasPrefix(ref, "refs/") {
		ref = "refs/heads/" + ref
	}
	tip, err := gitx.ResolveRev(ctx, path, ref)
	if err != nil {
		return ""
	}
	return tip
}

func isHex(s string) bool {
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.user(r); err != nil {
		return err
	}
	out, err := s.runBody(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.runStarter(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.orch.Cancel(r.Context(), "api", id); err != nil {
		return err
	}
	out, err := s.runBody(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// runBody is a run as the API shows it: with its jobs and their attempts.
func (s *Server) runBody(ctx context.Context, id string) (protocol.Run, error) {
	run, err := s.st.Run(ctx, id)
	if err != nil {
		return protocol.Run{}, err
	}
	jobs, err := s.st.Jobs(ctx, id)
	if err != nil {
		return protocol.Run{}, err
	}
	attempts, err := s.st.Attempts(ctx, id)
	if err != nil {
		return protocol.Run{}, err
	}
	out := protocol.Run{
		ID: run.ID, Repo: run.Repo, Ref: run.Ref, Commit: run.Commit, Event: run.Event, Project: run.Project,
		Trusted: run.Trusted, TrustReason: run.TrustReason, RerunOf: run.RerunOf,
		State: string(run.State), Reason: string(run.Reason), CreatedAt: run.CreatedAt.UTC(),
		StartedAt: ts(run.StartedAt), FinishedAt: ts(run.FinishedAt), Jobs: []protocol.Job{},
	}
	if run.State == core.RunErrored {
		if out.Message, err = s.st.RunMessage(ctx, id); err != nil {
			return protocol.Run{}, err
		}
	}
	caches, err := s.attemptCaches(ctx, run, jobs)
	if err != nil {
		return protocol.Run{}, err
	}
	byJob := map[string][]protocol.Attempt{}
	for _, a := range attempts {
		byJob[a.JobID] = append(byJob[a.JobID], protocol.Attempt{
			ID: a.ID, Number: a.Number, State: string(a.State), Reason: string(a.Reason), ExitCode: a.ExitCode,
			RunnerID: a.RunnerID, LogLength: a.LogLength, LogDigest: a.LogDigest, QueuedAt: a.QueuedAt.UTC(),
			StartedAt: ts(a.StartedAt), FinishedAt: ts(a.FinishedAt), Cache: caches[a.ID],
		})
	}
	waiting, err := s.Waiting(ctx, run, jobs, attempts)
	if err != nil {
		return protocol.Run{}, err
	}
	for _, j := range jobs {
		needs := j.Spec.Needs
		if needs == nil {
			needs = []string{}
		}
		as := byJob[j.ID]
		if as == nil {
			as = []protocol.Attempt{}
		}
		out.Jobs = append(out.Jobs, protocol.Job{
			ID: j.ID, Name: j.Name, State: string(j.State), Reason: string(j.Reason), Needs: needs,
			Explain: j.Explain, Digest: j.Digest, ReusedFrom: j.ReusedFrom,
			StartedAt: ts(j.StartedAt), FinishedAt: ts(j.FinishedAt), Attempts: as, Waiting: waiting[j.Name],
			Cache: jobCache(j.Spec.Cache),
		})
	}
	return out, nil
}

func ts(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
