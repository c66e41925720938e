-- +goose Up
-- The W3C traceparent of the span a run was made in ("" when tracing was
-- off): every server replica, and a server after a restart, parents the
-- run's later spans (queue waits, leases, log sealing) on it.
ALTER TABLE runs ADD COLUMN trace_parent TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE runs DROP COLUMN trace_parent;
