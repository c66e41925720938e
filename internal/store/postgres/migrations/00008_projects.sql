-- +goose Up
-- A run's project (empty for runs of `deltaci run`, which has no projects)
-- and why it is or is not trusted, in words.
ALTER TABLE runs ADD COLUMN project TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN trust_reason TEXT NOT NULL DEFAULT '';

-- The repositories the server is told about. protected, secrets and labels
-- are JSON arrays, as runners.labels is.
CREATE TABLE projects (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    repo_url          TEXT NOT NULL UNIQUE,
    default_branch    TEXT NOT NULL,
    protected         TEXT NOT NULL,
    secrets           TEXT NOT NULL,
    labels            TEXT NOT NULL,
    untrusted_network BOOLEAN NOT NULL DEFAULT false,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

-- Users' API tokens, stored only as their hash: a leaked database does not
-- let anyone act as a user.
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE api_tokens;
DROP TABLE projects;
ALTER TABLE runs DROP COLUMN trust_reason;
ALTER TABLE runs DROP COLUMN project;
