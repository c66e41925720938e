-- +goose Up
-- A committed event or log append of a run that some server replica
-- streams is announced on deltaci_run with the run's id, so that the
-- replica wakes on that run's own changes, whichever replica wrote them.
-- Only watched runs are announced: a transaction that sends NOTIFY takes
-- a cluster-wide lock at commit, which would serialize every commit of
-- the queue if every change were announced. PostgreSQL folds equal
-- notifications of one transaction into one.
CREATE TABLE run_watchers (
    run_id  TEXT NOT NULL,
    replica TEXT NOT NULL,
    until   BIGINT NOT NULL,
    PRIMARY KEY (run_id, replica)
);

-- +goose StatementBegin
CREATE FUNCTION deltaci_notify_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM run_watchers WHERE run_id = NEW.run_id) THEN
        PERFORM pg_notify('deltaci_run', NEW.run_id);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER events_notify_run AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION deltaci_notify_run();

CREATE TRIGGER attempts_notify_log AFTER UPDATE OF log_length ON attempts
    FOR EACH ROW WHEN (NEW.log_length <> OLD.log_length) EXECUTE FUNCTION deltaci_notify_run();

-- +goose Down
DROP TRIGGER attempts_notify_log ON attempts;
DROP TRIGGER events_notify_run ON events;
DROP FUNCTION deltaci_notify_run();
DROP TABLE run_watchers;
