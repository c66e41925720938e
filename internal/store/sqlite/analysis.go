package sqlite

import (
	"context"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/sqlite/sqlitedb"
)

func (x queries) InsertRunBase(ctx context.Context, runID string, b store.RunBase) error {
	return mapErr("insert run base", x.q.InsertRunBase(ctx, sqlitedb.InsertRunBaseParams{RunID: runID, BaseCommit: b.Commit, ChangedPaths: int64(b.ChangedPaths)}))
}

func (x queries) GetRunBase(ctx context.Context, runID string) (store.RunBase, error) {
	r, err := x.q.GetRunBase(ctx, runID)
	return store.RunBase{Commit: r.BaseCommit, ChangedPaths: int(r.ChangedPaths)}, mapErr("base of run "+runID, err)
}

func (x queries) FindBaseJob(ctx context.Context, run core.Run, commit, job string) (string, error) {
	id, err := x.q.FindBaseJob(ctx, sqlitedb.FindBaseJobParams{Repo: run.Repo, Project: run.Project, CommitSha: commit, Name: job, RunID: run.ID, CreatedAt: store.Millis(run.CreatedAt)})
	return id, mapErr("job "+job+" at the base "+commit, err)
}

func claimFromRow(r sqlitedb.AnalysisQueue) store.AnalysisClaim {
	return store.AnalysisClaim{
		AttemptID: r.AttemptID, RunID: r.RunID, QueuedAt: store.FromMillis(r.QueuedAt), Tries: int(r.Tries),
		NextAt: store.FromMillis(r.NextAt), Claim: r.Claim, LeaseUntil: store.FromMillis(r.LeaseUntil), LastError: r.LastError,
	}
}

func (x queries) ClaimAnalysis(ctx context.Context, now, leaseUntil time.Time, claim string) (store.AnalysisClaim, error) {
	r, err := x.q.ClaimAnalysis(ctx, sqlitedb.ClaimAnalysisParams{Claim: claim, LeaseUntil: store.Millis(leaseUntil), Now: store.Millis(now)})
	if err != nil {
		return store.AnalysisClaim{}, mapErr("claim analysis", err)
	}
	return claimFromRow(r), nil
}

func (x queries) RetryAnalysis(ctx context.Context, c store.AnalysisClaim) (bool, error) {
	n, err := x.q.RetryAnalysis(ctx, sqlitedb.RetryAnalysisParams{
		NextAt: store.Millis(c.NextAt), LastError: c.LastError, AttemptID: c.AttemptID, Claim: c.Claim,
	})
	return n == 1, mapErr("retry analysis", err)
}

func (x queries) FinishAnalysis(ctx context.Context, c store.AnalysisClaim) (bool, error) {
	n, err := x.q.FinishAnalysis(ctx, sqlitedb.FinishAnalysisParams{AttemptID: c.AttemptID, Claim: c.Claim})
	return n == 1, mapErr("finish analysis", err)
}

func (x queries) AnalysisBacklog(ctx context.Context) (int, time.Time, error) {
	r, err := x.q.AnalysisBacklog(ctx)
	if err != nil {
		return 0, time.Time{}, mapErr("analysis backlog", err)
	}
	return int(r.N), store.FromMillis(r.Oldest), nil
}

func (x queries) PendingRunAnalyses(ctx context.Context, runID string) (int, error) {
	n, err := x.q.PendingRunAnalyses(ctx, runID)
	return int(n), mapErr("pending analyses", err)
}

// LockDigest is a no-op: SQLite serializes writers.
func (x queries) LockDigest(context.Context, string) error { return nil }

func (x queries) InsertAnalysis(ctx context.Context, r store.AnalysisRow) (bool, error) {
	n, err := x.q.InsertAnalysis(ctx, sqlitedb.InsertAnalysisParams{
		AttemptID: r.AttemptID, RunID: r.RunID, Job: r.Job, Scope: r.Scope, Digest: r.Digest, State: r.State,
		Class: r.Class, Detail: r.Detail, AnalyzedAt: store.Millis(r.AnalyzedAt),
	})
	return n == 1, mapErr("insert analysis", err)
}

func analysisFromRow(r sqlitedb.AttemptAnalysis) store.AnalysisRow {
	return store.AnalysisRow{
		AttemptID: r.AttemptID, RunID: r.RunID, Job: r.Job, Scope: r.Scope, Digest: r.Digest, State: r.State,
		Class: r.Class, Detail: r.Detail, AnalyzedAt: store.FromMillis(r.AnalyzedAt),
	}
}

