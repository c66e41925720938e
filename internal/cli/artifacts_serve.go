package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
)

func newServeCmd(e env, f *artifactFlags) *cobra.Command {
	var listen, apiToken string
	var insecureNoAuth bool
	var ck checkpointFlags
	var sc scrubFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the artifact store's HTTP API",
		Long: `Serve the HTTP API (documented at /api/v1/openapi.yaml) on --listen, over the
--database and --store given. Ctrl-C or SIGTERM stops accepting requests and
lets those in flight finish.

Every request but /healthz, /readyz, /metrics and the OpenAPI document needs
an API token, sent as Authorization: Bearer. Each token has scopes, a role
(read, write or admin) per namespace or on every namespace (*). On its first
start without --api-token the server makes an admin token (*:admin), prints it
once on stderr and keeps only its hash; make narrower ones with "tokens
create". The audit trail records the token's name as the actor: an X-Actor
header is ignored.

Every --scrub-interval (24h; 0 for never) the server scrubs the store, as the
scrub command does, at --scrub-rate: every stored blob is read and checked, and
corrupt ones are quarantined. A scrub of every blob recorded in the log within
the interval, by any server or by hand, puts the next one off.`,
		Example: `  artifactstore serve --listen 127.0.0.1:8090
  ARTIFACTSTORE_API_TOKEN=... artifactstore serve --database postgres://ci@db/ci --store s3://artifacts/ci --s3-endpoint https://s3.amazonaws.com --stage-dir /var/lib/artifactstore`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if f.server != "" {
				return usage(errors.New("serve runs a server; it does not take --server"))
			}
			if err := sc.check(); err != nil {
				return err
			}
			if apiToken == "" {
				apiToken = e.get("ARTIFACTSTORE_API_TOKEN")
			}
			if insecureNoAuth {
				if err := loopbackOnly(listen); err != nil {
					return usage(err)
				}
			}
			if err := f.resolve(ctx, e); err != nil {
				return err
			}
			if err := ck.configure(e, f, true); err != nil {
				return err
			}
			log := newJSONLogger(e.stderr)
			s, err := f.openLocal(ctx, e, log)
			if err != nil {
				return err
			}
			defer s.Close()
			defer startCheckpointer(ctx, s.Meta, ck.interval, nil, log).Stop()
			switch {
			case insecureNoAuth:
				log.WarnContext(ctx, "--insecure-no-auth: requests without an API token are served as an anonymous admin")
			case apiToken == "":
				if err := firstStoreToken(ctx, s.Meta, e, log); err != nil {
					return err
				}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return usage(fmt.Errorf("--listen %s: %w", listen, err))
			}
			scrubber := sc.scrubber(s.Registry, nil, log)
			metrics := httpapi.NewMetrics(s.Meta)
			if err := metrics.Register(append(scrubber.Collectors(), s.Data.Corruptions())...); err != nil {
				return err
			}
			srv := &http.Server{
				Handler: httpapi.New(httpapi.Options{
					Registry: s.Registry, Log: log, Metrics: metrics, Scrubber: scrubber,
					Auth: &httpapi.TokenAuth{Meta: s.Meta, Configured: apiToken, AllowAnonymous: insecureNoAuth},
				}),
				ReadHeaderTimeout: 10 * time.Second,
				BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
			}
			fmt.Fprintf(e.stdout, "serving the artifact store on http://%s (database %s, store %s)\n", ln.Addr(), redactURL(f.database), f.store)
			go expireSessions(ctx, s.Data.ExpireSessions, log)
			// Stopped once the HTTP server is (deferred before it returns).
			scrubber.Start(ctx)
			defer scrubber.Stop()
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := srv.Shutdown(shutdown); err != nil {
				return err
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:8090", "address to listen on")
	// The global --api-token is what a client sends; for serve it is the
	// admin token the server accepts, so it gets its own flag and help.
	fl.StringVar(&apiToken, "api-token", "", "an admin API token to accept (*:admin), besides the tokens the store keeps (env ARTIFACTSTORE_API_TOKEN); without one, the first start makes one and prints it")
	fl.BoolVar(&insecureNoAuth, "insecure-no-auth", false, "serve requests without an API token as an anonymous admin; for development, and only with a loopback --listen")
	ck.register(fl, true)
	sc.register(fl)
	return cmd
}

// firstStoreToken makes the store's first admin token when it never had
// one, prints it once on stderr and keeps only its hash, as deltaci server
// does with its own. Servers starting together make one.
func firstStoreToken(ctx context.Context, meta *eventlog.Store, e env, log *slog.Logger) error {
	t, secret, created, err := meta.CreateFirstToken(ctx)
	if err != nil || !created {
		return err
	}
	fmt.Fprintf(e.stderr, "\nThe artifact store made its first admin API token (%s, scopes %s). It is shown only this once; keep it:\n\n    %s\n\n"+
		"Use it as ARTIFACTSTORE_TOKEN (or --api-token) with artifactstore --server, and make tokens with narrower scopes\n"+
		"with artifactstore tokens create.\n\n", t.Name, t.Scopes, secret)
	log.InfoContext(ctx, "made the first admin API token and printed it once on stderr; only its hash is kept", slog.String("token", t.Name))
	return nil
}

// expireSessions ends abandoned upload sessions once a minute.
func expireSessions(ctx context.Context, expire func(context.Context) (int, error), log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := expire(ctx); err != nil {
				log.WarnContext(ctx, "expiring upload sessions", slog.Any("err", err))
			} else if n > 0 {
				log.InfoContext(ctx, "expired upload sessions", slog.Int("sessions", n))
			}
		}
	}
}
