-- name: InsertDelivery :execrows
-- A delivery already stored for the project is left as it is.
INSERT INTO hook_deliveries (id, project, forge, delivery, event, state, next_at, received_at)
VALUES (sqlc.arg(id), sqlc.arg(project), sqlc.arg(forge), sqlc.arg(delivery), sqlc.arg(event), 'pending', sqlc.arg(received_at), sqlc.arg(received_at))
ON CONFLICT (project, delivery) DO NOTHING;

-- name: ClaimDelivery :one
-- Leases the oldest due delivery of a project none of whose older
-- deliveries is still pending: a project's deliveries are planned in the
-- order they came.
UPDATE hook_deliveries SET claim = sqlc.arg(claim), lease_until = sqlc.arg(lease_until), tries = tries + 1
WHERE id = (
    SELECT d.id FROM hook_deliveries d
    WHERE d.state = 'pending' AND d.next_at <= sqlc.arg(now) AND d.lease_until < sqlc.arg(now)
      AND NOT EXISTS (
          SELECT 1 FROM hook_deliveries o
          WHERE o.project = d.project AND o.state = 'pending'
            AND (o.received_at < d.received_at OR (o.received_at = d.received_at AND o.id < d.id)))
    ORDER BY d.received_at, d.id
    LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: FinishDelivery :execrows
UPDATE hook_deliveries
SET state = sqlc.arg(state), run_id = sqlc.arg(run_id), message = sqlc.arg(message), done_at = sqlc.arg(done_at),
    claim = '', lease_until = 0
WHERE id = sqlc.arg(id) AND claim = sqlc.arg(claim) AND state = 'pending';

-- name: RenewDelivery :execrows
UPDATE hook_deliveries SET lease_until = sqlc.arg(lease_until)
WHERE id = sqlc.arg(id) AND claim = sqlc.arg(claim) AND state = 'pending';

-- name: RetryDelivery :execrows
UPDATE hook_deliveries SET next_at = sqlc.arg(next_at), message = sqlc.arg(message), claim = '', lease_until = 0
WHERE id = sqlc.arg(id) AND claim = sqlc.arg(claim) AND state = 'pending';

-- name: ListDeliveries :many
SELECT * FROM hook_deliveries WHERE project = sqlc.arg(project) ORDER BY received_at DESC, id DESC LIMIT sqlc.arg(lim);

-- name: CountPendingDeliveries :one
SELECT COUNT(*) FROM hook_deliveries WHERE state = 'pending';

-- name: PruneDeliveries :execrows
DELETE FROM hook_deliveries WHERE state <> 'pending' AND received_at < sqlc.arg(before);

-- name: InsertRunForge :exec
INSERT INTO run_forges (run_id, forge, api_url, repo, commit_id, token_secret)
VALUES (sqlc.arg(run_id), sqlc.arg(forge), sqlc.arg(api_url), sqlc.arg(repo), sqlc.arg(commit_id), sqlc.arg(token_secret));

-- name: GetRunForge :one
SELECT * FROM run_forges WHERE run_id = sqlc.arg(run_id);

-- name: ClaimStatuses :many
-- Leases due contexts, oldest change first.
UPDATE status_outbox SET claim = sqlc.arg(claim), lease_until = sqlc.arg(lease_until), tries = tries + 1
WHERE (run_id, job_id) IN (
    SELECT s.run_id, s.job_id FROM status_outbox s
    WHERE s.posted < s.version AND s.next_at <= sqlc.arg(now) AND s.lease_until < sqlc.arg(now)
    ORDER BY s.changed_at
    LIMIT sqlc.arg(lim) FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: FinishStatus :execrows
-- Records that the context's state as of version (or a later one) is on
-- the forge; posted never goes back.
UPDATE status_outbox
SET posted = GREATEST(posted, sqlc.arg(version)), posted_state = sqlc.arg(posted_state), last_error = sqlc.arg(last_error),
    claim = '', lease_until = 0, tries = 0
WHERE run_id = sqlc.arg(run_id) AND job_id = sqlc.arg(job_id) AND claim = sqlc.arg(claim);

-- name: RetryStatus :execrows
UPDATE status_outbox SET next_at = sqlc.arg(next_at), last_error = sqlc.arg(last_error), claim = '', lease_until = 0
WHERE run_id = sqlc.arg(run_id) AND job_id = sqlc.arg(job_id) AND claim = sqlc.arg(claim);

-- name: ListRunStatuses :many
SELECT * FROM status_outbox WHERE run_id = sqlc.arg(run_id) ORDER BY job_id;

-- name: StatusBacklog :one
SELECT COUNT(*) AS n, CAST(COALESCE(MIN(changed_at), 0) AS BIGINT) AS oldest FROM status_outbox WHERE posted < version;

-- name: PruneStatuses :execrows
-- A context unchanged for so long is over, posted or not (a forge token
-- never set, say).
DELETE FROM status_outbox WHERE changed_at < sqlc.arg(before);
