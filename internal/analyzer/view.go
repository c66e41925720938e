package analyzer

import (
	"context"
	"sort"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// RunView builds what the analyzer found in a run, per job: the latest
// analyzed attempt, each failing test new or existing against the base's
// result for that job, the tests fixed since the base, and what is known
// flaky. It reads only; a job whose attempts are not analyzed yet is
// listed with its state alone.
func RunView(ctx context.Context, st *store.Store, runID string) (protocol.RunAnalysis, error) {
	run, err := st.Run(ctx, runID)
	if err != nil {
		return protocol.RunAnalysis{}, err
	}
	out := protocol.RunAnalysis{RunID: run.ID, Jobs: []protocol.JobAnalysis{}}
	base, err := st.RunBase(ctx, run.ID)
	if err != nil && core.KindOf(err) != core.KindNotFound {
		return out, err
	}
	out.Base = base.Commit
	if base.Commit != "" && base.ChangedPaths >= 0 {
		n := base.ChangedPaths
		out.ChangedPaths = &n
	}
	if out.Pending, err = st.PendingAnalyses(ctx, run.ID); err != nil {
		return out, err
	}
	jobs, err := st.Jobs(ctx, run.ID)
	if err != nil {
		return out, err
	}
	analyses, err := st.RunAnalyses(ctx, run.ID)
	if err != nil {
		return out, err
	}
	latest := map[string]core.Analysis{}
	for _, a := range analyses {
		if cur, ok := latest[a.JobID]; !ok || a.Number > cur.Number {
			latest[a.JobID] = a
		}
	}
	scope := store.Scope(run)
	flaky, err := st.Flaky(ctx, scope, "")
	if err != nil {
		return out, err
	}
	known := map[[2]string]bool{}
	for _, f := range flaky {
		if f.Active() {
			known[[2]string{f.Job, f.Test}] = true
		}
	}
	for _, j := range jobs {
		ja := protocol.JobAnalysis{
			Job: j.Name, State: string(j.State), Flaky: known[[2]string{j.Name, ""}],
			Failures: []protocol.FailureComparison{}, Fixed: []string{},
		}
		a, ok := latest[j.ID]
		if !ok {
			out.Jobs = append(out.Jobs, ja)
			continue
		}
		ja.AttemptID, ja.Number, ja.Class, ja.Excerpt, ja.Problems = a.AttemptID, a.Number, a.Class, a.Excerpt, a.Problems
		ja.Totals, ja.MoreFailures = a.Totals, a.MoreFailures
		base, hasBase, err := baseAnalysis(ctx, st, run, j.Name)
		if err != nil {
			return out, err
		}
		baseFailing := map[string]bool{}
		if hasBase {
			ja.BaseAttempt = base.AttemptID
			for _, f := range base.Failures {
				baseFailing[f.ID] = true
			}
		}
		failing := map[string]bool{}
		for _, f := range a.Failures {
			failing[f.ID] = true
			fc := protocol.FailureComparison{TestFailure: f, Flaky: known[[2]string{j.Name, f.ID}]}
			if hasBase {
				fc.Status = protocol.FailureNew
				if baseFailing[f.ID] {
					fc.Status = protocol.FailureExisting
				}
			}
			sig, err := st.Signature(ctx, scope, f.Signature)
			switch {
			case err == nil:
				fc.SeenCount, fc.FirstSeen = sig.Count, sig.FirstSeen
			case core.KindOf(err) != core.KindNotFound:
				return out, err
			}
			ja.Failures = append(ja.Failures, fc)
		}
		// Fixed: failed at the base and passed here, which a success says
		// of every test, and a complete report of those it does not list.
		ranAll := a.State == core.AttemptSucceeded || (a.Reports > 0 && a.MoreFailures == 0)
		if hasBase && ranAll {
			for id := range baseFailing {
				if !failing[id] {
					ja.Fixed = append(ja.Fixed, id)
				}
			}
			sort.Strings(ja.Fixed)
		}
		out.Jobs = append(out.Jobs, ja)
	}
	return out, nil
}

// baseAnalysis is the analysis of the base's result for a job, when the
// run has a base, the base has a result for the job and it is analyzed.
func baseAnalysis(ctx context.Context, st *store.Store, run core.Run, job string) (core.Analysis, bool, error) {
	at, err := st.BaseAttempt(ctx, run, job)
	if core.KindOf(err) == core.KindNotFound {
		return core.Analysis{}, false, nil
	}
	if err != nil {
		return core.Analysis{}, false, err
	}
	a, err := st.Analysis(ctx, at.ID)
	if core.KindOf(err) == core.KindNotFound {
		// A success not analyzed (not yet, or from before the analyzer)
		// still says every test passed.
		ok := at.State == core.AttemptSucceeded
		return core.Analysis{AttemptID: at.ID, State: at.State}, ok, nil
	}
	return a, err == nil, err
}
