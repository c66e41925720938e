-- +goose Up
-- The API tokens of a standalone artifact store (artifactstore serve). Only
-- a token's hash is kept. Tokens are not events: they are not part of the
-- hash chain, and replay neither needs nor rebuilds them. A revoked token
-- keeps its row, and so its name, so that "token:<name>" in the audit trail
-- always means one token.
CREATE TABLE store_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    hash       TEXT NOT NULL UNIQUE,
    scopes     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_by TEXT NOT NULL DEFAULT '',
    revoked_at INTEGER NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE store_tokens;
