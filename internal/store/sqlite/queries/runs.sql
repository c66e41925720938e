-- name: InsertRun :exec
INSERT INTO runs (id, repo, ref, commit_sha, event, trusted, state, reason, created_at, project, trust_reason, rerun_of, trace_parent)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: GetRun :one
SELECT * FROM runs WHERE id = ?;

-- name: SetRunState :execrows
UPDATE runs
SET state = sqlc.arg(to_state),
    reason = sqlc.arg(reason),
    started_at = COALESCE(started_at, sqlc.narg(started_at)),
    finished_at = COALESCE(finished_at, sqlc.narg(finished_at))
WHERE id = sqlc.arg(id) AND state = sqlc.arg(from_state);

-- name: InsertJob :exec
INSERT INTO jobs (id, run_id, name, position, spec, state, reason, explain, created_at, decision, digest, reused_from)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: GetJob :one
SELECT * FROM jobs WHERE id = ?;

-- name: ListJobs :many
SELECT * FROM jobs WHERE run_id = ? ORDER BY position;

-- name: SetJobState :execrows
UPDATE jobs
SET state = sqlc.arg(to_state),
    reason = sqlc.arg(reason),
    started_at = COALESCE(started_at, sqlc.narg(started_at)),
    finished_at = COALESCE(finished_at, sqlc.narg(finished_at))
WHERE id = sqlc.arg(id) AND state = sqlc.arg(from_state);

-- name: InsertAttempt :exec
INSERT INTO attempts (id, job_id, run_id, number, state, labels, queued_at)
VALUES (?, ?, ?, ?, ?, ?, ?);

-- name: GetAttempt :one
SELECT * FROM attempts WHERE id = ?;

-- name: ListAttempts :many
SELECT * FROM attempts WHERE run_id = ? ORDER BY queued_at, number, id;

-- name: ListJobAttempts :many
SELECT * FROM attempts WHERE job_id = ? ORDER BY number;

-- name: SetAttemptState :execrows
-- Moves an attempt on behalf of the orchestrator or reaper (no fencing).
UPDATE attempts
SET state = sqlc.arg(to_state),
    reason = sqlc.arg(reason),
    finished_at = COALESCE(finished_at, sqlc.narg(finished_at))
WHERE id = sqlc.arg(id) AND state = sqlc.arg(from_state);

-- name: SetFencedAttemptState :one
-- Moves an attempt on behalf of its lease holder: the write applies only
-- while the caller's lease token is current (fencing) and, when a runner
-- is named, the attempt is leased to it. It returns the row as moved.
UPDATE attempts
SET state = sqlc.arg(to_state),
    reason = sqlc.arg(reason),
    exit_code = COALESCE(sqlc.narg(exit_code), exit_code),
    started_at = COALESCE(started_at, sqlc.narg(started_at)),
    finished_at = COALESCE(finished_at, sqlc.narg(finished_at))
WHERE id = sqlc.arg(id)
  AND state = sqlc.arg(from_state)
  AND lease_token = sqlc.arg(lease_token)
  AND (CAST(sqlc.arg(runner_id) AS TEXT) = '' OR runner_id = sqlc.arg(runner_id))
  AND state IN ('leased', 'running')
RETURNING *;

-- name: ClaimRunAttempt :one
-- Leases the oldest queued attempt of one run. Called inside BEGIN IMMEDIATE,
-- so no other writer can claim the same row.
UPDATE attempts
SET state = 'leased',
    runner_id = sqlc.arg(runner_id),
    lease_token = sqlc.arg(lease_token),
    leased_at = sqlc.arg(now),
    lease_expires_at = sqlc.arg(expires_at)
WHERE id = (
    SELECT a.id FROM attempts a
    WHERE a.run_id = sqlc.arg(run_id) AND a.state = 'queued'
    ORDER BY a.queued_at, a.id
    LIMIT 1
)
RETURNING *;

-- name: ExtendLease :execrows
UPDATE attempts
SET lease_expires_at = sqlc.arg(expires_at)
WHERE id = sqlc.arg(id)
  AND lease_token = sqlc.arg(lease_token)
  AND state IN ('leased', 'running');

-- name: ListExpiredLeases :many
SELECT * FROM attempts
WHERE state IN ('leased', 'running') AND lease_expires_at < ?
ORDER BY lease_expires_at
LIMIT ?;

-- name: InsertEvent :exec
INSERT INTO events (at, actor, entity, entity_id, run_id, from_state, to_state, reason)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: ListRunEvents :many
SELECT * FROM events WHERE run_id = ? ORDER BY seq;

-- name: ListActiveRuns :many
SELECT * FROM runs
WHERE state IN ('queued', 'planning', 'running', 'canceling')
ORDER BY created_at, id;

-- name: InsertAttemptLabel :exec
INSERT INTO attempt_labels (attempt_id, label) VALUES (?, ?);

-- name: ClaimAttempt :one
-- Leases the oldest queued attempt, of any run, whose every label the
-- runner has. Called inside BEGIN IMMEDIATE. The label list always holds
-- the empty string, which no attempt label is, so that it is never empty.
UPDATE attempts
SET state = 'leased',
    runner_id = sqlc.arg(runner_id),
    lease_token = sqlc.arg(lease_token),
    leased_at = sqlc.arg(now),
    lease_expires_at = sqlc.arg(expires_at)
WHERE id = (
    SELECT a.id FROM attempts a
    WHERE a.state = 'queued'
      AND NOT EXISTS (
          SELECT 1 FROM attempt_labels l
          WHERE l.attempt_id = a.id AND l.label NOT IN (sqlc.slice('labels'))
      )
    ORDER BY a.queued_at, a.id
    LIMIT 1
)
RETURNING *;

-- name: ListJobStates :many
-- The jobs' states without their specs, for deciding whether a run ended.
SELECT id, name, state, reason FROM jobs WHERE run_id = ? ORDER BY position;

-- name: CountJobStates :many
-- How many of a run's jobs are in each state: enough to tell whether any
-- job waits on its needs or the run has ended, without reading the jobs.
SELECT state, COUNT(*) AS jobs FROM jobs WHERE run_id = ? GROUP BY state;

-- name: GetJobRun :one
-- A job with its run, as a lease hands them out.
SELECT sqlc.embed(jobs), sqlc.embed(runs) FROM jobs JOIN runs ON runs.id = jobs.run_id WHERE jobs.id = ?;

-- name: GetAttemptJob :one
-- An attempt with its job, as a completion settles them.
SELECT sqlc.embed(attempts), sqlc.embed(jobs) FROM attempts JOIN jobs ON jobs.id = attempts.job_id WHERE attempts.id = ?;

-- name: ListRuns :many
-- A page of run history, newest first: the runs older than the cursor
-- (before_at, before_id) that match every filter given (an empty filter
-- matches all). A branch name matches the run's refs/heads/ ref too.
SELECT * FROM runs
WHERE (CAST(sqlc.arg(project) AS TEXT) = '' OR project = sqlc.arg(project))
  AND (CAST(sqlc.arg(ref) AS TEXT) = '' OR ref = sqlc.arg(ref) OR ref = 'refs/heads/' || sqlc.arg(ref))
  AND (CAST(sqlc.arg(state) AS TEXT) = '' OR state = sqlc.arg(state))
  AND (CAST(sqlc.arg(event) AS TEXT) = '' OR event = sqlc.arg(event))
  AND (created_at < sqlc.arg(before_at) OR (created_at = sqlc.arg(before_at) AND id < CAST(sqlc.arg(before_id) AS TEXT)))
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows);
