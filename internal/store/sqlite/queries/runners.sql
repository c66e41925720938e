-- name: InsertRunner :exec
INSERT INTO runners (id, name, labels, credential_hash, protocol_version, created_at, last_seen_at)
VALUES (?, ?, ?, ?, ?, ?, ?);

-- name: GetRunner :one
SELECT * FROM runners WHERE id = ?;

-- name: ListRunners :many
SELECT * FROM runners ORDER BY created_at, id;

-- name: DeleteRunner :execrows
DELETE FROM runners WHERE id = ?;

-- name: TouchRunner :exec
UPDATE runners SET last_seen_at = sqlc.arg(last_seen_at) WHERE id = sqlc.arg(id);

-- name: ListUnsealedLogs :many
-- Ended attempts with log chunks not yet sealed, oldest end first.
SELECT id FROM attempts
WHERE log_length > 0 AND log_digest = ''
  AND state IN ('succeeded', 'failed', 'timed_out', 'canceled', 'lost', 'errored')
ORDER BY finished_at
LIMIT sqlc.arg(max_rows);

-- name: QueueDepth :many
SELECT labels, COUNT(*) AS queued FROM attempts WHERE state = 'queued' GROUP BY labels;

-- name: SeeRunner :execrows
-- Records a runner's contact; a replica with a slower clock never moves it back.
UPDATE runners SET last_seen_at = MAX(last_seen_at, sqlc.arg(last_seen_at)) WHERE id = sqlc.arg(id);

-- name: ListHeldAttempts :many
-- The attempts runners hold (leased or running), oldest lease first.
SELECT a.id, a.run_id, a.runner_id, a.state, a.leased_at, a.lease_expires_at, j.name AS job
FROM attempts a JOIN jobs j ON j.id = a.job_id
WHERE a.state IN ('leased', 'running')
ORDER BY a.leased_at, a.id
LIMIT sqlc.arg(max_rows);
