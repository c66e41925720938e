-- name: InsertRun :exec
INSERT INTO runs (id, repo, ref, commit_sha, event, trusted, state, reason, created_at, project, trust_reason, rerun_of, trace_parent)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13);

-- name: GetRun :one
SELECT * FROM runs WHERE id = $1;

-- name: SetRunState :execrows
UPDATE runs
SET state = sqlc.arg(to_state),
    reason = sqlc.arg(reason),
    started_at = COALESCE(started_at, sqlc.narg(started_at)),
    finished_at = COALESCE(finished_at, sqlc.narg(finished_at))
WHERE id = sqlc.arg(id) AND state = sqlc.arg(from_state);

-- name: InsertJob :exec
INSERT INTO jobs (id, run_id, name, position, spec, state, reason, explain, created_at, decision, digest, reused_from, has_outputs)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13);

-- name: GetJob :one
SELECT * FROM jobs WHERE id = $1;

-- name: ListJobs :many
SELECT * FROM jobs WHERE run_id = $1 ORDER BY position;

-- name: SetJobState :execrows
UPDATE jobs
SET state = sqlc.arg(to_state),
    reason = sqlc.arg(reason),
    started_at = COALESCE(started_at, sqlc.narg(started_at)),
    finished_at = COALESCE(finished_at, sqlc.narg(finished_at))
WHERE id = sqlc.arg(id) AND state = sqlc.arg(from_state);

-- name: InsertAttempt :exec
INSERT INTO attempts (id, job_id, run_id, number, state, labels, queued_at, label_set)
VALUES ($1, $2, $3, $4, $5, $6, $7, sqlc.arg(label_set)::text[]);

-- name: GetAttempt :one
SELECT * FROM attempts WHERE id = $1;

-- name: ListAttempts :many
SELECT * FROM attempts WHERE run_id = $1 ORDER BY queued_at, number, id;

-- name: ListJobAttempts :many
SELECT * FROM attempts WHERE job_id = $1 ORDER BY number;

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
  AND (sqlc.arg(runner_id)::text = '' OR runner_id = sqlc.arg(runner_id))
  AND state IN ('leased', 'running')
RETURNING *;