func analysisRows(rows []sqlitedb.AttemptAnalysis, err error, op string) ([]store.AnalysisRow, error) {
	if err != nil {
		return nil, mapErr(op, err)
	}
	out := make([]store.AnalysisRow, len(rows))
	for i, r := range rows {
		out[i] = analysisFromRow(r)
	}
	return out, nil
}

func (x queries) GetAnalysis(ctx context.Context, attemptID string) (store.AnalysisRow, error) {
	r, err := x.q.GetAnalysis(ctx, attemptID)
	if err != nil {
		return store.AnalysisRow{}, mapErr("analysis of attempt "+attemptID, err)
	}
	return analysisFromRow(r), nil
}

func (x queries) ListRunAnalyses(ctx context.Context, runID string) ([]store.AnalysisRow, error) {
	rows, err := x.q.ListRunAnalyses(ctx, runID)
	return analysisRows(rows, err, "list run analyses")
}

func (x queries) ListDigestAnalyses(ctx context.Context, scope, digest string, limit int) ([]store.AnalysisRow, error) {
	rows, err := x.q.ListDigestAnalyses(ctx, sqlitedb.ListDigestAnalysesParams{Digest: digest, Scope: scope, Lim: int64(limit)})
	return analysisRows(rows, err, "list digest analyses")
}

func (x queries) UpsertSignature(ctx context.Context, scope, attemptID string, s core.FailureSignature) error {
	return mapErr("upsert signature", x.q.UpsertSignature(ctx, sqlitedb.UpsertSignatureParams{
		Scope: scope, Signature: s.Signature, Test: s.Test, Message: s.Message, Seen: store.Millis(s.LastSeen), Attempt: attemptID,
	}))
}

func (x queries) GetSignature(ctx context.Context, scope, signature string) (core.FailureSignature, error) {
	r, err := x.q.GetSignature(ctx, sqlitedb.GetSignatureParams{Scope: scope, Signature: signature})
	if err != nil {
		return core.FailureSignature{}, mapErr("signature "+signature, err)
	}
	return core.FailureSignature{
		Signature: r.Signature, Test: r.Test, Message: r.Message, FirstSeen: store.FromMillis(r.FirstSeen),
		LastSeen: store.FromMillis(r.LastSeen), Count: r.Count, LastAttempt: r.LastAttempt,
	}, nil
}

func flakyFromRow(r sqlitedb.Flaky) store.FlakyRow {
	return store.FlakyRow{
		Scope: r.Scope, Job: r.Job, Test: r.Test, Since: store.FromMillis(r.Since), LastSeen: store.FromMillis(r.LastSeen),
		Passes: int(r.Passes), ClearedAt: store.FromMillis(r.ClearedAt), Evidence: r.Evidence,
	}
}

func (x queries) ListFlaky(ctx context.Context, scope, job string) ([]store.FlakyRow, error) {
	var rows []sqlitedb.Flaky
	var err error
	if job == "" {
		rows, err = x.q.ListFlaky(ctx, scope)
	} else {
		rows, err = x.q.ListJobFlaky(ctx, sqlitedb.ListJobFlakyParams{Scope: scope, Job: job})
	}
	if err != nil {
		return nil, mapErr("list flaky", err)
	}
	out := make([]store.FlakyRow, len(rows))
	for i, r := range rows {
		out[i] = flakyFromRow(r)
	}
	return out, nil
}

func (x queries) UpsertFlaky(ctx context.Context, f store.FlakyRow) error {
	return mapErr("upsert flaky", x.q.UpsertFlaky(ctx, sqlitedb.UpsertFlakyParams{
		Scope: f.Scope, Job: f.Job, Test: f.Test, Since: store.Millis(f.Since), LastSeen: store.Millis(f.LastSeen),
		Passes: int64(f.Passes), ClearedAt: optMillis(f.ClearedAt), Evidence: f.Evidence,
	}))
}

// optMillis stores the zero time as 0.
func optMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return store.Millis(t)
}

func (x queries) BumpJobStatus(ctx context.Context, runID, jobID string, at time.Time) error {
	return mapErr("bump job status", x.q.BumpJobStatus(ctx, sqlitedb.BumpJobStatusParams{RunID: runID, JobID: jobID, ChangedAt: store.Millis(at)}))
}
