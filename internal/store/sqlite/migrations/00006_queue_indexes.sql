-- +goose Up
-- The queue in the order claims take it, holding only queued attempts.
CREATE INDEX attempts_queued ON attempts (queued_at, id) WHERE state = 'queued';
-- The leases the reaper looks at, without the ended attempts.
CREATE INDEX attempts_leases ON attempts (lease_expires_at) WHERE state IN ('leased', 'running');
DROP INDEX attempts_queue;

-- +goose Down
CREATE INDEX attempts_queue ON attempts (state, queued_at);
DROP INDEX attempts_leases;
DROP INDEX attempts_queued;
