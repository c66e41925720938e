-- +goose Up
-- A GC lease keeps blobs and manifests from garbage collection while a push
-- or an upload that will reference them is alive: one row per leased digest,
-- all of a lease's rows renewed together. Like upload sessions, leases are
-- transient state, not projections of the log.
CREATE TABLE gc_leases (
    id         TEXT NOT NULL,
    digest     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (id, digest)
);
CREATE INDEX gc_leases_digest ON gc_leases (digest, expires_at);

-- +goose Down
DROP TABLE gc_leases;
