package eventlog

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/core"
)

// TokenPrefix starts every API token a standalone store makes, so that a
// token is recognised as one (and by secret scanners) without a lookup.
// Delta CI's own server tokens start with auth.APITokenPrefix instead.
const TokenPrefix = "dcs_"

// FirstTokenName names the admin token a store makes on its first start.
const FirstTokenName = "admin"

// ConfiguredTokenName is the principal name of the token an operator gives
// the server (ARTIFACTSTORE_API_TOKEN); no stored token may take it.
const ConfiguredTokenName = "configured"

// tokenNameRE is a token's name: it becomes the actor "token:<name>" in
// the audit trail.
var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Token is an API credential of a standalone store. Only the hash of its
// secret is kept. Tokens are not events: creating or revoking one is not
// part of the hash chain, and replay neither needs nor rebuilds them.
type Token struct {
	ID        string
	Name      string
	Scopes    Scopes
	CreatedBy string
	CreatedAt time.Time
	RevokedBy string    // "" while the token is valid
	RevokedAt time.Time // zero while the token is valid
}

// Principal is the actor a token's requests are recorded as.
func (t Token) Principal() string { return "token:" + t.Name }

// Revoked reports whether the token was revoked.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// TokenRow is one row of store_tokens; RevokedAt is 0 while valid.
type TokenRow struct {
	ID        string
	Name      string
	Hash      string
	Scopes    string
	CreatedBy string
	CreatedAt int64
	RevokedBy string
	RevokedAt int64
}

// TokenQueries is the row-level access to the tokens an engine keeps.
// Both engines implement it on their Driver (TokenDriver).
type TokenQueries interface {
	// InsertToken records a token: core.KindConflict when its name or
	// hash is taken, even by a revoked token.
	InsertToken(ctx context.Context, t TokenRow) error
	// InsertFirstToken records t only when no token was ever recorded, in
	// one transaction that holds off other token writers; it reports
	// whether it did.
	InsertFirstToken(ctx context.Context, t TokenRow) (bool, error)
	// GetTokenByHash returns the token, revoked or not, whose hash is
	// given (core.KindNotFound when none).
	GetTokenByHash(ctx context.Context, hash string) (TokenRow, error)
	// ListTokens returns every token, revoked ones too, by name.
	ListTokens(ctx context.Context) ([]TokenRow, error)
	// RevokeToken revokes the valid token named name and reports how many
	// it revoked (0 or 1).
	RevokeToken(ctx context.Context, name, by string, at int64) (int64, error)
}

// TokenDriver is an engine that keeps API tokens: both engines are.
type TokenDriver interface {
	Tokens() TokenQueries
}

func (s *Store) tokens() (TokenQueries, error) {
	td, ok := s.drv.(TokenDriver)
	if !ok {
		return nil, core.E(core.KindInternal, "tokens", "this metadata engine keeps no API tokens")
	}
	return td.Tokens(), nil
}

// NewTokenSecret returns a random token secret and the hash to store;
// the secret is shown once and never stored.
func NewTokenSecret() (secret, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, auth.HashCredential(secret)
}

