-- +goose Up
-- A project's forge: kind, API URL, repository, the name of the secret
-- that holds its token, the webhook secret; JSON, as core.ProjectForge.
ALTER TABLE projects ADD COLUMN forge TEXT NOT NULL DEFAULT '{}';

-- The inbox: webhook deliveries, verified and stored before the forge is
-- answered, planned afterwards. A delivery id is stored once per project,
-- so a replayed delivery makes nothing, and one project's deliveries
-- cannot shadow another's.
CREATE TABLE hook_deliveries (
    id          TEXT PRIMARY KEY,
    project     TEXT NOT NULL,
    forge       TEXT NOT NULL,
    delivery    TEXT NOT NULL,
    event       TEXT NOT NULL,
    state       TEXT NOT NULL,
    run_id      TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL DEFAULT '',
    tries       INTEGER NOT NULL DEFAULT 0,
    next_at     BIGINT NOT NULL,
    claim       TEXT NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0,
    received_at BIGINT NOT NULL,
    done_at     BIGINT NOT NULL DEFAULT 0,
    UNIQUE (project, delivery)
);

CREATE INDEX hook_deliveries_pending ON hook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX hook_deliveries_recent ON hook_deliveries (project, received_at);

-- Where a run's statuses go. A run has a row only when its project has a
-- forge and a token secret; the token is looked up by that secret name
-- when a status is posted.
CREATE TABLE run_forges (
    run_id       TEXT PRIMARY KEY,
    forge        TEXT NOT NULL,
    api_url      TEXT NOT NULL,
    repo         TEXT NOT NULL,
    commit_id    TEXT NOT NULL,
    token_secret TEXT NOT NULL
);

-- The Status Reporter's outbox: one row per status context of a run (job_id
-- '' is the run's own). Every event of the run or one of its jobs bumps
-- version in the transaction that made the move, through the trigger
-- below; the delivery loop posts the context's state as of the post and
-- records the version it covered in posted.
CREATE TABLE status_outbox (
    run_id       TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    version      BIGINT NOT NULL,
    posted       BIGINT NOT NULL DEFAULT 0,
    posted_state TEXT NOT NULL DEFAULT '',
    changed_at   BIGINT NOT NULL,
    tries        INTEGER NOT NULL DEFAULT 0,
    next_at      BIGINT NOT NULL DEFAULT 0,
    claim        TEXT NOT NULL DEFAULT '',
    lease_until  BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, job_id)
);

CREATE INDEX status_outbox_due ON status_outbox (next_at) WHERE posted < version;

-- +goose StatementBegin
CREATE TRIGGER events_status_outbox AFTER INSERT ON events
WHEN NEW.entity IN ('run', 'job')
BEGIN
    INSERT INTO status_outbox (run_id, job_id, version, changed_at)
    SELECT NEW.run_id, CASE WHEN NEW.entity = 'job' THEN NEW.entity_id ELSE '' END, 1, NEW.at
    FROM run_forges WHERE run_id = NEW.run_id
    ON CONFLICT (run_id, job_id) DO UPDATE
    SET version = version + 1, changed_at = excluded.changed_at, tries = 0, next_at = 0;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER events_status_outbox;
DROP TABLE status_outbox;
DROP TABLE run_forges;
DROP TABLE hook_deliveries;
ALTER TABLE projects DROP COLUMN forge;
