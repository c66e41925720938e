package store

import (
	"context"
	"fmt"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// APIToken is a user's API credential; only its hash is kept.
type APIToken struct {
	ID, Name, Role, Hash string
	CreatedAt            time.Time
}

// CreateAPIToken records a token; its ID and CreatedAt are set here. It
// returns a core.KindInvalid error without a Hash or Role, and
// core.KindConflict when another token has the hash.
func (s *Store) CreateAPIToken(ctx context.Context, t APIToken) (APIToken, error) {
	t, err := s.newAPIToken("create API token", t)
	if err != nil {
		return APIToken{}, err
	}
	err = s.drv.Write(ctx, func(q Queries) error { return q.InsertAPIToken(ctx, t) })
	if err != nil {
		return APIToken{}, tokenWriteErr("create API token", err)
	}
	return t, nil
}

// CreateFirstAPIToken records t only when there is no token yet: it
// returns the recorded token and true, or the zero token and false. The
// count and the insert are one write transaction that holds off other
// token writers, so of servers starting at once exactly one creates the
// first token. Errors are CreateAPIToken's.
func (s *Store) CreateFirstAPIToken(ctx context.Context, t APIToken) (APIToken, bool, error) {
	t, err := s.newAPIToken("create first API token", t)
	if err != nil {
		return APIToken{}, false, err
	}
	var created bool
	err = s.drv.Write(ctx, func(q Queries) error {
		if err := q.LockAPITokens(ctx); err != nil {
			return err
		}
		n, err := q.CountAPITokens(ctx)
		if err != nil || n > 0 {
			return err
		}
		if err := q.InsertAPIToken(ctx, t); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return APIToken{}, false, tokenWriteErr("create first API token", err)
	}
	if !created {
		return APIToken{}, false, nil
	}
	return t, true, nil
}

// APITokenByHash returns the token with the given hash, or a
// core.KindNotFound error.
func (s *Store) APITokenByHash(ctx context.Context, hash string) (APIToken, error) {
	t, err := s.drv.Read().GetAPITokenByHash(ctx, hash)
	if core.KindOf(err) == core.KindNotFound {
		// The hash is a credential's stand-in: not repeated in errors.
		return APIToken{}, core.E(core.KindNotFound, "API token", "no such token")
	}
	return t, err
}

// CountAPITokens counts the recorded tokens.
func (s *Store) CountAPITokens(ctx context.Context) (int, error) {
	return s.drv.Read().CountAPITokens(ctx)
}

func (s *Store) newAPIToken(op string, t APIToken) (APIToken, error) {
	if t.Hash == "" {
		return APIToken{}, core.E(core.KindInvalid, op, "a token hash is required")
	}
	if t.Role == "" {
		return APIToken{}, core.E(core.KindInvalid, op, "a role is required")
	}
	t.ID = NewID()
	t.CreatedAt = s.Now()
	return t, nil
}

func tokenWriteErr(op string, err error) error {
	if core.KindOf(err) == core.KindConflict {
		return core.E(core.KindConflict, op, "a token with this hash exists")
	}
	return fmt.Errorf("%s: %w", op, err)
}