// ValidateTokenName checks a token's name: 1 to 64 letters, digits, '.',
// '_' or '-', starting with a letter or digit, and not "configured".
// Errors are core.KindInvalid.
func ValidateTokenName(name string) error {
	if !tokenNameRE.MatchString(name) {
		return core.E(core.KindInvalid, "token name", "%.80q is not a token name: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	if name == ConfiguredTokenName {
		return core.E(core.KindInvalid, "token name", "%q names the token given to the server with --api-token; choose another name", name)
	}
	return nil
}

func tokenRow(name string, scopes Scopes, by, hash string, now time.Time) (TokenRow, error) {
	if err := ValidateTokenName(name); err != nil {
		return TokenRow{}, err
	}
	scopes, err := scopes.Canonical()
	if err != nil {
		return TokenRow{}, err
	}
	return TokenRow{ID: uuid.Must(uuid.NewV7()).String(), Name: name, Hash: hash, Scopes: scopes.String(),
		CreatedBy: by, CreatedAt: now.UnixMilli()}, nil
}

func tokenFromRow(r TokenRow) (Token, error) {
	scopes, err := ParseScopes(r.Scopes)
	if err != nil {
		return Token{}, core.Wrap(core.KindInternal, "token "+r.Name+": stored scopes", err)
	}
	t := Token{ID: r.ID, Name: r.Name, Scopes: scopes, CreatedBy: r.CreatedBy, CreatedAt: fromMS(r.CreatedAt), RevokedBy: r.RevokedBy}
	if r.RevokedAt != 0 {
		t.RevokedAt = fromMS(r.RevokedAt)
	}
	return t, nil
}

// CreateToken makes a token named name with the given scopes, recorded as
// made by by, and returns it with its secret, which is never shown again.
// Errors: core.KindInvalid for a bad name or scopes, core.KindConflict
// when a token (even a revoked one) has the name.
func (s *Store) CreateToken(ctx context.Context, by, name string, scopes Scopes) (Token, string, error) {
	q, err := s.tokens()
	if err != nil {
		return Token{}, "", err
	}
	secret, hash := NewTokenSecret()
	row, err := tokenRow(name, scopes, by, hash, s.Now())
	if err != nil {
		return Token{}, "", err
	}
	if err := q.InsertToken(ctx, row); err != nil {
		if core.KindOf(err) == core.KindConflict {
			return Token{}, "", core.E(core.KindConflict, "create token", "a token named %q exists (revoked tokens keep their names, so the audit trail stays unambiguous)", name)
		}
		return Token{}, "", err
	}
	t, err := tokenFromRow(row)
	return t, secret, err
}

// CreateFirstToken makes the admin token (FirstTokenName, *:admin) when
// the store never had a token, and returns it with its secret and true;
// otherwise it returns false. Of servers starting at once, exactly one
// makes it. Revoking every token does not make a restart create another:
// make one with a local `tokens create` instead.
func (s *Store) CreateFirstToken(ctx context.Context) (Token, string, bool, error) {
	q, err := s.tokens()
	if err != nil {
		return Token{}, "", false, err
	}
	secret, hash := NewTokenSecret()
	row, err := tokenRow(FirstTokenName, Scopes{{Namespace: AllNamespaces, Role: RoleAdmin}}, "first start", hash, s.Now())
	if err != nil {
		return Token{}, "", false, err
	}
	created, err := q.InsertFirstToken(ctx, row)
	if err != nil || !created {
		return Token{}, "", false, err
	}
	t, err := tokenFromRow(row)
	return t, secret, true, err
}

// Authenticate returns the valid token whose secret is given. A secret
// that is not one of this store's tokens, or a revoked one, is
// core.KindUnauthorized; a database failure keeps its kind.
func (s *Store) Authenticate(ctx context.Context, secret string) (Token, error) {
	refused := core.E(core.KindUnauthorized, "api token", "this API token is not known to the store, or was revoked")
	if !strings.HasPrefix(secret, TokenPrefix) {
		return Token{}, refused
	}
	q, err := s.tokens()
	if err != nil {
		return Token{}, err
	}
	row, err := q.GetTokenByHash(ctx, auth.HashCredential(secret))
	if core.KindOf(err) == core.KindNotFound || (err == nil && row.RevokedAt != 0) {
		return Token{}, refused
	}
	if err != nil {
		return Token{}, err
	}
	return tokenFromRow(row)
}

// Tokens lists every token, revoked ones too, by name.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	q, err := s.tokens()
	if err != nil {
		return nil, err
	}
	rows, err := q.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Token, 0, len(rows))
	for _, r := range rows {
		t, err := tokenFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// RevokeToken revokes the token named name at once: its next request is
// refused. Revoking a token that does not exist or is revoked already is
// core.KindNotFound.
func (s *Store) RevokeToken(ctx context.Context, by, name string) error {
	q, err := s.tokens()
	if err != nil {
		return err
	}
	n, err := q.RevokeToken(ctx, name, by, s.Now().UnixMilli())
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound("revoke token", "no valid token is named %q", name)
	}
	return nil
}
