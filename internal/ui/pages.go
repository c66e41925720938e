package ui

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// projectsPerBranch bounds the runs read per project for its latest run
// of each branch.
const projectsPerBranch = store.MaxRunPage

type projectRow struct {
	Name, Repo, DefaultBranch string
	Branches                  []protocol.RunSummary
}

type projectsPage struct {
	basePage
	Projects []projectRow
}

// projects lists the projects the caller may see, with the latest run of
// each branch.
func (u *UI) projects(w http.ResponseWriter, r *http.Request) error {
	return u.serve(w, r, "projects", "", func(ctx context.Context) (any, error) {
		ps, err := u.cfg.Backend.Projects(ctx)
		if err != nil {
			return nil, err
		}
		out := &projectsPage{basePage: u.base(r, "Projects")}
		out.Nav = "projects"
		for _, p := range ps {
			if u.cfg.Auth.Role(ctx, p.Name) == "" {
				continue
			}
			page, err := u.cfg.Backend.Runs(ctx, store.RunFilter{Project: p.Name, Limit: projectsPerBranch})
			if err != nil {
				return nil, err
			}
			row := projectRow{Name: p.Name, Repo: p.RepoURL, DefaultBranch: p.DefaultBranch}
			seen := map[string]bool{}
			for _, run := range page.Runs {
				if seen[run.Ref] {
					continue
				}
				seen[run.Ref] = true
				row.Branches = append(row.Branches, summary(run))
			}
			out.Projects = append(out.Projects, row)
		}
		return out, nil
	})
}

func summary(run core.Run) protocol.RunSummary {
	s := protocol.RunSummary{
		ID: run.ID, Project: run.Project, Repo: run.Repo, Ref: run.Ref, Commit: run.Commit, Event: run.Event,
		Trusted: run.Trusted, TrustReason: run.TrustReason, State: string(run.State), Reason: string(run.Reason),
		RerunOf: run.RerunOf, CreatedAt: run.CreatedAt.UTC(),
	}
	if !run.StartedAt.IsZero() {
		t := run.StartedAt.UTC()
		s.StartedAt = &t
	}
	if !run.FinishedAt.IsZero() {
		t := run.FinishedAt.UTC()
		s.FinishedAt = &t
	}
	return s
}

type runsPage struct {
	basePage
	Filter store.RunFilter
	Runs   []protocol.RunSummary
	Next   string
	States []string
	Events []string
}

// runs lists run history with filters, newest first.
func (u *UI) runs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "project", "branch", "state", "event", "cursor":
		default:
			return core.E(core.KindInvalid, "runs", "unknown filter %q (want project, branch, state, event or cursor)", k)
		}
	}
	f := store.RunFilter{Project: q.Get("project"), Ref: q.Get("branch"), State: q.Get("state"), Event: q.Get("event"), Cursor: q.Get("cursor")}
	return u.serve(w, r, "runs", "", func(ctx context.Context) (any, error) {
		page, err := u.cfg.Backend.Runs(ctx, f)
		if err != nil {
			return nil, err
		}
		out := &runsPage{basePage: u.base(r, "Runs"), Filter: f, Next: page.Next,
			Events: []string{core.EventPush, core.EventPullRequest, core.EventManual}}
		out.Nav = "runs"
		for _, st := range core.RunStates() {
			out.States = append(out.States, string(st))
		}
		roles := map[string]string{}
		for _, run := range page.Runs {
			role, ok := roles[run.Project]
			if !ok {
				role = u.roleIn(ctx, run.Project)
				roles[run.Project] = role
			}
			if role != "" {
				out.Runs = append(out.Runs, summary(run))
			}
		}
		return out, nil
	})
}

// jobRow is one job of the run page's table.
type jobRow struct {
	protocol.Job
	Href     string
	Decision string
	Duration string
	Attempts []attemptRow
}

type attemptRow struct {
	protocol.Attempt
	Wait, Ran string
}

type runPage struct {
	basePage
	Run       protocol.Run
	Jobs      []jobRow
	Graph     graph
	Fall      waterfall
	MayAct    bool
	CanCancel bool
	CanRerun  bool
	Failed    int
	Counts    []stateCount
	// Base is the commit the run was planned against; Failures what the
	// Failure Analyzer found of its failed jobs (Pending: ended attempts
	// it has not analyzed yet).
	Base string
	// Changed counts the paths that differ from Base, -1 if not known.
	Changed  int
	Failures []jobFailures
	Pending  int
	// The parts repeated per job, written by runhtml.go.
	GraphHTML, RowsHTML, FallHTML template.HTML
}

// jobFailures is a failed job's analysis as the run page shows it.
type jobFailures struct {
	protocol.JobAnalysis
	Href string // the job's page, at the analyzed attempt
	// LogHref opens the log at the excerpt's error line.
	LogHref string
}

type stateCount struct {
	State string
	N     int
}

// loadRun reads a run the caller may see, and the caller's role in its
// project. A run of a project the caller has no role in is not found.
func (u *UI) loadRun(ctx context.Context, id string) (protocol.Run, string, error) {
	run, err := u.cfg.Backend.Run(ctx, id)
	if err != nil {
		return protocol.Run{}, "", err
	}
	role := u.roleIn(ctx, run.Project)
	if role == "" {
		return protocol.Run{}, "", &forbidden{msg: "you have no role in project " + run.Project + ", so you may not see its runs"}
	}
	return run, role, nil
}

