-- name: InsertProject :exec
INSERT INTO projects (id, name, repo_url, default_branch, protected, secrets, labels, untrusted_network, forge, public, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: GetProject :one
SELECT * FROM projects WHERE name = ?;

-- name: GetProjectByRepo :one
SELECT * FROM projects WHERE repo_url = ?;

-- name: ListProjects :many
SELECT * FROM projects ORDER BY name;

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
DELETE FROM projects WHERE name = ?;

-- name: InsertAPIToken :exec
INSERT INTO api_tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?);

-- name: GetAPITokenByHash :one
SELECT * FROM api_tokens WHERE hash = ?;

-- name: CountAPITokens :one
SELECT COUNT(*) FROM api_tokens;
