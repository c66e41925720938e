-- +goose Up
-- Registered runners. The credential is stored only as its hash: a leaked
-- database does not let anyone act as a runner.
CREATE TABLE runners (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    labels           TEXT NOT NULL,
    credential_hash  TEXT NOT NULL,
    protocol_version INTEGER NOT NULL,
    created_at       BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL
);

-- Ended attempts whose log still waits to be sealed into the artifact store.
CREATE INDEX attempts_unsealed ON attempts (finished_at) WHERE log_length > 0 AND log_digest = '';

-- +goose Down
DROP INDEX attempts_unsealed;
DROP TABLE runners;
