-- +goose Up
-- Anonymous visitors of the web UI may read a public project's runs.
ALTER TABLE projects ADD COLUMN public INTEGER NOT NULL DEFAULT 0;

-- Who holds which role on a project: a user by e-mail ("ada@example.com")
-- or OpenID subject ("sub:1234"), or a group of the provider's group claim
-- ("group:ci-admins"). A project's bindings go with it.
CREATE TABLE project_roles (
    project    TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    principal  TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project, principal)
);

-- Web UI sessions. The cookie holds a random id; only its SHA-256 is kept,
-- so a leaked database lets no one act as a signed-in user.
CREATE TABLE web_sessions (
    id_hash        TEXT PRIMARY KEY,
    subject        TEXT NOT NULL,
    email          TEXT NOT NULL,
    email_verified INTEGER NOT NULL,
    name           TEXT NOT NULL,
    groups_json    TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    seen_at        BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);

CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
CREATE INDEX web_sessions_seen ON web_sessions (seen_at);

-- Logins under way: what the callback checks (nonce) and sends (the PKCE
-- verifier), keyed by the SHA-256 of the state the browser carries. Each
-- is taken once.
CREATE TABLE web_logins (
    state_hash TEXT PRIMARY KEY,
    nonce      TEXT NOT NULL,
    verifier   TEXT NOT NULL,
    next       TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE web_logins;
DROP TABLE web_sessions;
DROP TABLE project_roles;
ALTER TABLE projects DROP COLUMN public;
