-- +goose Up
-- How many paths differ between a run's base and its commit, for the run
-- page; -1 for a run planned before it was recorded.
ALTER TABLE run_bases ADD COLUMN changed_paths BIGINT NOT NULL DEFAULT -1;

-- When each chunk of an attempt's log reached the server, by the chunk's
-- byte offset, so a reader can see when each line arrived. Unlike the
-- chunks these are kept when the log is sealed: a few bytes per chunk.
CREATE TABLE log_times (
    attempt_id  TEXT NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    "offset"    INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (attempt_id, "offset")
);

-- +goose Down
DROP TABLE log_times;
ALTER TABLE run_bases DROP COLUMN changed_paths;
