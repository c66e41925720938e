-- +goose Up
-- Why an errored run errored, in words: a configuration error with its
-- file:line:col, say. Empty for other runs.
ALTER TABLE runs ADD COLUMN message TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE runs DROP COLUMN message;
