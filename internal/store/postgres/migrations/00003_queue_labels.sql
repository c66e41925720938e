-- +goose Up
-- The labels a runner must have to lease an attempt, one row each, so the
-- claim query can match them in SQL.
CREATE TABLE attempt_labels (
    attempt_id TEXT NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    PRIMARY KEY (attempt_id, label)
);

-- +goose Down
DROP TABLE attempt_labels;
