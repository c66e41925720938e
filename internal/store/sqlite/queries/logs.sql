-- name: GetLogState :one
SELECT log_length, log_digest, lease_token, state FROM attempts WHERE id = ?;

-- name: AdvanceLog :execrows
-- Fenced like SetFencedAttemptState, and conditional on the length read, so
-- two appends racing for one offset cannot both win.
UPDATE attempts
SET log_length = sqlc.arg(to_length)
WHERE id = sqlc.arg(id)
  AND lease_token = sqlc.arg(lease_token)
  AND state IN ('leased', 'running')
  AND log_length = sqlc.arg(from_length);

-- name: InsertLogChunk :exec
INSERT INTO log_chunks (attempt_id, "offset", data) VALUES (?, ?, ?);

-- name: ListLogChunks :many
-- The chunk holding from_offset and the ones after it.
SELECT l."offset", l.data FROM log_chunks l
WHERE l.attempt_id = sqlc.arg(attempt_id)
  AND l."offset" >= (
    SELECT COALESCE(MAX(c."offset"), 0) FROM log_chunks c
    WHERE c.attempt_id = sqlc.arg(attempt_id) AND c."offset" <= sqlc.arg(from_offset)
  )
ORDER BY l."offset"
LIMIT sqlc.arg(max_chunks);

-- name: SetLogDigest :execrows
UPDATE attempts SET log_digest = sqlc.arg(digest)
WHERE id = sqlc.arg(id) AND log_digest = '';

-- name: DeleteLogChunks :exec
DELETE FROM log_chunks WHERE attempt_id = ?;

-- name: InsertLogTime :exec
INSERT INTO log_times (attempt_id, "offset", received_at)
VALUES (sqlc.arg(attempt_id), sqlc.arg(log_offset), sqlc.arg(received_at));

-- name: ListLogTimes :many
-- The arrival of the chunk holding from_offset and of those after it, up
-- to to_offset.
SELECT t."offset", t.received_at FROM log_times t
WHERE t.attempt_id = sqlc.arg(attempt_id)
  AND t."offset" < sqlc.arg(to_offset)
  AND t."offset" >= (
    SELECT COALESCE(MAX(c."offset"), 0) FROM log_times c
    WHERE c.attempt_id = sqlc.arg(attempt_id) AND c."offset" <= sqlc.arg(from_offset)
  )
ORDER BY t."offset";
