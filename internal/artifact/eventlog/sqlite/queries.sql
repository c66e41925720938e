-- name: GetHead :one
SELECT seq, hash FROM store_head WHERE id = 1;

-- name: SetHead :exec
UPDATE store_head SET seq = sqlc.arg(seq), hash = sqlc.arg(hash) WHERE id = 1;

-- name: InsertEvent :exec
INSERT INTO store_events (seq, at, kind, subject, actor, payload, prev_hash, hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: ListEvents :many
SELECT * FROM store_events WHERE seq > sqlc.arg(after) ORDER BY seq LIMIT sqlc.arg(lim);

-- name: ListAudit :many
SELECT * FROM store_events
WHERE actor <> ''
  AND (CAST(sqlc.arg(subject) AS TEXT) = '' OR subject = sqlc.arg(subject))
  AND (CAST(sqlc.arg(actor) AS TEXT) = '' OR actor = sqlc.arg(actor))
  AND at >= sqlc.arg(since)
  AND seq > sqlc.arg(after)
ORDER BY seq
LIMIT sqlc.arg(lim);

-- name: GetBlob :one
SELECT * FROM blobs WHERE digest = ?;

-- name: UpsertBlob :exec
INSERT INTO blobs (digest, size, state, created_at, updated_at)
VALUES (sqlc.arg(digest), sqlc.arg(size), sqlc.arg(state), sqlc.arg(at), sqlc.arg(at))
ON CONFLICT (digest) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at;

-- name: SetBlobState :execrows
UPDATE blobs SET state = sqlc.arg(state), updated_at = sqlc.arg(at) WHERE digest = sqlc.arg(digest);

-- name: ListBlobs :many
SELECT * FROM blobs ORDER BY digest;

-- name: ListCollectableBlobs :many
-- Live blobs no manifest references, last added before the grace cut-off.
SELECT b.* FROM blobs b
WHERE b.state = 'live'
  AND b.updated_at < sqlc.arg(before)
  AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.blob_digest = b.digest)
ORDER BY b.digest
LIMIT sqlc.arg(lim);

-- name: CountBlobReferences :one
SELECT COUNT(*) FROM manifest_blobs WHERE blob_digest = ?;

-- name: GetManifest :one
SELECT * FROM manifests WHERE digest = ?;

-- name: InsertManifest :exec
INSERT INTO manifests (digest, size, body, created_at) VALUES (?, ?, ?, ?);

-- name: DeleteManifest :exec
DELETE FROM manifests WHERE digest = ?;

-- name: ListManifests :many
SELECT * FROM manifests ORDER BY digest;

-- name: InsertManifestBlob :exec
INSERT INTO manifest_blobs (manifest_digest, blob_digest) VALUES (?, ?)
ON CONFLICT DO NOTHING;

-- name: ListManifestBlobs :many
SELECT * FROM manifest_blobs ORDER BY manifest_digest, blob_digest;

-- name: ListCollectableManifests :many
-- Manifests no ref points to, committed before the grace cut-off.
SELECT m.* FROM manifests m
WHERE m.created_at < sqlc.arg(before)
  AND NOT EXISTS (SELECT 1 FROM refs r WHERE r.manifest_digest = m.digest)
ORDER BY m.digest
LIMIT sqlc.arg(lim);

-- name: CountManifestRefs :one
SELECT COUNT(*) FROM refs WHERE manifest_digest = ?;

-- name: GetRef :one
SELECT * FROM refs WHERE namespace = ? AND name = ? AND tag = ?;

-- name: UpsertRef :exec
INSERT INTO refs (namespace, name, tag, manifest_digest, pinned, created_at, updated_at)
VALUES (sqlc.arg(namespace), sqlc.arg(name), sqlc.arg(tag), sqlc.arg(manifest_digest), sqlc.arg(pinned), sqlc.arg(at), sqlc.arg(at))
ON CONFLICT (namespace, name, tag) DO UPDATE
SET manifest_digest = excluded.manifest_digest, pinned = excluded.pinned, updated_at = excluded.updated_at;

