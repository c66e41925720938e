-- name: SetRunMessage :exec
UPDATE runs SET message = ? WHERE id = ?;

-- name: GetRunMessage :one
SELECT message FROM runs WHERE id = ?;
