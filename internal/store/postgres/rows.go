package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/postgres/pgdb"
)

// queries converts between sqlc rows and domain types at the adapter's
// edge. tx is set inside Driver.Write.
type queries struct {
	q  *pgdb.Queries
	tx *tx
}

func ms(t time.Time) pgtype.Int8 {
	if t.IsZero() {
		return pgtype.Int8{}
	}
	return pgtype.Int8{Int64: t.UnixMilli(), Valid: true}
}

func at(n pgtype.Int8) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return store.FromMillis(n.Int64)
}

func (x queries) InsertRun(ctx context.Context, r core.Run) error {
	return mapErr("insert run", x.q.InsertRun(ctx, pgdb.InsertRunParams{
		ID: r.ID, Repo: r.Repo, Ref: r.Ref, CommitSha: r.Commit, Event: r.Event,
		Trusted: r.Trusted, State: string(r.State), Reason: string(r.Reason), CreatedAt: store.Millis(r.CreatedAt),
		Project: r.Project, TrustReason: r.TrustReason, RerunOf: r.RerunOf,
	}))
}

func runFromRow(row pgdb.Run) (core.Run, error) {
	return store.RunFromRow(store.RunRow{
		ID: row.ID, Repo: row.Repo, Ref: row.Ref, Commit: row.CommitSha, Event: row.Event,
		Trusted: row.Trusted, Project: row.Project, TrustReason: row.TrustReason, RerunOf: row.RerunOf, State: row.State, Reason: row.Reason,
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
	n, err := x.q.SetRunState(ctx, pgdb.SetRunStateParams{
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
	return mapErr("insert job", x.q.InsertJob(ctx, pgdb.InsertJobParams{
		ID: j.ID, RunID: j.RunID, Name: j.Name, Position: int32(position), Spec: string(spec),
		State: string(j.State), Reason: string(j.Reason), Explain: j.Explain, CreatedAt: store.Millis(j.CreatedAt),
		Decision: string(j.Decision), Digest: j.Digest, ReusedFrom: j.ReusedFrom, HasOutputs: len(j.Spec.Outputs) > 0,
	}))
}

func jobFromRow(row pgdb.Job) (core.Job, error) {
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
	n, err := x.q.SetJobState(ctx, pgdb.SetJobStateParams{
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
	err = x.q.InsertAttempt(ctx, pgdb.InsertAttemptParams{
		ID: a.ID, JobID: a.JobID, RunID: a.RunID, Number: int32(a.Number), State: string(a.State),
		Labels: labels, QueuedAt: store.Millis(a.QueuedAt), LabelSet: store.MatchLabels(a.Labels),
	})
	if err != nil {
		return mapErr("insert attempt", err)
	}
	if a.State != core.AttemptQueued {
		return nil
	}
	// Delivered at commit, to every replica's long-polls.
	if x.tx != nil {
		x.tx.notify = true // once, with COMMIT
		return nil
	}
	return mapErr("notify queue", x.q.NotifyQueue(ctx))
}

func attemptFromRow(row pgdb.Attempt) (core.Attempt, error) {
	r := store.AttemptRow{
		ID: row.ID, JobID: row.JobID, RunID: row.RunID, Number: int(row.Number), State: row.State,
		Reason: row.Reason, Labels: row.Labels, RunnerID: row.RunnerID, LeaseToken: row.LeaseToken,
		LeaseExpiresAt: at(row.LeaseExpiresAt), QueuedAt: store.FromMillis(row.QueuedAt),
		LeasedAt: at(row.LeasedAt), StartedAt: at(row.StartedAt), FinishedAt: at(row.FinishedAt),
		LogLength: row.LogLength, LogDigest: row.LogDigest,
	}
	if row.ExitCode.Valid {
		c := int(row.ExitCode.Int32)
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
	n, err := x.q.SetAttemptState(ctx, pgdb.SetAttemptStateParams{
		ID: m.ID, FromState: string(m.From), ToState: string(m.To), Reason: string(m.Reason),
		FinishedAt: ms(m.FinishedAt),
	})
	return n == 1, mapErr("set attempt state", err)
}

func (x queries) SetFencedAttemptState(ctx context.Context, m store.AttemptMove) (core.Attempt, bool, error) {
	p := pgdb.SetFencedAttemptStateParams{
		ID: m.ID, LeaseToken: m.LeaseToken, RunnerID: m.RunnerID, FromState: string(m.From), ToState: string(m.To),
		Reason: string(m.Reason), StartedAt: ms(m.StartedAt), FinishedAt: ms(m.FinishedAt),
	}
	if m.ExitCode != nil {
		p.ExitCode = pgtype.Int4{Int32: int32(*m.ExitCode), Valid: true}
	}
	row, err := x.q.SetFencedAttemptState(ctx, p)
	if errors.Is(err, pgx.ErrNoRows) {
		return core.Attempt{}, false, nil
	}
	if err != nil {
		return core.Attempt{}, false, mapErr("set attempt state", err)
	}
	a, err := attemptFromRow(row)
	return a, err == nil, err
}

func (x queries) ClaimRunAttempt(ctx context.Context, c store.ClaimRow) (core.Attempt, error) {
	row, err := x.q.ClaimRunAttempt(ctx, pgdb.ClaimRunAttemptParams{
		RunID: c.RunID, RunnerID: c.RunnerID, LeaseToken: c.LeaseToken,
		Now: ms(c.Now), ExpiresAt: ms(c.ExpiresAt),
	})
	if err != nil {
		return core.Attempt{}, mapErr("claim attempt", err)
	}
	return attemptFromRow(row)
}

// claimSettings are the claim transaction's own settings, sent with its
// BEGIN in one statement:
//
//   - enable_sort off makes the claim walk the queue by its index whatever
//     the planner's statistics say: on a table they have not caught up
//     with (a new database, a burst of runs) it would sort every queued
//     attempt for each claim. PostgreSQL has no plan hints.
//   - synchronous_commit off lets the claim's commit return before its WAL
//     reaches the disk. A claim lost to a PostgreSQL crash costs nothing:
//     the attempt is queued again, and the runner that got it cannot start
//     it (its start is fenced by the lost token, and a start's own flushed
//     commit flushes the claim before it), so no job runs twice.
const claimSettings = "SELECT set_config('enable_sort', 'off', true), set_config('synchronous_commit', 'off', true)"

func (x queries) ClaimAttempt(ctx context.Context, c store.ClaimRow) (store.Claimed, error) {
	if x.tx != nil {
		if err := x.tx.set(ctx, claimSettings); err != nil {
			return store.Claimed{}, mapErr("claim attempt", err)
		}
	}
	row, err := x.q.ClaimAttempt(ctx, pgdb.ClaimAttemptParams{
		RunnerID: c.RunnerID, LeaseToken: c.LeaseToken, Now: ms(c.Now), ExpiresAt: ms(c.ExpiresAt), Labels: c.Labels,
		Actor: c.Actor,
	})
	if err != nil {
		return store.Claimed{}, mapErr("claim attempt", err)
	}
	a, err := attemptFromRow(row.Attempt)
	if err != nil {
		return store.Claimed{}, err
	}
	// The row as it was before the claim: the claim's own writes.
	a.State, a.RunnerID, a.LeaseToken = core.AttemptLeased, c.RunnerID, c.LeaseToken
	a.LeasedAt, a.LeaseExpiresAt = store.FromMillis(store.Millis(c.Now)), store.FromMillis(store.Millis(c.ExpiresAt))
	j, err := jobFromRow(row.Job)
	if err != nil {
		return store.Claimed{}, err
	}
	r, err := runFromRow(row.Run)
	if err != nil {
		return store.Claimed{}, err
	}
	return store.Claimed{Attempt: a, Job: j, Run: r}, nil
}

func (x queries) ExtendLease(ctx context.Context, id, token string, expires time.Time) (bool, error) {
	n, err := x.q.ExtendLease(ctx, pgdb.ExtendLeaseParams{ID: id, LeaseToken: token, ExpiresAt: ms(expires)})
	return n == 1, mapErr("extend lease", err)
}

func (x queries) ListExpiredLeases(ctx context.Context, now time.Time, limit int) ([]core.Attempt, error) {
	rows, err := x.q.ListExpiredLeases(ctx, pgdb.ListExpiredLeasesParams{LeaseExpiresAt: ms(now), Limit: int32(limit)})
	if err != nil {
		return nil, mapErr("list expired leases", err)
	}
	return convertAll(rows, attemptFromRow)
}

// InsertEvent appends an event; in a transaction it is sent with COMMIT,
// since nothing reads events back before then.
func (x queries) InsertEvent(ctx context.Context, e core.Event) error {
	if x.tx != nil {
		x.tx.events = append(x.tx.events, e)
		return nil
	}
	return mapErr("insert event", x.q.InsertEvent(ctx, pgdb.InsertEventParams{
		At: store.Millis(e.At), Actor: e.Actor, Entity: e.Entity, EntityID: e.EntityID, RunID: e.RunID,
		FromState: e.From, ToState: e.To, Reason: string(e.Reason),
	}))
}

// insertEvents is the statement that writes a transaction's events.
func insertEvents(evs []core.Event) pgdb.InsertEventsParams {
	p := pgdb.InsertEventsParams{}
	for _, e := range evs {
		p.At = append(p.At, store.Millis(e.At))
		p.Actor = append(p.Actor, e.Actor)
		p.Entity = append(p.Entity, e.Entity)
		p.EntityID = append(p.EntityID, e.EntityID)
		p.RunID = append(p.RunID, e.RunID)
		p.FromState = append(p.FromState, e.From)
		p.ToState = append(p.ToState, e.To)
		p.Reason = append(p.Reason, string(e.Reason))
	}
	return p
}

func (x queries) ListRunEvents(ctx context.Context, runID string) ([]core.Event, error) {
	rows, err := x.q.ListRunEvents(ctx, runID)
	if err != nil {
		return nil, mapErr("list events", err)
	}
	return convertAll(rows, func(r pgdb.Event) (core.Event, error) {
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
	n, err := x.q.AdvanceLog(ctx, pgdb.AdvanceLogParams{ID: f.AttemptID, LeaseToken: f.LeaseToken, FromLength: from, ToLength: to})
	return n == 1, mapErr("advance log", err)
}

func (x queries) InsertLogChunk(ctx context.Context, attemptID string, offset int64, data []byte) error {
	return mapErr("insert log chunk", x.q.InsertLogChunk(ctx, pgdb.InsertLogChunkParams{AttemptID: attemptID, Offset: offset, Data: data}))
}

func (x queries) ListLogChunks(ctx context.Context, attemptID string, from int64, limit int) ([]store.LogChunk, error) {
	rows, err := x.q.ListLogChunks(ctx, pgdb.ListLogChunksParams{AttemptID: attemptID, FromOffset: from, MaxChunks: int32(limit)})
	if err != nil {
		return nil, mapErr("list log chunks", err)
	}
	return convertAll(rows, func(r pgdb.ListLogChunksRow) (store.LogChunk, error) {
		return store.LogChunk{Offset: r.Offset, Data: r.Data}, nil
	})
}

func (x queries) InsertLogTime(ctx context.Context, attemptID string, offset int64, at time.Time) error {
	return mapErr("insert log time", x.q.InsertLogTime(ctx, pgdb.InsertLogTimeParams{AttemptID: attemptID, LogOffset: offset, ReceivedAt: store.Millis(at)}))
}

func (x queries) ListLogTimes(ctx context.Context, attemptID string, from, to int64) ([]store.LogTime, error) {
	rows, err := x.q.ListLogTimes(ctx, pgdb.ListLogTimesParams{AttemptID: attemptID, FromOffset: from, ToOffset: to})
	if err != nil {
		return nil, mapErr("list log times", err)
	}
	return convertAll(rows, func(r pgdb.ListLogTimesRow) (store.LogTime, error) {
		return store.LogTime{Offset: r.Offset, At: store.FromMillis(r.ReceivedAt)}, nil
	})
}

func (x queries) SetLogDigest(ctx context.Context, attemptID, digest string) (bool, error) {
	n, err := x.q.SetLogDigest(ctx, pgdb.SetLogDigestParams{ID: attemptID, Digest: digest})
	return n == 1, mapErr("set log digest", err)
}

func (x queries) DeleteLogChunks(ctx context.Context, attemptID string) error {
	return mapErr("delete log chunks", x.q.DeleteLogChunks(ctx, attemptID))
}

func (x queries) ListUnsealedLogs(ctx context.Context, limit int) ([]string, error) {
	ids, err := x.q.ListUnsealedLogs(ctx, int32(limit))
	return ids, mapErr("list unsealed logs", err)
}

func (x queries) InsertRunner(ctx context.Context, r store.Runner) error {
	row, err := store.RunnerToRow(r)
	if err != nil {
		return err
	}
	return mapErr("insert runner", x.q.InsertRunner(ctx, pgdb.InsertRunnerParams{
		ID: row.ID, Name: row.Name, Labels: row.Labels, CredentialHash: row.CredentialHash,
		ProtocolVersion: int32(row.ProtocolVersion), CreatedAt: row.CreatedAt, LastSeenAt: row.LastSeenAt,
	}))
}

func (x queries) GetRunner(ctx context.Context, id string) (store.Runner, error) {
	row, err := x.q.GetRunner(ctx, id)
	if err != nil {
		return store.Runner{}, mapErr("runner "+id, err)
	}
	return runnerFromRow(row)
}

func runnerFromRow(row pgdb.Runner) (store.Runner, error) {
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
	return mapErr("touch runner", x.q.TouchRunner(ctx, pgdb.TouchRunnerParams{ID: id, LastSeenAt: store.Millis(at)}))
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

func (x queries) LockRun(ctx context.Context, id string) (core.Run, error) {
	row, err := x.q.LockRun(ctx, id)
	if err != nil {
		return core.Run{}, mapErr("lock run "+id, err)
	}
	return runFromRow(row)
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
	if x.tx == nil {
		if c, err := x.CountJobStates(ctx, runID); err == nil {
			got(c)
		}
		return
	}
	// The statement goes after COMMIT, in the same round trip (after a
	// one-statement transaction, on its own).
	var c capture
	_, _ = pgdb.New(&c).CountJobStates(ctx, runID)
	x.tx.after = append(x.tx.after, afterRead{sql: c.sql, args: c.args, read: func(rows pgx.Rows) error {
		counts, err := queries{q: pgdb.New(given{rows})}.CountJobStates(ctx, runID)
		if err == nil {
			got(counts)
		}
		return err
	}})
}

func (x queries) CountJobStates(ctx context.Context, runID string) (map[core.JobState]int, error) {
	rows, err := x.q.CountJobStates(ctx, runID)
	if err != nil {
		return nil, mapErr("count job states", err)
	}
	return jobStateCounts(rows)
}

func jobStateCounts(rows []pgdb.CountJobStatesRow) (map[core.JobState]int, error) {
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

func (x queries) MoveFencedWithJob(ctx context.Context, am store.AttemptMove, jm store.JobMove, by store.Stamp) (store.Moved, error) {
	p := pgdb.MoveFencedWithJobParams{
		At: store.Millis(by.At), Actor: by.Actor,
		ID: am.ID, LeaseToken: am.LeaseToken, RunnerID: am.RunnerID, FromState: string(am.From), ToState: string(am.To),
		Reason: string(am.Reason), StartedAt: ms(am.StartedAt), FinishedAt: ms(am.FinishedAt),
		JobFromState: string(jm.From), JobToState: string(jm.To), JobReason: string(jm.Reason),
		JobStartedAt: ms(jm.StartedAt), JobFinishedAt: ms(jm.FinishedAt),
		JobRequired: jm.Required, NoOutputs: jm.NoOutputs,
	}
	if am.ExitCode != nil {
		p.ExitCode = pgtype.Int4{Int32: int32(*am.ExitCode), Valid: true}
	}
	row, err := x.q.MoveFencedWithJob(ctx, p)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Moved{}, nil
	}
	if err != nil {
		return store.Moved{}, mapErr("move attempt and job", err)
	}
	// Both rows as they were before the statement: apply its writes.
	a, err := attemptFromRow(row.Attempt)
	if err != nil {
		return store.Moved{}, err
	}
	j, err := jobFromRow(row.Job)
	if err != nil {
		return store.Moved{}, err
	}
	m := store.Moved{Attempt: am.Apply(a), Job: j, AttemptMoved: true, JobMoved: row.JobMoved == 1}
	if m.JobMoved {
		m.Job = jm.Apply(j)
	}
	return m, nil
}

func (x queries) InsertProject(ctx context.Context, p core.Project) error {
	row, err := store.ProjectToRow(p)
	if err != nil {
		return err
	}
	return mapErr("insert project", x.q.InsertProject(ctx, pgdb.InsertProjectParams{
		ID: row.ID, Name: row.Name, RepoUrl: row.RepoURL, DefaultBranch: row.DefaultBranch,
		Protected: row.Protected, Secrets: row.Secrets, Labels: row.Labels, Forge: row.Forge,
		UntrustedNetwork: row.UntrustedNetwork, Public: row.Public, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
	}))
}

func projectFromRow(row pgdb.Project) (core.Project, error) {
	return store.ProjectFromRow(store.ProjectRow{
		ID: row.ID, Name: row.Name, RepoURL: row.RepoUrl, DefaultBranch: row.DefaultBranch,
		Protected: row.Protected, Secrets: row.Secrets, Labels: row.Labels, Forge: row.Forge,
		UntrustedNetwork: row.UntrustedNetwork, Public: row.Public, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
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
	got, err := x.q.UpdateProject(ctx, pgdb.UpdateProjectParams{
		Name: row.Name, RepoUrl: row.RepoURL, DefaultBranch: row.DefaultBranch,
		Protected: row.Protected, Secrets: row.Secrets, Labels: row.Labels, Forge: row.Forge,
		UntrustedNetwork: row.UntrustedNetwork, Public: row.Public, UpdatedAt: row.UpdatedAt,
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
	return mapErr("insert API token", x.q.InsertAPIToken(ctx, pgdb.InsertAPITokenParams{
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

func (x queries) LockAPITokens(ctx context.Context) error {
	return mapErr("lock API tokens", x.q.LockAPITokens(ctx))
}

func (x queries) ListRuns(ctx context.Context, q store.RunQuery) ([]core.Run, error) {
	rows, err := x.q.ListRuns(ctx, pgdb.ListRunsParams{
		Project: q.Project, Ref: q.Ref, State: q.State, Event: q.Event,
		BeforeAt: q.BeforeAt, BeforeID: q.BeforeID, MaxRows: int32(q.Limit),
	})
	if err != nil {
		return nil, mapErr("list runs", err)
	}
	return convertAll(rows, runFromRow)
}