// roleIn is the caller's role in project; the runs of no project (made
// by deltaci run against a server's store) are the server admins'.
func (u *UI) roleIn(ctx context.Context, project string) string {
	if project == "" {
		if u.cfg.Auth.IsAdmin(ctx) {
			return RoleAdmin
		}
		return ""
	}
	return u.cfg.Auth.Role(ctx, project)
}

// decision is what the plan decided for a job, as the run page shows it.
func decision(j protocol.Job) string {
	switch core.JobState(j.State) {
	case core.JobReused, core.JobSkipped, core.JobUpstreamFailed:
		return j.State
	}
	return "run"
}

func (u *UI) run(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	return u.serve(w, r, "run", id, func(ctx context.Context) (any, error) {
		run, role, err := u.loadRun(ctx, id)
		if err != nil {
			return nil, err
		}
		now := u.cfg.Now()
		out := &runPage{basePage: u.base(r, "Run "+short(run.ID)), Run: run, MayAct: mayAct(role),
			Graph: layout(run.ID, run.Jobs), Fall: makeWaterfall(run, now)}
		out.Nav = "runs"
		terminal := core.RunState(run.State).Terminal()
		out.CanCancel = !terminal && run.State != string(core.RunCanceling)
		counts := map[string]int{}
		for _, j := range run.Jobs {
			counts[j.State]++
			row := jobRow{Job: j, Href: jobHref(run.ID, j.Name), Decision: decision(j)}
			if j.StartedAt != nil {
				end := now
				if j.FinishedAt != nil {
					end = *j.FinishedAt
				}
				row.Duration = fmtDuration(end.Sub(*j.StartedAt))
			}
			for _, a := range j.Attempts {
				ar := attemptRow{Attempt: a}
				if a.StartedAt != nil {
					ar.Wait = fmtDuration(a.StartedAt.Sub(a.QueuedAt))
					end := now
					if a.FinishedAt != nil {
						end = *a.FinishedAt
					}
					ar.Ran = fmtDuration(end.Sub(*a.StartedAt))
				}
				row.Attempts = append(row.Attempts, ar)
			}
			if s := core.JobState(j.State); !s.Successful() && s != core.JobPending && s != core.JobQueued && s != core.JobRunning {
				out.Failed++
			}
			out.Jobs = append(out.Jobs, row)
		}
		for _, st := range sortedKeys(counts) {
			out.Counts = append(out.Counts, stateCount{State: st, N: counts[st]})
		}
		out.CanRerun = terminal && run.Project != "" && out.Failed > 0
		an, err := u.cfg.Backend.Analysis(ctx, run.ID)
		if err != nil {
			return nil, err
		}
		out.Base, out.Changed, out.Pending = an.Base, -1, an.Pending
		if an.ChangedPaths != nil {
			out.Changed = *an.ChangedPaths
		}
		for _, ja := range an.Jobs {
			if ja.AttemptID == "" && len(ja.Problems) == 0 {
				continue
			}
			f := jobFailures{JobAnalysis: ja, Href: jobHref(run.ID, ja.Job)}
			if ja.Number > 0 {
				f.Href += "?attempt=" + strconv.Itoa(ja.Number)
			}
			if ja.Excerpt != nil {
				at := ja.Excerpt.ErrorStart
				if ja.Excerpt.ErrorLine == 0 {
					at = ja.Excerpt.Start
				}
				sep := "?"
				if ja.Number > 0 {
					sep = "&"
				}
				f.LogHref = f.Href + sep + "at=" + strconv.FormatInt(at, 10) + "#o" + strconv.FormatInt(at, 10)
			}
			out.Failures = append(out.Failures, f)
		}
		out.GraphHTML, out.RowsHTML, out.FallHTML = graphHTML(out.Graph), jobRowsHTML(out), fallHTML(out.Fall)
		return out, nil
	})
}

func short(s string) string {
	if len(s) > 13 {
		return s[len(s)-12:]
	}
	return s
}

type runnersPage struct {
	basePage
	Runners []protocol.RunnerInfo
	Online  int
	Busy    int
}

// runners lists the registered runners, for the server's admins.
func (u *UI) runners(w http.ResponseWriter, r *http.Request) error {
	return u.serve(w, r, "runners", "", func(ctx context.Context) (any, error) {
		if !u.cfg.Auth.IsAdmin(ctx) {
			return nil, &forbidden{msg: "seeing the runners needs a server admin"}
		}
		list, err := u.cfg.Backend.Runners(ctx)
		if err != nil {
			return nil, err
		}
		out := &runnersPage{basePage: u.base(r, "Runners"), Runners: list.Runners}
		out.Nav = "runners"
		for _, rn := range list.Runners {
			if rn.State != protocol.RunnerOffline {
				out.Online++
			}
			if rn.State == protocol.RunnerBusy {
				out.Busy++
			}
		}
		return out, nil
	})
}

// runHref is the run page's path.
func runHref(id string) string { return "/runs/" + url.PathEscape(id) }