-- name: ClaimRunAttempt :one
-- Leases the oldest queued attempt of one run. SKIP LOCKED lets concurrent
-- claimers pass over rows another transaction is taking.
WITH next AS (
    SELECT a.id FROM attempts a
    WHERE a.run_id = sqlc.arg(run_id) AND a.state = 'queued'
    ORDER BY a.queued_at, a.id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE attempts
SET state = 'leased',
    runner_id = sqlc.arg(runner_id),
    lease_token = sqlc.arg(lease_token),
    leased_at = sqlc.arg(now),
    lease_expires_at = sqlc.arg(expires_at)
FROM next
WHERE attempts.id = next.id
RETURNING attempts.*;

-- name: ExtendLease :execrows
UPDATE attempts
SET lease_expires_at = sqlc.arg(expires_at)
WHERE id = sqlc.arg(id)
  AND lease_token = sqlc.arg(lease_token)
  AND state IN ('leased', 'running');

-- name: ListExpiredLeases :many
SELECT * FROM attempts
WHERE state IN ('leased', 'running') AND lease_expires_at < $1
ORDER BY lease_expires_at
LIMIT $2;

-- name: InsertEvent :exec
INSERT INTO events (at, actor, entity, entity_id, run_id, from_state, to_state, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- name: ListRunEvents :many
SELECT * FROM events WHERE run_id = $1 ORDER BY seq;

-- name: ListActiveRuns :many
SELECT * FROM runs
WHERE state IN ('queued', 'planning', 'running', 'canceling')
ORDER BY created_at, id;

-- name: ClaimAttempt :one
-- Leases the oldest queued attempt, of any run, whose every label the
-- runner has, and returns it with its job and run. SKIP LOCKED lets
-- concurrent claimers pass over rows another transaction is taking. It
-- records the claim's event. The main query reads the attempt as it was
-- before the update (the effects of a data-modifying CTE are not visible
-- to it): the adapter sets the lease fields, which this statement wrote
-- from its own arguments.
WITH next AS (
    SELECT a.id FROM attempts a
    WHERE a.state = 'queued'
      AND a.label_set <@ sqlc.arg(labels)::text[]
    ORDER BY a.queued_at, a.id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE attempts
    SET state = 'leased',
        runner_id = sqlc.arg(runner_id),
        lease_token = sqlc.arg(lease_token),
        leased_at = sqlc.arg(now),
        lease_expires_at = sqlc.arg(expires_at)
    FROM next
    WHERE attempts.id = next.id
    RETURNING attempts.id, attempts.run_id
), ev AS (
    -- store.ClaimEvent.
    INSERT INTO events (at, actor, entity, entity_id, run_id, from_state, to_state, reason)
    SELECT sqlc.arg(now), sqlc.arg(actor), 'attempt', claimed.id, claimed.run_id, 'queued', 'leased', ''
    FROM claimed
)
SELECT sqlc.embed(attempts), sqlc.embed(jobs), sqlc.embed(runs)
FROM claimed
JOIN attempts ON attempts.id = claimed.id
JOIN jobs ON jobs.id = attempts.job_id
JOIN runs ON runs.id = attempts.run_id;

-- name: LockRun :one
-- Serializes the transactions that settle one run's jobs: under READ
-- COMMITTED two of them could otherwise each miss the other's last job
-- and leave the run running. It returns the run as it is once locked.
SELECT * FROM runs WHERE id = $1 FOR UPDATE;

-- name: ListJobStates :many
-- The jobs' states without their specs, for deciding whether a run ended.
SELECT id, name, state, reason FROM jobs WHERE run_id = $1 ORDER BY position;

-- name: CountJobStates :many
-- How many of a run's jobs are in each state: enough to tell whether any
-- job waits on its needs or the run has ended, without reading the jobs.
SELECT state, COUNT(*) AS jobs FROM jobs WHERE run_id = $1 GROUP BY state;

-- name: GetJobRun :one
-- A job with its run, as a lease hands them out.
SELECT sqlc.embed(jobs), sqlc.embed(runs) FROM jobs JOIN runs ON runs.id = jobs.run_id WHERE jobs.id = $1;

-- name: InsertEvents :exec
-- A transaction's events in one statement, in the order they were made
-- (set-returning functions in a select list run in step, in order).
INSERT INTO events (at, actor, entity, entity_id, run_id, from_state, to_state, reason)
SELECT unnest(sqlc.arg(at)::bigint[]), unnest(sqlc.arg(actor)::text[]), unnest(sqlc.arg(entity)::text[]),
       unnest(sqlc.arg(entity_id)::text[]), unnest(sqlc.arg(run_id)::text[]), unnest(sqlc.arg(from_state)::text[]),
       unnest(sqlc.arg(to_state)::text[]), unnest(sqlc.arg(reason)::text[]);

-- name: GetAttemptJob :one
-- An attempt with its job, as a completion settles them.
SELECT sqlc.embed(attempts), sqlc.embed(jobs) FROM attempts JOIN jobs ON jobs.id = attempts.job_id WHERE attempts.id = $1;

-- name: MoveFencedWithJob :one
-- SetFencedAttemptState and, when it applies, SetJobState of the
-- attempt's job, with their events, in one statement. The main query
-- reads both rows as they were before (a data-modifying CTE's effects are
-- not visible to it); the adapter applies the writes, which come from its
-- own arguments. With job_required the attempt moves only along with its
-- job, and with no_outputs only when the job declares no outputs.
WITH a AS (
    UPDATE attempts
    SET state = sqlc.arg(to_state),
        reason = sqlc.arg(reason),
        exit_code = COALESCE(sqlc.narg(exit_code), attempts.exit_code),
        started_at = COALESCE(attempts.started_at, sqlc.narg(started_at)),
        finished_at = COALESCE(attempts.finished_at, sqlc.narg(finished_at))
    WHERE attempts.id = sqlc.arg(id)
      AND attempts.state = sqlc.arg(from_state)
      AND attempts.lease_token = sqlc.arg(lease_token)
      AND (sqlc.arg(runner_id)::text = '' OR attempts.runner_id = sqlc.arg(runner_id))
      AND attempts.state IN ('leased', 'running')
      AND (NOT sqlc.arg(job_required)::boolean OR EXISTS (
          SELECT 1 FROM jobs
          WHERE jobs.id = attempts.job_id AND jobs.state = sqlc.arg(job_from_state)
            AND NOT (sqlc.arg(no_outputs)::boolean AND jobs.has_outputs)
          -- Held until the end, so that j below moves it.
          FOR UPDATE))
    RETURNING attempts.id, attempts.job_id, attempts.run_id
), j AS (
    UPDATE jobs
    SET state = sqlc.arg(job_to_state),
        reason = sqlc.arg(job_reason),
        started_at = COALESCE(jobs.started_at, sqlc.narg(job_started_at)),
        finished_at = COALESCE(jobs.finished_at, sqlc.narg(job_finished_at))
    WHERE jobs.id = (SELECT a.job_id FROM a) AND jobs.state = sqlc.arg(job_from_state)
    RETURNING jobs.id
), ev AS (
    -- store.MoveEvents: the attempt's, then the job's if it moved.
    INSERT INTO events (at, actor, entity, entity_id, run_id, from_state, to_state, reason)
    SELECT e.at, e.actor, e.entity, e.entity_id, e.run_id, e.from_state, e.to_state, e.reason
    FROM (
        SELECT 1 AS n, sqlc.arg(at)::bigint AS at, sqlc.arg(actor)::text AS actor, 'attempt' AS entity, a.id AS entity_id,
               a.run_id, sqlc.arg(from_state)::text AS from_state, sqlc.arg(to_state)::text AS to_state, sqlc.arg(reason)::text AS reason
        FROM a
        UNION ALL
        SELECT 2, sqlc.arg(at)::bigint, sqlc.arg(actor)::text, 'job', j.id, a.run_id,
               sqlc.arg(job_from_state)::text, sqlc.arg(job_to_state)::text, sqlc.arg(job_reason)::text
        FROM j, a
    ) e
    ORDER BY e.n
)
SELECT sqlc.embed(attempts), sqlc.embed(jobs), (SELECT COUNT(*) FROM j) AS job_moved
FROM a
JOIN attempts ON attempts.id = a.id
JOIN jobs ON jobs.id = a.job_id;

-- name: ListRuns :many
-- A page of run history, newest first: the runs older than the cursor
-- (before_at, before_id) that match every filter given (an empty filter
-- matches all). A branch name matches the run's refs/heads/ ref too.
SELECT * FROM runs
WHERE (sqlc.arg(project)::text = '' OR project = sqlc.arg(project))
  AND (sqlc.arg(ref)::text = '' OR ref = sqlc.arg(ref) OR ref = 'refs/heads/' || sqlc.arg(ref))
  AND (sqlc.arg(state)::text = '' OR state = sqlc.arg(state))
  AND (sqlc.arg(event)::text = '' OR event = sqlc.arg(event))
  AND (created_at, id) < (sqlc.arg(before_at)::bigint, sqlc.arg(before_id)::text)
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows);
