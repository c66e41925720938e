-- name: UpsertCacheEntry :exec
INSERT INTO cache_entries (ref, project, bytes, saved_at, used_at)
VALUES (sqlc.arg(ref), sqlc.arg(project), sqlc.arg(bytes), sqlc.arg(saved_at), sqlc.arg(saved_at))
ON CONFLICT (ref) DO UPDATE SET bytes = excluded.bytes, saved_at = excluded.saved_at, used_at = excluded.used_at;

-- name: TouchCacheEntry :exec
UPDATE cache_entries SET used_at = sqlc.arg(used_at) WHERE ref = sqlc.arg(ref) AND used_at < sqlc.arg(used_at);

-- name: ListCacheEntries :many
-- The least recently used first.
SELECT * FROM cache_entries WHERE project = sqlc.arg(project) ORDER BY used_at, ref;

-- name: DeleteCacheEntry :exec
DELETE FROM cache_entries WHERE ref = sqlc.arg(ref);

-- name: InsertAttemptCache :exec
INSERT INTO attempt_caches (attempt_id, run_id, cache_key, outcome, restored_key, restored_bytes, saved, saved_bytes, uploaded_bytes, scope)
VALUES (sqlc.arg(attempt_id), sqlc.arg(run_id), sqlc.arg(cache_key), sqlc.arg(outcome), sqlc.arg(restored_key), sqlc.arg(restored_bytes),
        sqlc.arg(saved), sqlc.arg(saved_bytes), sqlc.arg(uploaded_bytes), sqlc.arg(scope))
ON CONFLICT (attempt_id) DO NOTHING;

-- name: ListRunAttemptCaches :many
SELECT * FROM attempt_caches WHERE run_id = sqlc.arg(run_id) ORDER BY attempt_id;
