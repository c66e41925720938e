package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/pipeline"
	"github.com/deltaci/deltaci/internal/planner"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/results"
	"github.com/deltaci/deltaci/internal/store"
)

// ExecutorLabel is the label that ties an attempt to runners of the
// executor its plan assumed (the executor is part of every job digest).
func ExecutorLabel(executor string) string { return "executor:" + executor }

// planTimeout bounds fetching and planning one run.
const planTimeout = 5 * time.Minute

// results is the results store of a run: trusted runs write the shared
// namespace; others write one of their branch's and read shared too.
func (s *Server) results(run core.Run) *results.Store {
	if run.Trusted {
		return &results.Store{Reg: s.cfg.Registry, Write: results.Shared, Read: []string{results.Shared}, Actor: "server"}
	}
	sum := sha256.Sum256([]byte(run.Repo + "\x00" + run.Ref))
	ns := "branch-" + hex.EncodeToString(sum[:8])
	return &results.Store{Reg: s.cfg.Registry, Write: ns, Read: []string{results.Shared, ns}, Actor: "server"}
}

// protected reports whether branch matches a protected-branch glob.
func (s *Server) protected(branch string) bool {
	if branch == "" {
		return false
	}
	for _, g := range s.cfg.ProtectedBranches {
		if ok, _ := doublestar.Match(g, branch); ok {
			return true
		}
	}
	return false
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) error {
	if err := s.user(r); err != nil {
		return err
	}
	var req protocol.CreateRunRequest
	if err := decodeJSON(w, r, false, &req); err != nil {
		return err
	}
	const op = "create run"
	switch {
	case req.Repo == "" || strings.HasPrefix(req.Repo, "-"):
		return core.E(core.KindInvalid, op, "repo must be a local path or a git URL, got %q", req.Repo)
	case req.Ref == "" || strings.HasPrefix(req.Ref, "-") || strings.ContainsAny(req.Ref, " \t\n:"):
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
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), planTimeout)
	defer cancel()
	run, err := s.startRun(ctx, req)
	if err != nil {
		return err
	}
	out, err := s.runBody(ctx, run.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// startRun fetches the repository, plans the commit, records the run and
// queues its first jobs.
func (s *Server) startRun(ctx context.Context, req protocol.CreateRunRequest) (core.Run, error) {
	s.planMu.Lock()
	defer s.planMu.Unlock()
	begin := time.Now()
	before := req.Before
	if before == "" && req.Event == core.EventPush {
		before = s.branchTip(ctx, req.Repo, req.Ref)
	}
	mirror, err := s.cfg.Mirrors.Fetch(ctx, req.Repo)
	if err != nil {
		return core.Run{}, core.Wrap(core.KindInvalid, "fetch "+req.Repo, err)
	}
	ref := req.Ref
	branch := ""
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		branch = b
	} else if ok, err := gitx.CommitExists(ctx, mirror, "refs/heads/"+ref); err != nil {
		return core.Run{}, err
	} else if ok {
		branch, ref = ref, "refs/heads/"+ref
	}
	commit := req.Commit
	if commit == "" {
		if commit, err = gitx.ResolveRev(ctx, mirror, ref); err != nil {
			return core.Run{}, core.Wrap(core.KindInvalid, "resolve "+req.Ref, err)
		}
	} else if _, err := s.cfg.Mirrors.Ensure(ctx, req.Repo, commit); err != nil {
		return core.Run{}, core.Wrap(core.KindInvalid, "commit "+commit, err)
	}
	b, err := gitx.FileAt(ctx, mirror, commit, pipeline.FileName)
	if core.KindOf(err) == core.KindNotFound {
		return core.Run{}, core.E(core.KindInvalid, "create run", "commit %s has no %s", commit, pipeline.FileName)
	}
	if err != nil {
		return core.Run{}, err
	}
	p, err := pipeline.Parse(pipeline.FileName+"@"+commit[:12], b)
	if err != nil {
		return core.Run{}, core.Wrap(core.KindInvalid, "create run", err)
	}
	trusted := s.protected(branch)
	draft := core.Run{Repo: req.Repo, Ref: ref, Trusted: trusted}
	trig := planner.Trigger{Kind: planner.TriggerPush, Head: commit, Branch: branch, Before: before}
	if req.Event == core.EventManual {
		trig = planner.Trigger{Kind: planner.TriggerManual, Head: commit, Branch: branch}
	}
	pl, err := planner.Make(ctx, planner.Options{
		Dir: mirror, Pipeline: p, Trigger: trig, Executor: s.cfg.Executor, Salt: s.cfg.Salt,
		Lookup: s.results(draft).Lookup(ctx), BasePipelineAt: planner.PipelineAt(mirror),
	})
	if err != nil {
		return core.Run{}, err
	}
	nr := store.NewRun{Repo: req.Repo, Ref: ref, Commit: commit, Event: req.Event, Trusted: trusted}
	reused := 0
	for _, spec := range p.Jobs {
		pj, ok := pl.Job(spec.Name)
		if !ok {
			continue // filtered out by branch or event
		}
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
	run, _, err := s.st.CreateRun(ctx, "api", nr)
	if err != nil {
		return core.Run{}, err
	}
	if err := s.orch.StartRun(ctx, run.ID); err != nil {
		return core.Run{}, err
	}
	s.metrics.PlanSeconds.Observe(time.Since(begin).Seconds())
	s.metrics.JobsReused.Add(float64(reused))
	s.log.InfoContext(ctx, "run created", slog.String("run_id", run.ID), slog.String("repo", run.Repo),
		slog.String("ref", ref), slog.String("commit", commit), slog.Int("jobs", len(nr.Jobs)), slog.Int("reused", reused))
	return run, nil
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
	if err := s.user(r); err != nil {
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
	if err := s.user(r); err != nil {
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
		ID: run.ID, Repo: run.Repo, Ref: run.Ref, Commit: run.Commit, Event: run.Event, Trusted: run.Trusted,
		State: string(run.State), Reason: string(run.Reason), CreatedAt: run.CreatedAt.UTC(),
		StartedAt: ts(run.StartedAt), FinishedAt: ts(run.FinishedAt), Jobs: []protocol.Job{},
	}
	byJob := map[string][]protocol.Attempt{}
	for _, a := range attempts {
		byJob[a.JobID] = append(byJob[a.JobID], protocol.Attempt{
			ID: a.ID, Number: a.Number, State: string(a.State), Reason: string(a.Reason), ExitCode: a.ExitCode,
			RunnerID: a.RunnerID, LogLength: a.LogLength, LogDigest: a.LogDigest, QueuedAt: a.QueuedAt.UTC(),
			StartedAt: ts(a.StartedAt), FinishedAt: ts(a.FinishedAt),
		})
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
			StartedAt: ts(j.StartedAt), FinishedAt: ts(j.FinishedAt), Attempts: as,
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
