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

	"github.com/deltaci/deltaci/internal/artifact/httpapi"
)

func newServeCmd(e env, f *artifactFlags) *cobra.Command {
	var listen string
	var ck checkpointFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the artifact store's HTTP API",
		Long: `Serve the HTTP API (documented at /api/v1/openapi.yaml) on --listen, over the
--database and --store given. Ctrl-C or SIGTERM stops accepting requests and
lets those in flight finish.`,
		Example: `  artifactstore serve --listen 127.0.0.1:8090
  artifactstore serve --database postgres://ci@db/ci --store s3://artifacts/ci --s3-endpoint https://s3.amazonaws.com --stage-dir /var/lib/artifactstore`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if f.server != "" {
				return usage(errors.New("serve runs a server; it does not take --server"))
			}
			if err := f.resolve(ctx, e); err != nil {
				return err
			}
			if err := ck.configure(e, f, true); err != nil {
				return err
			}
			s, err := f.openLocal(ctx, e)
			if err != nil {
				return err
			}
			defer s.Close()
			log := newJSONLogger(e.stderr)
			s.Registry.Log = log
			defer startCheckpointer(ctx, s.Meta, ck.interval, nil, log).Stop()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return usage(fmt.Errorf("--listen %s: %w", listen, err))
			}
			srv := &http.Server{
				Handler:           httpapi.New(httpapi.Options{Registry: s.Registry, Log: log}),
				ReadHeaderTimeout: 10 * time.Second,
				BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
			}
			fmt.Fprintf(e.stdout, "serving the artifact store on http://%s (database %s, store %s)\n", ln.Addr(), redactURL(f.database), f.store)
			go expireSessions(ctx, s.Data.ExpireSessions, log)
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
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8090", "address to listen on")
	ck.register(cmd.Flags(), true)
	return cmd
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
