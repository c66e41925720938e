-- +goose Up
-- The run a rerun was made from (empty for a run that is no rerun).
ALTER TABLE runs ADD COLUMN rerun_of TEXT NOT NULL DEFAULT '';
-- Run history reads runs newest first, a page at a time, over all runs or
-- one project's, without sorting the whole table.
CREATE INDEX runs_created ON runs (created_at, id);
CREATE INDEX runs_project_created ON runs (project, created_at, id);

-- +goose Down
DROP INDEX runs_project_created;
DROP INDEX runs_created;
ALTER TABLE runs DROP COLUMN rerun_of;
