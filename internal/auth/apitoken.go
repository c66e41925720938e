package auth

import (
	"crypto/rand"
	"encoding/base64"
)

// APITokenPrefix starts every API token the server makes, so that a token
// is recognised as one (and by secret scanners) without a lookup.
const APITokenPrefix = "dci_"

// Roles of API tokens, from the most to the least allowed.
const (
	// RoleAdmin may do everything: manage projects, runners and runs.
	RoleAdmin = "admin"
	// RoleMaintainer may start and cancel runs and read everything.
	RoleMaintainer = "maintainer"
	// RoleViewer may only read.
	RoleViewer = "viewer"
)

// MayRun reports whether a role may start and cancel runs.
func MayRun(role string) bool { return role == RoleAdmin || role == RoleMaintainer }

// NewAPIToken returns a random API token and the hash to store; the token
// itself is shown once and never stored.
func NewAPIToken() (token, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	token = APITokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashCredential(token)
}
