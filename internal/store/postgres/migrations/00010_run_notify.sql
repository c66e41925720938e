-- +goose Up
-- Every committed event and every log append is announced on
-- deltaci_run with its run's id, so that a server replica streaming a
-- run's events wakes on that run's own changes, whichever replica wrote
-- them. PostgreSQL folds equal notifications of one transaction into one.
-- +goose StatementBegin
CREATE FUNCTION deltaci_notify_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('deltaci_run', NEW.run_id);
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
