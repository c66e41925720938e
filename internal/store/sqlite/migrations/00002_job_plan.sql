-- +goose Up
-- What the planner decided for each job, and why it can be reused.
ALTER TABLE jobs ADD COLUMN decision TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN digest TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN reused_from TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE jobs DROP COLUMN reused_from;
ALTER TABLE jobs DROP COLUMN digest;
ALTER TABLE jobs DROP COLUMN decision;
