-- name: SetRunMessage :exec
UPDATE runs SET message = $2 WHERE id = $1;

-- name: GetRunMessage :one
SELECT message FROM runs WHERE id = $1;
