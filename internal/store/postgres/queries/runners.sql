-- name: InsertRunner :exec
INSERT INTO runners (id, name, labels, credential_hash, protocol_version, created_at, last_seen_at)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: GetRunner :one
SELECT * FROM runners WHERE id = $1;

-- name: ListRunners :many
SELECT * FROM runners ORDER BY created_at, id;

-- name: DeleteRunner :execrows
DELETE FROM runners WHERE id = $1;

-- name: TouchRunner :exec
UPDATE runners SET last_seen_at = sqlc.arg(last_seen_at) WHERE id = sqlc.arg(id);

-- name: ListUnsealedLogs :many
-- Ended attempts with log chunks not yet sealed, oldest end first.
SELECT id FROM attempts
WHERE log_length > 0 AND log_digest = ''
  AND state IN ('succeeded', 'failed', 'timed_out', 'canceled', 'lost', 'errored')
ORDER BY finished_at
LIMIT sqlc.arg(max_rows);

-- name: NotifyQueue :exec
-- Wakes long-polling lease requests on every replica when the inserting
-- transaction commits.
SELECT pg_notify('deltaci_queue', '');

-- name: QueueDepth :many
SELECT labels, COUNT(*) AS queued FROM attempts WHERE state = 'queued' GROUP BY labels;
