-- name: InsertProject :exec
INSERT INTO projects (id, name, repo_url, default_branch, protected, secrets, labels, untrusted_network, forge, public, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12);

-- name: GetProject :one
SELECT * FROM projects WHERE name = $1;

-- name: GetProjectByRepo :one
SELECT * FROM projects WHERE repo_url = $1;

-- name: ListProjects :many
-- Byte order, as SQLite sorts: the database's collation may ignore
-- punctuation, which names allow.
SELECT * FROM projects ORDER BY name COLLATE "C";

-- name: UpdateProject :one
-- Replaces all but the project's id, name and created_at.
UPDATE projects
SET repo_url = sqlc.arg(repo_url),
    default_branch = sqlc.arg(default_branch),
    protected = sqlc.arg(protected),
    secrets = sqlc.arg(secrets),
    labels = sqlc.arg(labels),
    untrusted_network = sqlc.arg(untrusted_network),
    forge = sqlc.arg(forge),
    public = sqlc.arg(public),
    updated_at = sqlc.arg(updated_at)
WHERE name = sqlc.arg(name)
RETURNING *;

-- name: DeleteProject :execrows
DELETE FROM projects WHERE name = $1;

-- name: InsertAPIToken :exec
INSERT INTO api_tokens (id, name, role, hash, created_at) VALUES ($1, $2, $3, $4, $5);

-- name: GetAPITokenByHash :one
SELECT * FROM api_tokens WHERE hash = $1;

-- name: CountAPITokens :one
SELECT COUNT(*) FROM api_tokens;

-- name: LockAPITokens :exec
-- Holds off other writers of api_tokens (SHARE ROW EXCLUSIVE conflicts
-- with itself and with INSERT) until the transaction ends; readers go on.
LOCK TABLE api_tokens IN SHARE ROW EXCLUSIVE MODE;
