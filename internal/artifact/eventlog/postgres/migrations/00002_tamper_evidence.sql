-- +goose Up
-- Tamper-evidence to the tail of the log. TRUNCATE fires no row-level
-- trigger, so the append-only guard of 00001 let it empty store_events:
-- statement-level triggers refuse it on the log's tables. Checkpoints are
-- signed (seq, hash, time) records of the log's head; replay --verify
-- checks that the log still reaches each one, so removing the last events
-- and rolling store_head back is caught.
CREATE TABLE store_checkpoints (
    seq        BIGINT PRIMARY KEY,
    hash       TEXT NOT NULL,
    at         BIGINT NOT NULL,
    public_key BYTEA NOT NULL,
    signature  BYTEA NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION store_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is part of the append-only event log: % refused', TG_TABLE_NAME, TG_OP;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER store_events_no_truncate BEFORE TRUNCATE ON store_events
    FOR EACH STATEMENT EXECUTE FUNCTION store_log_append_only();
CREATE TRIGGER store_head_no_truncate BEFORE TRUNCATE ON store_head
    FOR EACH STATEMENT EXECUTE FUNCTION store_log_append_only();
-- The head row is moved by every command, never removed.
CREATE TRIGGER store_head_no_delete BEFORE DELETE ON store_head
    FOR EACH ROW EXECUTE FUNCTION store_log_append_only();
CREATE TRIGGER store_checkpoints_no_change BEFORE UPDATE OR DELETE ON store_checkpoints
    FOR EACH ROW EXECUTE FUNCTION store_log_append_only();
CREATE TRIGGER store_checkpoints_no_truncate BEFORE TRUNCATE ON store_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION store_log_append_only();

-- +goose Down
DROP TABLE store_checkpoints;
DROP TRIGGER store_head_no_delete ON store_head;
DROP TRIGGER store_head_no_truncate ON store_head;
DROP TRIGGER store_events_no_truncate ON store_events;
DROP FUNCTION store_log_append_only;
