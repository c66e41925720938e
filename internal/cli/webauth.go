package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/webauth"
)

// oidcFlags are the server's settings of the web UI's OpenID Connect
// login.
type oidcFlags struct {
	issuer, clientID, secretFile, roleClaim string
	admins, scopes                          []string
}

func (o *oidcFlags) register(f *pflag.FlagSet) {
	f.StringVar(&o.issuer, "oidc-issuer", "", "issuer URL of the OpenID provider people sign in to the web UI with, such as https://accounts.google.com (env DELTACI_OIDC_ISSUER); needs --external-url")
	f.StringVar(&o.clientID, "oidc-client-id", "", "the web UI's client id at the OpenID provider (env DELTACI_OIDC_CLIENT_ID)")
	f.StringVar(&o.secretFile, "oidc-client-secret-file", "", "file holding the client's secret (env DELTACI_OIDC_CLIENT_SECRET_FILE)")
	f.StringSliceVar(&o.admins, "oidc-admins", nil, "e-mail addresses (verified by the provider) or sub:SUBJECT of the web UI's admins, admins of every project (env DELTACI_OIDC_ADMINS)")
	f.StringVar(&o.roleClaim, "oidc-role-claim", "", `the ID token claim that lists a user's groups, such as "groups", for role bindings group:NAME (env DELTACI_OIDC_ROLE_CLAIM)`)
	f.StringSliceVar(&o.scopes, "oidc-scopes", []string{"openid", "email", "profile"}, `scopes to ask the provider for; Dex needs "groups" too for its groups claim`)
}

// fromEnv fills the settings not given as flags from the environment.
func (o *oidcFlags) fromEnv(e env) {
	fromEnv(e, &o.issuer, "DELTACI_OIDC_ISSUER", &o.clientID, "DELTACI_OIDC_CLIENT_ID",
		&o.secretFile, "DELTACI_OIDC_CLIENT_SECRET_FILE", &o.roleClaim, "DELTACI_OIDC_ROLE_CLAIM")
	if len(o.admins) == 0 {
		for _, a := range strings.Split(e.get("DELTACI_OIDC_ADMINS"), ",") {
			if a = strings.TrimSpace(a); a != "" {
				o.admins = append(o.admins, a)
			}
		}
	}
}

// check refuses settings that cannot work, before anything starts.
func (o *oidcFlags) check(externalURL string) error {
	if o.issuer == "" {
		if o.clientID != "" || o.secretFile != "" || len(o.admins) > 0 || o.roleClaim != "" {
			return usage(fmt.Errorf("the --oidc-* settings need --oidc-issuer"))
		}
		return nil
	}
	if externalURL == "" {
		return usage(fmt.Errorf("--oidc-issuer needs --external-url: the provider sends browsers back to <external-url>%s", webauth.CallbackPath))
	}
	if o.clientID == "" {
		return usage(fmt.Errorf("--oidc-issuer needs --oidc-client-id"))
	}
	return nil
}

// auth connects to the provider; nil without --oidc-issuer.
func (o *oidcFlags) auth(ctx context.Context, st *store.Store, externalURL string, log *slog.Logger) (*webauth.Auth, error) {
	if o.issuer == "" {
		return nil, nil
	}
	var secret string
	if o.secretFile != "" {
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return nil, fmt.Errorf("--oidc-client-secret-file: %w", err)
		}
		if secret = strings.TrimSpace(string(b)); secret == "" {
			return nil, usage(fmt.Errorf("--oidc-client-secret-file %s is empty", o.secretFile))
		}
	}
	a, err := webauth.New(ctx, webauth.Config{
		Issuer: o.issuer, ClientID: o.clientID, ClientSecret: secret,
		RedirectURL: strings.TrimSuffix(externalURL, "/") + webauth.CallbackPath,
		Scopes:      o.scopes, RoleClaim: o.roleClaim, Admins: o.admins,
	}, st, webauth.WithLogger(log))
	if err != nil {
		return nil, err
	}
	log.Info("web login through OpenID Connect", slog.String("issuer", o.issuer), slog.Int("admins", len(o.admins)))
	return a, nil
}

// webHandler serves the web UI's login next to the API; every request
// goes through the session middleware, which costs nothing without the
// session cookie.
func webHandler(a *webauth.Auth, apiHandler http.Handler) http.Handler {
	if a == nil {
		return apiHandler
	}
	mux := http.NewServeMux()
	a.Routes(mux)
	mux.Handle("/", apiHandler)
	return a.Middleware(mux)
}
