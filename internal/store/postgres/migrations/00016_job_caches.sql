-- +goose Up
-- Job cache entries the server saved, for the size limit per project:
-- ref is the entry's artifact store ref (cache/<project>/<env>/<key>:<scope>),
-- bytes the size of its files, used_at when it was last saved or offered
-- to a job (the least recently used go first).
CREATE TABLE cache_entries (
    ref      TEXT PRIMARY KEY,
    project  TEXT NOT NULL,
    bytes    BIGINT NOT NULL,
    saved_at BIGINT NOT NULL,
    used_at  BIGINT NOT NULL
);

CREATE INDEX cache_entries_lru ON cache_entries (project, used_at);

-- What each attempt did with its job's cache: the key, how it was
-- restored (exact, prefix, cold), the key it restored and its bytes, and
-- what it saved (saved, unchanged, or '' when it saved nothing): the
-- entry's bytes and the bytes uploaded.
CREATE TABLE attempt_caches (
    attempt_id     TEXT PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
    run_id         TEXT NOT NULL,
    cache_key      TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    restored_key   TEXT NOT NULL,
    restored_bytes BIGINT NOT NULL,
    saved          TEXT NOT NULL,
    saved_bytes    BIGINT NOT NULL,
    uploaded_bytes BIGINT NOT NULL,
    scope          TEXT NOT NULL
);

CREATE INDEX attempt_caches_run ON attempt_caches (run_id);

-- +goose Down
DROP TABLE attempt_caches;
DROP TABLE cache_entries;
