package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/core"
)

// tokenAdmin manages a standalone store's API tokens: in its database
// directly, or through a server with an admin token. by is who the token
// records as its maker or revoker; a server records the caller's
// principal instead.
type tokenAdmin interface {
	CreateToken(ctx context.Context, by, name string, scopes eventlog.Scopes) (eventlog.Token, string, error)
	Tokens(ctx context.Context) ([]eventlog.Token, error)
	RevokeToken(ctx context.Context, by, name string) error
	Close() error
}

// remoteTokens manages tokens through a running artifactstore serve.
type remoteTokens struct{ c *httpapi.Client }

func (r remoteTokens) CreateToken(ctx context.Context, _, name string, scopes eventlog.Scopes) (eventlog.Token, string, error) {
	return r.c.CreateToken(ctx, name, scopes)
}
func (r remoteTokens) Tokens(ctx context.Context) ([]eventlog.Token, error) { return r.c.Tokens(ctx) }
func (r remoteTokens) RevokeToken(ctx context.Context, _, name string) error {
	return r.c.RevokeToken(ctx, name)
}
func (r remoteTokens) Close() error { return nil }

// withTokens wraps a command body that manages tokens.
func withTokens(e env, f *artifactFlags, run func(cmd *cobra.Command, t tokenAdmin, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if err := f.resolve(ctx, e); err != nil {
			return err
		}
		var t tokenAdmin
		if f.server != "" {
			t = remoteTokens{&httpapi.Client{BaseURL: f.server, Token: f.token}}
		} else {
			meta, err := open.OpenMeta(ctx, f.database)
			if err != nil {
				return err
			}
			t = meta
		}
		defer t.Close()
		err := run(cmd, t, args)
		var fe *httpapi.ForbiddenError
		if f.server != "" && core.KindOf(err) == core.KindUnauthorized && !errors.As(err, &fe) {
			err = fmt.Errorf("%w\n%s", err, f.tokenHint())
		}
		return err
	}
}

func newTokensCmd(e env, f *artifactFlags, prog string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Make, list and revoke the API tokens of artifactstore serve",
		Long: `The API tokens a standalone server (serve) accepts. A token has a name, which
the audit trail records as the actor ("token:<name>"), and scopes: a role per
namespace, NAMESPACE:ROLE, where * is every namespace.

  read    read refs, manifests and blobs; on * also the event log and audit
  write   also upload blobs, store manifests, set, pin and delete refs
  admin   also set, delete and apply retention; on * also GC, replay --verify
          and tokens

Without --server these commands work on the store's database directly (no
token needed: this is how to recover when every admin token is lost). With
--server they need an admin token on *. The secret of a new token is printed
once; only its hash is kept. A revoked token is refused at its next request,
and keeps its name.`,
		Example: `  ` + prog + ` tokens create ci --scope outputs:write --scope logs:write
  ` + prog + ` tokens create dashboard --scope '*:read'
  ` + prog + ` tokens ls
  ` + prog + ` tokens revoke ci`,
	}
	var scopes []string
	create := &cobra.Command{
		Use:   "create NAME --scope NAMESPACE:ROLE...",
		Short: "Make a token and print its secret, once",
		Args:  checkArgs(cobra.ExactArgs(1)),
		RunE: withTokens(e, f, func(cmd *cobra.Command, t tokenAdmin, args []string) error {
			if len(scopes) == 0 {
				return usage(errors.New("give the token at least one --scope NAMESPACE:ROLE, such as outputs:write or '*:admin'"))
			}
			sc, err := eventlog.ParseScopes(strings.Join(scopes, ","))
			if err != nil {
				return usage(err)
			}
			if err := eventlog.ValidateTokenName(args[0]); err != nil {
				return usage(err)
			}
			tok, secret, err := t.CreateToken(cmd.Context(), f.actor, args[0], sc)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, map[string]any{"name": tok.Name, "scopes": scopeStrings(tok.Scopes), "token": secret,
					"created_at": eventlog.FormatTime(tok.CreatedAt), "created_by": tok.CreatedBy})
			}
			fmt.Fprintln(e.stdout, secret)
			fmt.Fprintf(e.stderr, "made token %s (%s), recorded as %s; its secret is shown only this once\n", tok.Name, tok.Scopes, tok.Principal())
			return nil
		}),
	}
	create.Flags().StringArrayVar(&scopes, "scope", nil, "NAMESPACE:ROLE (ROLE is read, write or admin; NAMESPACE may be *), repeatable or comma-separated")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List tokens, revoked ones too",
		Args:  checkArgs(cobra.NoArgs),
		RunE: withTokens(e, f, func(cmd *cobra.Command, t tokenAdmin, _ []string) error {
			ts, err := t.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if f.json {
				out := make([]map[string]any, len(ts))
				for i, tok := range ts {
					row := map[string]any{"name": tok.Name, "scopes": scopeStrings(tok.Scopes),
						"created_at": eventlog.FormatTime(tok.CreatedAt), "created_by": tok.CreatedBy, "revoked": tok.Revoked()}
					if tok.Revoked() {
						row["revoked_at"], row["revoked_by"] = eventlog.FormatTime(tok.RevokedAt), tok.RevokedBy
					}
					out[i] = row
				}
				return printJSON(e.stdout, out)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSCOPES\tCREATED\tBY\tREVOKED")
			for _, tok := range ts {
				revoked := "-"
				if tok.Revoked() {
					revoked = eventlog.FormatTime(tok.RevokedAt) + " by " + tok.RevokedBy
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", tok.Name, tok.Scopes, eventlog.FormatTime(tok.CreatedAt), tok.CreatedBy, revoked)
			}
			return tw.Flush()
		}),
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token: its next request is refused",
		Args:  checkArgs(cobra.ExactArgs(1)),
		RunE: withTokens(e, f, func(cmd *cobra.Command, t tokenAdmin, args []string) error {
			if err := t.RevokeToken(cmd.Context(), f.actor, args[0]); err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, map[string]any{"name": args[0], "revoked": true})
			}
			return nil
		}),
	}
	cmd.AddCommand(create, ls, revoke)
	return cmd
}

func scopeStrings(ss eventlog.Scopes) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.String()
	}
	return out
}
