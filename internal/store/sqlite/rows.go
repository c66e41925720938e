package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io/fs"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/sqlite/sqlitedb"
)

// queries converts between sqlc rows and domain types at the adapter's edge.
type queries struct {
	q *sqlitedb.Queries
	// after holds what runs once the write transaction has committed; nil
	// outside one.
	after *[]func()
	read  *sqlitedb.Queries
	// feed announces, once committed, the runs and logs written.
	feed *store.Feed
}

// announce has feed announce id once the transaction commits.
func (x queries) announce(id string) {
	if x.feed == nil || x.after == nil {
		return
	}
	feed := x.feed
	*x.after = append(*x.after, func() { feed.Announce(id) })
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}

func ms(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func at(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return store.FromMillis(n.Int64)
}

func (x queries) InsertRun(ctx context.Context, r core.Run) error {
	return mapErr("insert run", x.q.InsertRun(ctx, sqlitedb.InsertRunParams{
		ID: r.ID, Repo: r.Repo, Ref: r.Ref, CommitSha: r.Commit, Event: r.Event,
		Trusted: boolInt(r.Trusted), State: string(r.State), Reason: string(r.Reason), CreatedAt: store.Millis(r.CreatedAt),
		Project: r.Project, TrustReason: r.TrustReason, RerunOf: r.RerunOf,
	}))
}

func runFromRow(row sqlitedb.Run) (core.Run, error) {
	return store.RunFromRow(store.RunRow{
		ID: row.ID, Repo: row.Repo, Ref: row.Ref, Commit: row.CommitSha, Event: row.Event,
		Trusted: row.Trusted != 0, Project: row.Project, TrustReason: row.TrustReason, RerunOf: row.RerunOf, State: row.State, Reason: row.Reason,
		CreatedAt: store.FromMillis(row.CreatedAt), StartedAt: at(row.StartedAt), FinishedAt: at(row.FinishedAt),
	})
}

func (x queries) GetRun(ctx context.Context, id string) (core.Run, error) {
	row, err := x.q.GetRun(ctx, id)
	if err != nil {
		return core.Run{}, mapErr("get run "+id, err)
	}
	return runFromRow(row)
}

func (x queries) ListActiveRuns(ctx context.Context) ([]core.Run, error) {
	rows, err := x.q.ListActiveRuns(ctx)
	if err != nil {
		return nil, mapErr("list active runs", err)
	}
	return convertAll(rows, runFromRow)
}

func (x queries) SetRunState(ctx context.Context, m store.RunMove) (bool, error) {
	n, err := x.q.SetRunState(ctx, sqlitedb.SetRunStateParams{
		ID: m.ID, FromState: string(m.From), ToState: string(m.To), Reason: string(m.Reason),
		StartedAt: ms(m.StartedAt), FinishedAt: ms(m.FinishedAt),
	})
	return n == 1, mapErr("set run state", err)
}

func (x queries) InsertJob(ctx context.Context, j core.Job, position int) error {
	spec, err := json.Marshal(store.SpecToRecord(j.Spec))
	if err != nil {
		return mapErr("encode job spec", err)
	}
	return mapErr("insert job", x.q.InsertJob(ctx, sqlitedb.InsertJobParams{
		ID: j.ID, RunID: j.RunID, Name: j.Name, Position: int64(position), Spec: string(spec),
		State: string(j.State), Reason: string(j.Reason), Explain: j.Explain, CreatedAt: store.Millis(j.CreatedAt),
		Decision: string(j.Decision), Digest: j.Digest, ReusedFrom: j.ReusedFrom,
	}))
}

func jobFromRow(row sqlitedb.Job) (core.Job, error) {
	return store.JobFromRow(store.JobRow{
		ID: row.ID, RunID: row.RunID, Name: row.Name, Spec: row.Spec, State: row.State,
		Reason: row.Reason, Explain: row.Explain, CreatedAt: store.FromMillis(row.CreatedAt),
		Decision: row.Decision, Digest: row.Digest, ReusedFrom: row.ReusedFrom,
		StartedAt: at(row.StartedAt), FinishedAt: at(row.FinishedAt),
	})
}

func (x queries) GetJob(ctx context.Context, id string) (core.Job, error) {
	row, err := x.q.GetJob(ctx, id)
	if err != nil {
		return core.Job{}, mapErr("get job "+id, err)
	}
	return jobFromRow(row)
}

func (x queries) ListJobs(ctx context.Context, runID string) ([]core.Job, error) {
	rows, err := x.q.ListJobs(ctx, runID)
	if err != nil {
		return nil, mapErr("list jobs", err)
	}
	return convertAll(rows, jobFromRow)
}

func (x queries) SetJobState(ctx context.Context, m store.JobMove) (bool, error) {
	n, err := x.q.SetJobState(ctx, sqlitedb.SetJobStateParams{
		ID: m.ID, FromState: string(m.From), ToState: string(m.To), Reason: string(m.Reason),
		StartedAt: ms(m.StartedAt), FinishedAt: ms(m.FinishedAt),
	})
	return n == 1, mapErr("set job state", err)
}

func (x queries) InsertAttempt(ctx context.Context, a core.Attempt) error {
	labels, err := store.EncodeLabels(a.Labels)
	if err != nil {
		return err
	}
	err = x.q.InsertAttempt(ctx, sqlitedb.InsertAttemptParams{
		ID: a.ID, JobID: a.JobID, RunID: a.RunID, Number: int64(a.Number), State: string(a.State),
		Labels: labels, QueuedAt: store.Millis(a.QueuedAt),
	})
	if err != nil {
		return mapErr("insert attempt", err)
	}
	// One row per label, which the claim's NOT EXISTS probes by key.
	for _, l := range store.MatchLabels(a.Labels) {
		err := x.q.InsertAttemptLabel(ctx, sqlitedb.InsertAttemptLabelParams{AttemptID: a.ID, Label: l})
		if err != nil {
			return mapErr("insert attempt label", err)
		}
	}
	return nil
}

func attemptFromRow(row sqlitedb.Attempt) (core.Attempt, error) {
	r := store.AttemptRow{
		ID: row.ID, JobID: row.JobID, RunID: row.RunID, Number: int(row.Number), State: row.State,
		Reason: row.Reason, Labels: row.Labels, RunnerID: row.RunnerID, LeaseToken: row.LeaseToken,
		LeaseExpiresAt: at(row.LeaseExpiresAt), QueuedAt: store.FromMillis(row.QueuedAt),
		LeasedAt: at(row.LeasedAt), StartedAt: at(row.StartedAt), FinishedAt: at(row.FinishedAt),
		LogLength: row.LogLength, LogDigest: row.LogDigest,
	}
	if row.ExitCode.Valid {
		c := int(row.ExitCode.Int64)
		r.ExitCode = &c
	}
	return store.AttemptFromRow(r)
}

func (x queries) GetAttempt(ctx context.Context, id string) (core.Attempt, error) {
	row, err := x.q.GetAttempt(ctx, id)
	if err != nil {
		return core.Attempt{}, mapErr("get attempt "+id, err)
	}
	return attemptFromRow(row)
}

func (x queries) ListAttempts(ctx context.Context, runID string) ([]core.Attempt, error) {
	rows, err := x.q.ListAttempts(ctx, runID)
	if err != nil {
		return nil, mapErr("list attempts", err)
	}
	return convertAll(rows, attemptFromRow)
}

func (x queries) ListJobAttempts(ctx context.Context, jobID string) ([]core.Attempt, error) {
	rows, err := x.q.ListJobAttempts(ctx, jobID)
	if err != nil {
		return nil, mapErr("list job attempts", err)
	}
	return convertAll(rows, attemptFromRow)
}

func (x queries) SetAttemptState(ctx context.Context, m store.AttemptMove) (bool, error) {
	n, err := x.q.SetAttemptState(ctx, sqlitedb.SetAttemptStateParams{
		ID: m.ID, FromState: string(m.From), ToState: string(m.To), Reason: string(m.Reason),
		FinishedAt: ms(m.FinishedAt),
	})
	return n == 1, mapErr("set attempt state", err)
}

func (x queries) SetFencedAttemptState(ctx context.Context, m store.AttemptMove) (core.Attempt, bool, error) {
	p := sqlitedb.SetFencedAttemptStateParams{
		ID: m.ID, LeaseToken: m.LeaseToken, RunnerID: m.RunnerID, FromState: string(m.From), ToState: string(m.To),
		Reason: string(m.Reason), StartedAt: ms(m.StartedAt), FinishedAt: ms(m.FinishedAt),
	}
	if m.ExitCode != nil {
		p.ExitCode = sql.NullInt64{Int64: int64(*m.ExitCode), Valid: true}
	}
	row, err := x.q.SetFencedAttemptState(ctx, p)
	if errors.Is(err, sql.ErrNoRows) {
		return core.Attempt{}, false, nil
	}
	if err != nil {
		return core.Attempt{}, false, mapErr("set attempt state", err)
	}
	a, err := attemptFromRow(row)
	return a, err == nil, err
}

func (x queries) ClaimRunAttempt(ctx context.Context, c store.ClaimRow) (core.Attempt, error) {
	row, err := x.q.ClaimRunAttempt(ctx, sqlitedb.ClaimRunAttemptParams{
		RunID: c.RunID, RunnerID: c.RunnerID, LeaseToken: c.LeaseToken,
		Now: ms(c.Now), ExpiresAt: ms(c.ExpiresAt),
	})
	if err != nil {
		return core.Attempt{}, mapErr("claim attempt", err)
	}
	return attemptFromRow(row)
}

func (x queries) ClaimAttempt(ctx context.Context, c store.ClaimRow) (store.Claimed, error) {
	row, err := x.q.ClaimAttempt(ctx, sqlitedb.ClaimAttemptParams{
		RunnerID: c.RunnerID, LeaseToken: c.LeaseToken, Now: ms(c.Now), ExpiresAt: ms(c.ExpiresAt), Labels: c.Labels,
	})
	if err != nil {
		return store.Claimed{}, mapErr("claim attempt", err)
	}
	a, err := attemptFromRow(row)
	if err != nil {
		return store.Claimed{}, err
	}
	j, r, err := x.GetJobRun(ctx, a.JobID)
	if err != nil {
		return store.Claimed{}, err
	}
	if err := x.InsertEvent(ctx, store.ClaimEvent(c, a)); err != nil {
		return store.Claimed{}, err
	}
	return store.Claimed{Attempt: a, Job: j, Run: r}, nil
}

func (x queries) ExtendLease(ctx context.Context, id, token string, expires time.Time) (bool, error) {
	n, err := x.q.ExtendLease(ctx, sqlitedb.ExtendLeaseParams{ID: id, LeaseToken: token, ExpiresAt: ms(expires)})
	return n == 1, mapErr("extend lease", err)
}

func (x queries) ListExpiredLeases(ctx context.Context, now time.Time, limit int) ([]core.Attempt, error) {
	rows, err := x.q.ListExpiredLeases(ctx, sqlitedb.ListExpiredLeasesParams{LeaseExpiresAt: ms(now), Limit: int64(limit)})
	if err != nil {
		return nil, mapErr("list expired leases", err)
	}
	return convertAll(rows, attemptFromRow)
}

func (x queries) InsertEvent(ctx context.Context, e core.Event) error {
	err := x.q.InsertEvent(ctx, sqlitedb.InsertEventParams{
		At: store.Millis(e.At), Actor: e.Actor, Entity: e.Entity, EntityID: e.EntityID, RunID: e.RunID,
		FromState: e.From, ToState: e.To, Reason: string(e.Reason),
	})
	if err == nil {
		x.announce(e.RunID)
	}
	return mapErr("insert event", err)
}

func (x queries) ListRunEvents(ctx context.Context, runID string) ([]core.Event, error) {
	rows, err := x.q.ListRunEvents(ctx, runID)
	if err != nil {
		return nil, mapErr("list events", err)
	}
	return convertAll(rows, func(r sqlitedb.Event) (core.Event, error) {
		return store.EventFromRow(store.EventRow{
			Seq: r.Seq, At: store.FromMillis(r.At), Actor: r.Actor, Entity: r.Entity, EntityID: r.EntityID,
			RunID: r.RunID, From: r.FromState, To: r.ToState, Reason: r.Reason,
		})
	})
}

func convertAll[R, T any](rows []R, conv func(R) (T, error)) ([]T, error) {
	out := make([]T, 0, len(rows))
	for _, r := range rows {
		t, err := conv(r)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func (x queries) GetLogState(ctx context.Context, attemptID string) (store.LogState, error) {
	row, err := x.q.GetLogState(ctx, attemptID)
	if err != nil {
		return store.LogState{}, mapErr("get log state "+attemptID, err)
	}
	st, err := core.ParseAttemptState(row.State)
	if err != nil {
		return store.LogState{}, err
	}
	return store.LogState{Length: row.LogLength, Digest: row.LogDigest, LeaseToken: row.LeaseToken, State: st}, nil
}

func (x queries) AdvanceLog(ctx context.Context, f store.Fence, from, to int64) (bool, error) {
	n, err := x.q.AdvanceLog(ctx, sqlitedb.AdvanceLogParams{ID: f.AttemptID, LeaseToken: f.LeaseToken, FromLength: from, ToLength: to})
	if n == 1 {
		x.announce(f.AttemptID)
	}
	return n == 1, mapErr("advance log", err)
}

func (x queries) InsertLogChunk(ctx context.Context, attemptID string, offset int64, data []byte) error {
	return mapErr("insert log chunk", x.q.InsertLogChunk(ctx, sqlitedb.InsertLogChunkParams{AttemptID: attemptID, Offset: offset, Data: data}))
}

func (x queries) ListLogChunks(ctx context.Context, attemptID string, from int64, limit int) ([]store.LogChunk, error) {
	rows, err := x.q.ListLogChunks(ctx, sqlitedb.ListLogChunksParams{AttemptID: attemptID, FromOffset: from, MaxChunks: int64(limit)})
	if err != nil {
		return nil, mapErr("list log chunks", err)
	}
	return convertAll(rows, func(r sqlitedb.ListLogChunksRow) (store.LogChunk, error) {
		return store.LogChunk{Offset: r.Offset, Data: r.Data}, nil
	})
}

func (x queries) InsertLogTime(ctx context.Context, attemptID string, offset int64, at time.Time) error {
	return mapErr("insert log time", x.q.InsertLogTime(ctx, sqlitedb.InsertLogTimeParams{AttemptID: attemptID, LogOffset: offset, ReceivedAt: store.Millis(at)}))
}

func (x queries) ListLogTimes(ctx context.Context, attemptID string, from, to int64) ([]store.LogTime, error) {
	rows, err := x.q.ListLogTimes(ctx, sqlitedb.ListLogTimesParams{AttemptID: attemptID, FromOffset: from, ToOffset: to})
	if err != nil {
		return nil, mapErr("list log times", err)
	}
	return convertAll(rows, func(r sqlitedb.ListLogTimesRow) (store.LogTime, error) {
		return store.LogTime{Offset: r.Offset, At: store.FromMillis(r.ReceivedAt)}, nil
	})
}

func (x queries) SetLogDigest(ctx context.Context, attemptID, digest string) (bool, error) {
	n, err := x.q.SetLogDigest(ctx, sqlitedb.SetLogDigestParams{ID: attemptID, Digest: digest})
	return n == 1, mapErr("set log digest", err)
}

func (x queries) DeleteLogChunks(ctx context.Context, attemptID string) error {
	return mapErr("delete log chunks", x.q.DeleteLogChunks(ctx, attemptID))
}

func (x queries) ListUnsealedLogs(ctx context.Context, limit int) ([]string, error) {
	ids, err := x.q.ListUnsealedLogs(ctx, int64(limit))
	return ids, mapErr("list unsealed logs", err)
}

func (x queries) InsertRunner(ctx context.Context, r store.Runner) error {
	row, err := store.RunnerToRow(r)
	if err != nil {
		return err
	}
	return mapErr("insert runner", x.q.InsertRunner(ctx, sqlitedb.InsertRunnerParams{
		ID: row.ID, Name: row.Name, Labels: row.Labels, CredentialHash: row.CredentialHash,
		ProtocolVersion: int64(row.ProtocolVersion), CreatedAt: row.CreatedAt, LastSeenAt: row.LastSeenAt,
	}))
}

func (x queries) GetRunner(ctx context.Context, id string) (store.Runner, error) {
	row, err := x.q.GetRunner(ctx, id)
	if err != nil {
		return store.Runner{}, mapErr("runner "+id, err)
	}
	return runnerFromRow(row)
}

func runnerFromRow(row sqlitedb.Runner) (store.Runner, error) {
	return store.RunnerFromRow(store.RunnerRow{
		ID: row.ID, Name: row.Name, Labels: row.Labels, CredentialHash: row.CredentialHash,
		ProtocolVersion: int(row.ProtocolVersion), CreatedAt: row.CreatedAt, LastSeenAt: row.LastSeenAt,
	})
}

func (x queries) ListRunners(ctx context.Context) ([]store.Runner, error) {
	rows, err := x.q.ListRunners(ctx)
	if err != nil {
		return nil, mapErr("list runners", err)
	}
	return convertAll(rows, runnerFromRow)
}

func (x queries) DeleteRunner(ctx context.Context, id string) (bool, error) {
	n, err := x.q.DeleteRunner(ctx, id)
	return n == 1, mapErr("delete runner", err)
}

func (x queries) TouchRunner(ctx context.Context, id string, at time.Time) error {
	return mapErr("touch runner", x.q.TouchRunner(ctx, sqlitedb.TouchRunnerParams{ID: id, LastSeenAt: store.Millis(at)}))
}

func (x queries) QueueDepth(ctx context.Context) (map[string]int64, error) {
	rows, err := x.q.QueueDepth(ctx)
	if err != nil {
		return nil, mapErr("queue depth", err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Labels] += r.Queued
	}
	return out, nil
}

// LockRun only reads the run: with one writer at a time, transactions
// already take turns.
func (x queries) LockRun(ctx context.Context, id string) (core.Run, error) {
	return x.GetRun(ctx, id)
}

func (x queries) ListJobStates(ctx context.Context, runID string) ([]core.Job, error) {
	rows, err := x.q.ListJobStates(ctx, runID)
	if err != nil {
		return nil, mapErr("list job states", err)
	}
	out := make([]core.Job, len(rows))
	for i, r := range rows {
		st, err := core.ParseJobState(r.State)
		if err != nil {
			return nil, err
		}
		reason, err := core.ParseReason(r.Reason)
		if err != nil {
			return nil, err
		}
		out[i] = core.Job{ID: r.ID, RunID: runID, Name: r.Name, State: st, Reason: reason}
	}
	return out, nil
}

func (x queries) CountJobStatesAfterCommit(ctx context.Context, runID string, got func(map[core.JobState]int)) {
	count := func() {
		if c, err := (queries{q: x.read}).CountJobStates(ctx, runID); err == nil {
			got(c)
		}
	}
	if x.after == nil {
		count()
		return
	}
	*x.after = append(*x.after, count)
}

func (x queries) CountJobStates(ctx context.Context, runID string) (map[core.JobState]int, error) {
	rows, err := x.q.CountJobStates(ctx, runID)
	if err != nil {
		return nil, mapErr("count job states", err)
	}
	out := make(map[core.JobState]int, len(rows))
	for _, r := range rows {
		st, err := core.ParseJobState(r.State)
		if err != nil {
			return nil, err
		}
		out[st] = int(r.Jobs)
	}
	return out, nil
}

func (x queries) GetJobRun(ctx context.Context, jobID string) (core.Job, core.Run, error) {
	row, err := x.q.GetJobRun(ctx, jobID)
	if err != nil {
		return core.Job{}, core.Run{}, mapErr("get job "+jobID, err)
	}
	j, err := jobFromRow(row.Job)
	if err != nil {
		return core.Job{}, core.Run{}, err
	}
	r, err := runFromRow(row.Run)
	return j, r, err
}

func (x queries) GetAttemptJob(ctx context.Context, attemptID string) (core.Attempt, core.Job, error) {
	row, err := x.q.GetAttemptJob(ctx, attemptID)
	if err != nil {
		return core.Attempt{}, core.Job{}, mapErr("get attempt "+attemptID, err)
	}
	a, err := attemptFromRow(row.Attempt)
	if err != nil {
		return core.Attempt{}, core.Job{}, err
	}
	j, err := jobFromRow(row.Job)
	return a, j, err
}

// MoveFencedWithJob reads the job, then runs the two updates one after
// the other: the one writer makes them as good as one statement.
func (x queries) MoveFencedWithJob(ctx context.Context, am store.AttemptMove, jm store.JobMove, by store.Stamp) (store.Moved, error) {
	_, j, err := x.GetAttemptJob(ctx, am.ID)
	if core.KindOf(err) == core.KindNotFound {
		return store.Moved{}, nil
	}
	if err != nil {
		return store.Moved{}, err
	}
	// Required: both or neither.
	if jm.Required && (j.State != jm.From || (jm.NoOutputs && len(j.Spec.Outputs) > 0)) {
		return store.Moved{}, nil
	}
	a, ok, err := x.SetFencedAttemptState(ctx, am)
	if err != nil || !ok {
		return store.Moved{}, err
	}
	jm.ID = a.JobID
	moved, err := x.SetJobState(ctx, jm)
	if err != nil {
		return store.Moved{}, err
	}
	if moved {
		j = jm.Apply(j)
	}
	m := store.Moved{Attempt: a, Job: j, AttemptMoved: true, JobMoved: moved}
	for _, e := range store.MoveEvents(by, am, jm, m) {
		if err := x.InsertEvent(ctx, e); err != nil {
			return store.Moved{}, err
		}
	}
	return m, nil
}

func (x queries) InsertProject(ctx context.Context, p core.Project) error {
	row, err := store.ProjectToRow(p)
	if err != nil {
		return err
	}
	return mapErr("insert project", x.q.InsertProject(ctx, sqlitedb.InsertProjectParams{
		ID: row.ID, Name: row.Name, RepoUrl: row.RepoURL, DefaultBranch: row.DefaultBranch,
		Protected: row.Protected, Secrets: row.Secrets, Labels: row.Labels, Forge: row.Forge,
		UntrustedNetwork: boolInt(row.UntrustedNetwork), Public: boolInt(row.Public), CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
	}))
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func projectFromRow(row sqlitedb.Project) (core.Project, error) {
	return store.ProjectFromRow(store.ProjectRow{
		ID: row.ID, Name: row.Name, RepoURL: row.RepoUrl, DefaultBranch: row.DefaultBranch,
		Protected: row.Protected, Secrets: row.Secrets, Labels: row.Labels, Forge: row.Forge,
		UntrustedNetwork: row.UntrustedNetwork != 0, Public: row.Public != 0, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
	})
}

func (x queries) GetProject(ctx context.Context, name string) (core.Project, error) {
	row, err := x.q.GetProject(ctx, name)
	if err != nil {
		return core.Project{}, mapErr("project "+name, err)
	}
	return projectFromRow(row)
}

func (x queries) GetProjectByRepo(ctx context.Context, repoURL string) (core.Project, error) {
	row, err := x.q.GetProjectByRepo(ctx, repoURL)
	if err != nil {
		return core.Project{}, mapErr("project of "+repoURL, err)
	}
	return projectFromRow(row)
}

func (x queries) ListProjects(ctx context.Context) ([]core.Project, error) {
	rows, err := x.q.ListProjects(ctx)
	if err != nil {
		return nil, mapErr("list projects", err)
	}
	return convertAll(rows, projectFromRow)
}

func (x queries) UpdateProject(ctx context.Context, p core.Project) (core.Project, error) {
	row, err := store.ProjectToRow(p)
	if err != nil {
		return core.Project{}, err
	}
	got, err := x.q.UpdateProject(ctx, sqlitedb.UpdateProjectParams{
		Name: row.Name, RepoUrl: row.RepoURL, DefaultBranch: row.DefaultBranch,
		Protected: row.Protected, Secrets: row.Secrets, Labels: row.Labels, Forge: row.Forge,
		UntrustedNetwork: boolInt(row.UntrustedNetwork), Public: boolInt(row.Public), UpdatedAt: row.UpdatedAt,
	})
	if err != nil {
		return core.Project{}, mapErr("update project "+p.Name, err)
	}
	return projectFromRow(got)
}

func (x queries) DeleteProject(ctx context.Context, name string) (bool, error) {
	n, err := x.q.DeleteProject(ctx, name)
	return n == 1, mapErr("delete project", err)
}

func (x queries) InsertAPIToken(ctx context.Context, t store.APIToken) error {
	return mapErr("insert API token", x.q.InsertAPIToken(ctx, sqlitedb.InsertAPITokenParams{
		ID: t.ID, Name: t.Name, Role: t.Role, Hash: t.Hash, CreatedAt: store.Millis(t.CreatedAt),
	}))
}

func (x queries) GetAPITokenByHash(ctx context.Context, hash string) (store.APIToken, error) {
	row, err := x.q.GetAPITokenByHash(ctx, hash)
	if err != nil {
		return store.APIToken{}, mapErr("API token", err)
	}
	return store.APIToken{ID: row.ID, Name: row.Name, Role: row.Role, Hash: row.Hash, CreatedAt: store.FromMillis(row.CreatedAt)}, nil
}

func (x queries) CountAPITokens(ctx context.Context) (int, error) {
	n, err := x.q.CountAPITokens(ctx)
	return int(n), mapErr("count API tokens", err)
}

// LockAPITokens does nothing: with one writer at a time, transactions
// already take turns.
func (x queries) LockAPITokens(context.Context) error { return nil }

func (x queries) ListRuns(ctx context.Context, q store.RunQuery) ([]core.Run, error) {
	rows, err := x.q.ListRuns(ctx, sqlitedb.ListRunsParams{
		Project: q.Project, Ref: q.Ref, State: q.State, Event: q.Event,
		BeforeAt: q.BeforeAt, BeforeID: q.BeforeID, MaxRows: int64(q.Limit),
	})
	if err != nil {
		return nil, mapErr("list runs", err)
	}
	return convertAll(rows, runFromRow)
}
