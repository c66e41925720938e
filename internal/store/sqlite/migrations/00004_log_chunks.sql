-- +goose Up
-- A running attempt's log, as the chunks its runner uploaded, addressed by
-- their byte offset. The chunks are dropped when the log is sealed into the
-- artifact store; log_length and log_digest stay on the attempt.
CREATE TABLE log_chunks (
    attempt_id TEXT NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    "offset"   INTEGER NOT NULL,
    data       BLOB NOT NULL,
    PRIMARY KEY (attempt_id, "offset")
);

ALTER TABLE attempts ADD COLUMN log_length BIGINT NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN log_digest TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE attempts DROP COLUMN log_digest;
ALTER TABLE attempts DROP COLUMN log_length;
DROP TABLE log_chunks;
