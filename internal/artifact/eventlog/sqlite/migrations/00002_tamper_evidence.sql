-- +goose Up
-- Tamper-evidence to the tail of the log. Checkpoints are signed (seq, hash,
-- time) records of the log's head; replay --verify checks that the log
-- still reaches each one, so removing the last events and rolling
-- store_head back is caught. SQLite has no TRUNCATE: a DELETE without WHERE
-- fires the row triggers.
CREATE TABLE store_checkpoints (
    seq        INTEGER PRIMARY KEY,
    hash       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    signature  BLOB NOT NULL
);

-- +goose StatementBegin
CREATE TRIGGER store_checkpoints_no_update BEFORE UPDATE ON store_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'store_checkpoints is part of the append-only event log');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER store_checkpoints_no_delete BEFORE DELETE ON store_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'store_checkpoints is part of the append-only event log');
END;
-- +goose StatementEnd

-- The head row is moved by every command, never removed.
-- +goose StatementBegin
CREATE TRIGGER store_head_no_delete BEFORE DELETE ON store_head
BEGIN
    SELECT RAISE(ABORT, 'store_head is part of the append-only event log: its row is never deleted');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER store_head_no_delete;
DROP TABLE store_checkpoints;