-- name: DeleteRef :exec
DELETE FROM refs WHERE namespace = ? AND name = ? AND tag = ?;

-- name: ListRefs :many
SELECT * FROM refs
WHERE (CAST(sqlc.arg(namespace) AS TEXT) = '' OR namespace = sqlc.arg(namespace))
ORDER BY namespace, name, tag;

-- name: UpsertPolicy :exec
INSERT INTO retention_policies (namespace, selector, keep_last, keep_within_ms, keep_pinned, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (namespace, selector) DO UPDATE
SET keep_last = excluded.keep_last, keep_within_ms = excluded.keep_within_ms,
    keep_pinned = excluded.keep_pinned, updated_at = excluded.updated_at;

-- name: DeletePolicy :execrows
DELETE FROM retention_policies WHERE namespace = ? AND selector = ?;

-- name: ListPolicies :many
SELECT * FROM retention_policies
WHERE (CAST(sqlc.arg(namespace) AS TEXT) = '' OR namespace = sqlc.arg(namespace))
ORDER BY namespace, selector;

-- name: InsertSession :exec
INSERT INTO upload_sessions (id, algorithm, expected_digest, received, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?);

-- name: GetSession :one
SELECT * FROM upload_sessions WHERE id = ?;

-- name: SetSessionReceived :execrows
UPDATE upload_sessions SET received = sqlc.arg(received), expires_at = sqlc.arg(expires_at)
WHERE id = sqlc.arg(id) AND received = sqlc.arg(from_received);

-- name: DeleteSession :exec
DELETE FROM upload_sessions WHERE id = ?;

-- name: ListExpiredSessions :many
SELECT * FROM upload_sessions WHERE expires_at < ? ORDER BY expires_at;

-- name: CountActiveSessionsFor :one
SELECT COUNT(*) FROM upload_sessions WHERE expected_digest = sqlc.arg(digest) AND expires_at >= sqlc.arg(now);

-- name: InsertLeaseDigest :exec
INSERT INTO gc_leases (id, digest, expires_at) VALUES (?, ?, ?)
ON CONFLICT DO NOTHING;

-- name: RenewLease :execrows
UPDATE gc_leases SET expires_at = sqlc.arg(expires_at) WHERE id = sqlc.arg(id) AND expires_at >= sqlc.arg(now);

-- name: DeleteLease :exec
DELETE FROM gc_leases WHERE id = sqlc.arg(id);

-- name: DeleteExpiredLeases :execrows
DELETE FROM gc_leases WHERE expires_at < sqlc.arg(now);

-- name: CountActiveLeasesFor :one
SELECT COUNT(*) FROM gc_leases WHERE digest = sqlc.arg(digest) AND expires_at >= sqlc.arg(now);

-- name: ListLiveBlobsIn :many
SELECT digest FROM blobs WHERE state = 'live' AND digest IN (sqlc.slice('digests'));

-- name: NamespaceBytes :many
-- Bytes of the distinct blobs each namespace's refs reach, for the
-- deltaci_store_bytes metric; a blob shared by two namespaces counts in both.
SELECT namespace, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes
FROM (
    SELECT DISTINCT r.namespace, b.digest, b.size
    FROM refs r
    JOIN manifest_blobs mb ON mb.manifest_digest = r.manifest_digest
    JOIN blobs b ON b.digest = mb.blob_digest
) reached
GROUP BY namespace;

-- name: InsertCheckpoint :exec
INSERT INTO store_checkpoints (seq, hash, at, public_key, signature) VALUES (?, ?, ?, ?, ?);

-- name: LatestCheckpoint :one
SELECT * FROM store_checkpoints ORDER BY seq DESC LIMIT 1;

-- name: ListCheckpoints :many
SELECT * FROM store_checkpoints WHERE seq > sqlc.arg(after) ORDER BY seq LIMIT sqlc.arg(lim);
