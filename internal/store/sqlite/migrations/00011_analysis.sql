-- +goose Up
-- The base commit a run was planned against, for new versus known
-- failures; a run without a base has no row.
CREATE TABLE run_bases (
    run_id      TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    base_commit TEXT NOT NULL
);

-- The Failure Analyzer's work queue: one row per ended attempt, written
-- by the trigger below in the transaction that ended it, so completing an
-- attempt never waits for its analysis and no ended attempt is missed.
-- A replica claims a row for a while (claim, lease_until); the row is
-- deleted in the transaction that stores the analysis.
CREATE TABLE analysis_queue (
    attempt_id  TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL,
    queued_at   BIGINT NOT NULL,
    tries       INTEGER NOT NULL DEFAULT 0,
    next_at     BIGINT NOT NULL DEFAULT 0,
    claim       TEXT NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT ''
);

CREATE INDEX analysis_queue_due ON analysis_queue (next_at, queued_at);

-- +goose StatementBegin
CREATE TRIGGER events_analysis_queue AFTER INSERT ON events
WHEN NEW.entity = 'attempt' AND NEW.to_state IN ('succeeded', 'failed', 'timed_out', 'errored', 'lost')
BEGIN
    INSERT INTO analysis_queue (attempt_id, run_id, queued_at)
    VALUES (NEW.entity_id, NEW.run_id, NEW.at)
    ON CONFLICT (attempt_id) DO NOTHING;
END;
-- +goose StatementEnd

-- One analysis per ended attempt. scope is the run's project, or its
-- repository for a run outside any project: flakiness and signatures are
-- kept per scope. detail is the analysis in JSON (store.Analysis).
CREATE TABLE attempt_analyses (
    attempt_id  TEXT PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
    run_id      TEXT NOT NULL,
    job         TEXT NOT NULL,
    scope       TEXT NOT NULL,
    digest      TEXT NOT NULL,
    state       TEXT NOT NULL,
    class       TEXT NOT NULL,
    detail      TEXT NOT NULL,
    analyzed_at BIGINT NOT NULL
);

CREATE INDEX attempt_analyses_run ON attempt_analyses (run_id);
CREATE INDEX attempt_analyses_digest ON attempt_analyses (digest) WHERE digest <> '';

-- Failure signatures: identical failures (test id and masked message)
-- grouped across runs.
CREATE TABLE failure_signatures (
    scope        TEXT NOT NULL,
    signature    TEXT NOT NULL,
    test         TEXT NOT NULL,
    message      TEXT NOT NULL,
    first_seen   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    last_attempt TEXT NOT NULL,
    PRIMARY KEY (scope, signature)
);

-- Flakiness proven by input digests: a job (test '') or a test that both
-- passed and failed on attempts with the same digest. evidence is the
-- attempt pairs in JSON; passes counts the passes since the last failure;
-- cleared_at is set once they reach the threshold (0 while flaky).
CREATE TABLE flaky (
    scope      TEXT NOT NULL,
    job        TEXT NOT NULL,
    test       TEXT NOT NULL,
    since      BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    passes     INTEGER NOT NULL DEFAULT 0,
    cleared_at BIGINT NOT NULL DEFAULT 0,
    evidence   TEXT NOT NULL,
    PRIMARY KEY (scope, job, test)
);

-- +goose Down
DROP TABLE flaky;
DROP TABLE failure_signatures;
DROP TABLE attempt_analyses;
DROP TRIGGER events_analysis_queue;
DROP TABLE analysis_queue;
DROP TABLE run_bases;
