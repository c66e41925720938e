package eventlogtest

import (
	"strings"
	"sync"
	"testing"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// runTokens is the suite of the API tokens an engine keeps.
func runTokens(t *testing.T, open Opener) {
	t.Run("TokenCreateAuthenticateRevoke", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		scopes := eventlog.Scopes{{Namespace: "outputs", Role: eventlog.RoleWrite}, {Namespace: "logs", Role: eventlog.RoleRead},
			{Namespace: "outputs", Role: eventlog.RoleRead}}
		tok, secret, err := b.s.CreateToken(b.ctx, "token:admin", "ci", scopes)
		must(t, err)
		if !strings.HasPrefix(secret, eventlog.TokenPrefix) || tok.Scopes.String() != "logs:read,outputs:write" || tok.Principal() != "token:ci" {
			t.Fatalf("token %+v, secret %q", tok, secret)
		}
		got, err := b.s.Authenticate(b.ctx, secret)
		must(t, err)
		if got.Name != "ci" || got.CreatedBy != "token:admin" || !got.CreatedAt.Equal(b.clock.now().Truncate(1e6)) || got.Revoked() {
			t.Errorf("authenticated as %+v", got)
		}
		for _, bad := range []string{"", "dcs_", secret + "x", strings.TrimPrefix(secret, eventlog.TokenPrefix), "dci_" + secret[4:]} {
			if _, err := b.s.Authenticate(b.ctx, bad); core.KindOf(err) != core.KindUnauthorized {
				t.Errorf("Authenticate(%q) = %v, want unauthorized", bad, err)
			}
		}
		_, _, err = b.s.CreateToken(b.ctx, "token:admin", "ci", scopes)
		wantKind(t, err, core.KindConflict, `named "ci" exists`)
		must(t, b.s.RevokeToken(b.ctx, "token:admin", "ci"))
		_, err = b.s.Authenticate(b.ctx, secret)
		wantKind(t, err, core.KindUnauthorized, "revoked")
		wantKind(t, b.s.RevokeToken(b.ctx, "token:admin", "ci"), core.KindNotFound, `"ci"`)
		// A revoked token keeps its name: token:ci stays one token.
		_, _, err = b.s.CreateToken(b.ctx, "token:admin", "ci", scopes)
		wantKind(t, err, core.KindConflict, "revoked tokens keep their names")
		list, err := b.s.Tokens(b.ctx)
		must(t, err)
		if len(list) != 1 || !list[0].Revoked() || list[0].RevokedBy != "token:admin" {
			t.Errorf("tokens = %+v", list)
		}
	})

	t.Run("TokenInputsRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		read := eventlog.Scopes{{Namespace: "logs", Role: eventlog.RoleRead}}
		for _, name := range []string{"", "configured", "-x", "a b", strings.Repeat("n", 65), "ä"} {
			_, _, err := b.s.CreateToken(b.ctx, "t", name, read)
			wantKind(t, err, core.KindInvalid, "")
		}
		for _, sc := range []eventlog.Scopes{nil, {{Namespace: "logs", Role: "owner"}}, {{Namespace: "a/b", Role: eventlog.RoleRead}}} {
			_, _, err := b.s.CreateToken(b.ctx, "t", "x", sc)
			wantKind(t, err, core.KindInvalid, "")
		}
		if list, err := b.s.Tokens(b.ctx); err != nil || len(list) != 0 {
			t.Errorf("refused tokens were stored: %+v %v", list, err)
		}
	})

	t.Run("FirstTokenOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		// Servers starting together make exactly one first token.
		var wg sync.WaitGroup
		var mu sync.Mutex
		var secrets []string
		for range 4 {
			wg.Go(func() {
				_, secret, created, err := b.s.CreateFirstToken(b.ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if created {
					mu.Lock()
					secrets = append(secrets, secret)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(secrets) != 1 {
			t.Fatalf("%d first tokens made, want 1", len(secrets))
		}
		tok, err := b.s.Authenticate(b.ctx, secrets[0])
		must(t, err)
		if tok.Name != eventlog.FirstTokenName || tok.Scopes.String() != "*:admin" {
			t.Errorf("first token = %+v", tok)
		}
		// Revoking it does not make the next start print another.
		must(t, b.s.RevokeToken(b.ctx, "token:admin", eventlog.FirstTokenName))
		if _, _, created, err := b.s.CreateFirstToken(b.ctx); err != nil || created {
			t.Errorf("a second first token: %v %v", created, err)
		}
	})

	t.Run("TokensNotInTheLog", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		pushed(t, b, "ns/a:1", "a")
		_, _, err := b.s.CreateToken(b.ctx, "t", "reader", eventlog.Scopes{{Namespace: "ns", Role: eventlog.RoleRead}})
		must(t, err)
		evs, err := b.s.Events(b.ctx, 0, 100)
		must(t, err)
		if len(evs) != 3 {
			t.Errorf("creating a token wrote events: %d", len(evs))
		}
		replayMatches(t, b)
	})
}
