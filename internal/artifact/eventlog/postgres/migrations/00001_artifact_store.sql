-- +goose Up
-- The artifact store's metadata: an append-only, hash-chained event log and
-- the current-state tables projected from it in the same transaction.
-- Timestamps are Unix milliseconds, UTC.
CREATE TABLE store_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO store_head (id, seq, hash) VALUES (1, 0, '');

CREATE TABLE store_events (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    subject   TEXT NOT NULL,
    actor     TEXT NOT NULL DEFAULT '',
    payload   BYTEA NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX store_events_subject ON store_events (subject, seq);
CREATE INDEX store_events_actor ON store_events (actor, seq);

CREATE TABLE blobs (
    digest     TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    state      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX blobs_state ON blobs (state, updated_at);

CREATE TABLE manifests (
    digest     TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    body       BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE manifest_blobs (
    manifest_digest TEXT NOT NULL REFERENCES manifests (digest) ON DELETE CASCADE,
    blob_digest     TEXT NOT NULL REFERENCES blobs (digest),
    PRIMARY KEY (manifest_digest, blob_digest)
);
CREATE INDEX manifest_blobs_blob ON manifest_blobs (blob_digest);

CREATE TABLE refs (
    namespace       TEXT NOT NULL,
    name            TEXT NOT NULL,
    tag             TEXT NOT NULL,
    manifest_digest TEXT NOT NULL REFERENCES manifests (digest),
    pinned          BOOLEAN NOT NULL DEFAULT false,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (namespace, name, tag)
);
CREATE INDEX refs_manifest ON refs (manifest_digest);

CREATE TABLE retention_policies (
    namespace      TEXT NOT NULL,
    selector       TEXT NOT NULL,
    keep_last      BIGINT NOT NULL,
    keep_within_ms BIGINT NOT NULL,
    keep_pinned    BOOLEAN NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (namespace, selector)
);

-- Upload sessions are transient data-plane state, not projections.
CREATE TABLE upload_sessions (
    id              TEXT PRIMARY KEY,
    algorithm       TEXT NOT NULL,
    expected_digest TEXT NOT NULL DEFAULT '',
    received        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION store_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'store_events is append-only';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER store_events_no_change BEFORE UPDATE OR DELETE ON store_events
    FOR EACH ROW EXECUTE FUNCTION store_events_append_only();

-- +goose Down
DROP TABLE upload_sessions;
DROP TABLE retention_policies;
DROP TABLE refs;
DROP TABLE manifest_blobs;
DROP TABLE manifests;
DROP TABLE blobs;
DROP TABLE store_events;
DROP FUNCTION store_events_append_only;
DROP TABLE store_head;
