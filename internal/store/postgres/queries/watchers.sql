-- name: WatchRuns :exec
-- Marks runs as streamed by a replica until a time, so that their changes
-- are announced (migration 00010's trigger).
INSERT INTO run_watchers (run_id, replica, until)
SELECT unnest(sqlc.arg(run_ids)::TEXT[]), sqlc.arg(replica), sqlc.arg(until)
ON CONFLICT (run_id, replica) DO UPDATE SET until = EXCLUDED.until;

-- name: UnwatchRun :exec
DELETE FROM run_watchers WHERE run_id = sqlc.arg(run_id) AND replica = sqlc.arg(replica);

-- name: ExpireRunWatchers :exec
-- Forgets the watches of replicas that stopped renewing them.
DELETE FROM run_watchers WHERE until < sqlc.arg(now);
