-- name: InsertRunBase :exec
INSERT INTO run_bases (run_id, base_commit, changed_paths)
VALUES (sqlc.arg(run_id), sqlc.arg(base_commit), sqlc.arg(changed_paths));

-- name: GetRunBase :one
SELECT base_commit, changed_paths FROM run_bases WHERE run_id = sqlc.arg(run_id);

-- name: FindBaseJob :one
-- The latest ended job of that name in another, earlier run of the same
-- scope at the base commit.
SELECT j.id FROM jobs j JOIN runs r ON r.id = j.run_id
WHERE r.repo = sqlc.arg(repo) AND r.project = sqlc.arg(project) AND r.commit_sha = sqlc.arg(commit_sha)
  AND r.id <> sqlc.arg(run_id) AND r.created_at <= sqlc.arg(created_at)
  AND j.name = sqlc.arg(name) AND j.state IN ('succeeded', 'failed', 'reused', 'canceled')
ORDER BY r.created_at DESC, r.id DESC
LIMIT 1;

-- name: ClaimAnalysis :one
UPDATE analysis_queue SET claim = sqlc.arg(claim), lease_until = sqlc.arg(lease_until), tries = tries + 1
WHERE attempt_id = (
    SELECT q.attempt_id FROM analysis_queue q
    WHERE q.next_at <= sqlc.arg(now) AND q.lease_until < sqlc.arg(now)
    ORDER BY q.queued_at, q.attempt_id
    LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: RetryAnalysis :execrows
UPDATE analysis_queue SET next_at = sqlc.arg(next_at), last_error = sqlc.arg(last_error), claim = '', lease_until = 0
WHERE attempt_id = sqlc.arg(attempt_id) AND claim = sqlc.arg(claim);

-- name: FinishAnalysis :execrows
DELETE FROM analysis_queue WHERE attempt_id = sqlc.arg(attempt_id) AND claim = sqlc.arg(claim);

-- name: AnalysisBacklog :one
SELECT COUNT(*) AS n, CAST(COALESCE(MIN(queued_at), 0) AS BIGINT) AS oldest FROM analysis_queue;

-- name: PendingRunAnalyses :one
SELECT COUNT(*) FROM analysis_queue WHERE run_id = sqlc.arg(run_id);

-- name: InsertAnalysis :execrows
INSERT INTO attempt_analyses (attempt_id, run_id, job, scope, digest, state, class, detail, analyzed_at)
VALUES (sqlc.arg(attempt_id), sqlc.arg(run_id), sqlc.arg(job), sqlc.arg(scope), sqlc.arg(digest), sqlc.arg(state),
        sqlc.arg(class), sqlc.arg(detail), sqlc.arg(analyzed_at))
ON CONFLICT (attempt_id) DO NOTHING;

-- name: GetAnalysis :one
SELECT * FROM attempt_analyses WHERE attempt_id = sqlc.arg(attempt_id);

-- name: ListRunAnalyses :many
SELECT * FROM attempt_analyses WHERE run_id = sqlc.arg(run_id) ORDER BY analyzed_at, attempt_id;

-- name: ListDigestAnalyses :many
-- The latest analyses of attempts with that input digest.
SELECT * FROM attempt_analyses WHERE digest = sqlc.arg(digest) AND scope = sqlc.arg(scope)
ORDER BY analyzed_at DESC, attempt_id DESC LIMIT sqlc.arg(lim);

-- name: UpsertSignature :exec
INSERT INTO failure_signatures (scope, signature, test, message, first_seen, last_seen, count, last_attempt)
VALUES (sqlc.arg(scope), sqlc.arg(signature), sqlc.arg(test), sqlc.arg(message), sqlc.arg(seen), sqlc.arg(seen), 1, sqlc.arg(attempt))
ON CONFLICT (scope, signature) DO UPDATE
SET last_seen = GREATEST(failure_signatures.last_seen, EXCLUDED.last_seen), count = failure_signatures.count + 1, last_attempt = EXCLUDED.last_attempt;

-- name: LockDigest :exec
-- Serializes the flakiness bookkeeping of one input digest across
-- replicas until the transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended('deltaci.digest:' || sqlc.arg(digest)::text, 0));

-- name: GetSignature :one
SELECT * FROM failure_signatures WHERE scope = sqlc.arg(scope) AND signature = sqlc.arg(signature);

-- name: ListFlaky :many
SELECT * FROM flaky WHERE scope = sqlc.arg(scope) ORDER BY job, test;

-- name: ListJobFlaky :many
SELECT * FROM flaky WHERE scope = sqlc.arg(scope) AND job = sqlc.arg(job) ORDER BY test;

-- name: UpsertFlaky :exec
INSERT INTO flaky (scope, job, test, since, last_seen, passes, cleared_at, evidence)
VALUES (sqlc.arg(scope), sqlc.arg(job), sqlc.arg(test), sqlc.arg(since), sqlc.arg(last_seen), sqlc.arg(passes), sqlc.arg(cleared_at), sqlc.arg(evidence))
ON CONFLICT (scope, job, test) DO UPDATE
SET since = EXCLUDED.since, last_seen = EXCLUDED.last_seen, passes = EXCLUDED.passes,
    cleared_at = EXCLUDED.cleared_at, evidence = EXCLUDED.evidence;

-- name: BumpJobStatus :exec
-- A job's status context is posted again once its attempt is analyzed:
-- its description then names the failing tests.
UPDATE status_outbox SET version = version + 1, changed_at = sqlc.arg(changed_at), tries = 0, next_at = 0
WHERE run_id = sqlc.arg(run_id) AND job_id = sqlc.arg(job_id);
