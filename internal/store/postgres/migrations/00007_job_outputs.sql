-- +goose Up
-- Whether the job's spec declares outputs: a success sent without an
-- outputs manifest may then not end the job, which the completion's one
-- statement checks without reading the spec.
ALTER TABLE jobs ADD COLUMN has_outputs BOOLEAN NOT NULL DEFAULT false;
UPDATE jobs SET has_outputs = (spec::jsonb ? 'outputs');

-- +goose Down
ALTER TABLE jobs DROP COLUMN has_outputs;
