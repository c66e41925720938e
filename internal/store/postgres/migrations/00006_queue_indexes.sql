-- +goose Up
-- An attempt's labels as an array on its row: a claim checks them with <@
-- as it walks the queue, where a join with attempt_labels could be planned
-- as a scan of every label ever stored.
ALTER TABLE attempts ADD COLUMN label_set TEXT[] NOT NULL DEFAULT '{}';
UPDATE attempts a SET label_set = ARRAY(SELECT l.label FROM attempt_labels l WHERE l.attempt_id = a.id ORDER BY l.label);
DROP TABLE attempt_labels;
-- The queue in the order claims take it, holding only queued attempts, so
-- that a claim reads the head of the queue instead of sorting it.
CREATE INDEX attempts_queued ON attempts (queued_at, id) WHERE state = 'queued';
-- The leases the reaper looks at, without the ended attempts.
CREATE INDEX attempts_leases ON attempts (lease_expires_at) WHERE state IN ('leased', 'running');
DROP INDEX attempts_queue;

-- +goose Down
CREATE INDEX attempts_queue ON attempts (state, queued_at);
DROP INDEX attempts_leases;
DROP INDEX attempts_queued;
CREATE TABLE attempt_labels (
    attempt_id TEXT NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    PRIMARY KEY (attempt_id, label)
);
INSERT INTO attempt_labels (attempt_id, label) SELECT id, unnest(label_set) FROM attempts;
ALTER TABLE attempts DROP COLUMN label_set;
