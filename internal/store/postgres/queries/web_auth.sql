-- name: UpsertProjectRole :exec
INSERT INTO project_roles (project, principal, role, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (project, principal) DO UPDATE SET role = EXCLUDED.role;

-- name: DeleteProjectRole :execrows
DELETE FROM project_roles WHERE project = $1 AND principal = $2;

-- name: ListProjectRoles :many
SELECT * FROM project_roles WHERE project = $1 ORDER BY principal COLLATE "C";

-- name: InsertWebSession :exec
INSERT INTO web_sessions (id_hash, subject, email, email_verified, name, groups_json, created_at, seen_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9);

-- name: GetWebSession :one
SELECT * FROM web_sessions WHERE id_hash = $1;

-- name: TouchWebSession :exec
UPDATE web_sessions SET seen_at = sqlc.arg(seen_at) WHERE id_hash = sqlc.arg(id_hash) AND seen_at < sqlc.arg(seen_at);

-- name: DeleteWebSession :exec
DELETE FROM web_sessions WHERE id_hash = $1;

-- name: PruneWebSessions :execrows
DELETE FROM web_sessions WHERE expires_at <= sqlc.arg(now) OR seen_at < sqlc.arg(idle_before);

-- name: InsertWebLogin :exec
INSERT INTO web_logins (state_hash, nonce, verifier, next, expires_at) VALUES ($1, $2, $3, $4, $5);

-- name: TakeWebLogin :one
DELETE FROM web_logins WHERE state_hash = $1 RETURNING *;

-- name: PruneWebLogins :execrows
DELETE FROM web_logins WHERE expires_at <= $1;
