package cli

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"github.com/deltaci/deltaci/internal/analyzer"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/s3"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/orchestrator"
	"github.com/deltaci/deltaci/internal/planner"
	"github.com/deltaci/deltaci/internal/secret"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/postgres"
	"github.com/deltaci/deltaci/internal/store/sqlite"
	"github.com/deltaci/deltaci/internal/telemetry"
	"github.com/deltaci/deltaci/internal/ui"
	"github.com/deltaci/deltaci/internal/webauth"
)

type serverOptions struct {
	listen, dataDir, database, store, s3Endpoint string
	registrationToken, apiToken, signingKey      string
	verifyKey                                    string
	secretsFile, executor, externalURL           string
	insecureNoAuth                               bool
	ttl, reapInterval, shutdownTimeout           time.Duration
	drainDelay, fetchTimeout, statusRetryMax     time.Duration
	cacheLimit                                   byteSize
	statusLease, inboxLease                      time.Duration
	analysisLease                                time.Duration
	flakyClearAfter                              int
	checkpointInterval                           time.Duration
	checkpointPublic                             []string
	scrub                                        scrubFlags
	oidc                                         oidcFlags
}

func newServerCmd(e env) *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: the API, the orchestrator and the lease queue",
		Long: `Run the Delta CI server: the HTTP API under /api/v1 (documented at
/api/v1/openapi.yaml), the lease queue that runners long-poll, the reaper of
lost leases, and the artifact store API under /store.

Every request but /healthz, /readyz, /metrics and the OpenAPI document needs
a credential. On its first start without --api-token the server makes an
admin API token, prints it once on stderr and keeps only its hash. Runs are
made only for projects an admin registered (deltaci projects add).

State is SQLite in --data-dir by default, or PostgreSQL with --database
postgres://…; artifacts live in --data-dir/store, or in S3 with --store
s3://bucket/prefix. On SIGINT or SIGTERM the server stops handing out leases,
answers waiting long-polls, lets requests in flight finish and exits.`,
		Example: `  DELTACI_REGISTRATION_TOKEN=secret deltaci server
  DELTACI_API_TOKEN=... deltaci server --listen 0.0.0.0:8080 --database postgres://ci@db/ci --store s3://ci-artifacts/main --s3-endpoint https://s3.amazonaws.com`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd.Context(), e, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve on")
	f.StringVar(&o.dataDir, "data-dir", "", "directory for the SQLite database, the artifact store, mirrors and the signing key (env DELTACI_DATA_DIR; default deltaci-data)")
	f.StringVar(&o.database, "database", "", "SQLite file path or postgres:// URL (env DELTACI_DATABASE; default <data-dir>/state.db)")
	f.StringVar(&o.store, "store", "", "artifact store: a directory or s3://bucket/prefix (env DELTACI_STORE; default <data-dir>/store)")
	f.StringVar(&o.s3Endpoint, "s3-endpoint", "", "S3 endpoint URL for an s3:// store (env DELTACI_S3_ENDPOINT); keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	f.StringVar(&o.registrationToken, "registration-token", "", "token runners register with (env DELTACI_REGISTRATION_TOKEN); without one no runner can register")
	f.StringVar(&o.apiToken, "api-token", "", "an admin API token to accept, besides those the server made (env DELTACI_API_TOKEN); without one, the first start makes one and prints it")
	f.BoolVar(&o.insecureNoAuth, "insecure-no-auth", false, "accept requests without an API token, as an anonymous admin; for development, and only with a loopback --listen")
	f.StringVar(&o.verifyKey, "verify-key", "", "file holding another hex ed25519 seed whose tokens are accepted but never signed: the old or the next key of a rotation (env DELTACI_VERIFY_KEY)")
	f.StringVar(&o.signingKey, "signing-key", "", "file holding the hex ed25519 seed that signs runner tokens, created if missing; replicas must share it (env DELTACI_SIGNING_KEY; default <data-dir>/signing.key)")
	f.StringVar(&o.externalURL, "external-url", "", "the server's URL as forges and browsers reach it, such as https://ci.example.com: webhook URLs and the links of commit statuses use it (env DELTACI_EXTERNAL_URL)")
	f.StringVar(&o.secretsFile, "secrets-file", "", "file of NAME=value secrets for trusted runs, besides DELTACI_SECRET_<NAME> variables (env DELTACI_SECRETS_FILE)")
	f.StringVar(&o.executor, "executor", planner.ExecutorSandbox, "where jobs run: sandbox or shell; only runners with that executor lease them")
	f.DurationVar(&o.ttl, "lease-ttl", api.DefaultTTL, "lease time-to-live; runners heartbeat every third of it")
	f.DurationVar(&o.reapInterval, "reap-interval", orchestrator.DefaultReapInterval, "how often expired leases are looked for")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long requests in flight get to finish on shutdown")
	o.cacheLimit = byteSize(api.DefaultCacheLimit)
	f.Var(&o.cacheLimit, "cache-limit", "bytes of job cache entries a project keeps, e.g. 20GiB; past it the least recently used entries go")
	f.DurationVar(&o.fetchTimeout, "fetch-timeout", api.DefaultFetchTimeout, "how long one fetch of a project's repository may take; a hung fetch holds up only its own project's runs")
	f.DurationVar(&o.statusRetryMax, "status-retry-max", api.DefaultStatusRetryMax, "the longest wait between tries of a commit status the forge did not take (down, or answering 5xx or 429)")
	// For tests that kill a server holding claims: see api.Config.
	f.DurationVar(&o.statusLease, "status-lease", api.DefaultStatusLease, "how long a claim on a commit status to post lasts")
	f.DurationVar(&o.inboxLease, "inbox-lease", api.DefaultInboxLease, "how long a claim on a webhook delivery to plan lasts")
	_ = f.MarkHidden("status-lease")
	f.DurationVar(&o.analysisLease, "analysis-lease", analyzer.DefaultLease, "how long a claim on an ended attempt to analyze lasts; a replica that dies mid-analysis delays it this long")
	f.IntVar(&o.flakyClearAfter, "flaky-clear-after", store.DefaultFlakyClearAfter, "how many passes in a row clear a flaky job or test")
	_ = f.MarkHidden("inbox-lease")
	f.DurationVar(&o.checkpointInterval, "checkpoint-interval", eventlog.DefaultCheckpointInterval, "how often the leader signs a checkpoint of the artifact store's event log, when it grew, with the signing key")
	f.StringArrayVar(&o.checkpointPublic, "checkpoint-public-key", nil, "hex Ed25519 public key whose artifact store checkpoints are genuine too: a signing key rotated away (repeatable)")
	o.scrub.register(f)
	o.oidc.register(f)
	f.DurationVar(&o.drainDelay, "drain-delay", 0, "on shutdown, how long to keep serving with /readyz answering 503 before closing the listener, so a load balancer stops sending requests first")
	return cmd
}

// fromEnv fills empty settings from the environment.
func fromEnv(e env, pairs ...any) {
	for i := 0; i+1 < len(pairs); i += 2 {
		p := pairs[i].(*string)
		if *p == "" {
			*p = e.get(pairs[i+1].(string))
		}
	}
}

func runServer(ctx context.Context, e env, o serverOptions) error {
	fromEnv(e, &o.dataDir, "DELTACI_DATA_DIR", &o.database, "DELTACI_DATABASE", &o.store, "DELTACI_STORE",
		&o.s3Endpoint, "DELTACI_S3_ENDPOINT", &o.registrationToken, "DELTACI_REGISTRATION_TOKEN",
		&o.apiToken, "DELTACI_API_TOKEN", &o.signingKey, "DELTACI_SIGNING_KEY", &o.secretsFile, "DELTACI_SECRETS_FILE",
		&o.verifyKey, "DELTACI_VERIFY_KEY", &o.externalURL, "DELTACI_EXTERNAL_URL")
	if err := fromEnvFiles(e, &o.database, "DELTACI_DATABASE", &o.registrationToken, "DELTACI_REGISTRATION_TOKEN",
		&o.apiToken, "DELTACI_API_TOKEN"); err != nil {
		return err
	}
	if o.externalURL != "" {
		if u, err := url.Parse(o.externalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return usage(fmt.Errorf("--external-url %q: give an http or https URL such as https://ci.example.com", o.externalURL))
		}
	}
	o.oidc.fromEnv(e)
	if err := o.oidc.check(o.externalURL); err != nil {
		return err
	}
	if o.dataDir == "" {
		o.dataDir = "deltaci-data"
	}
	if o.executor != planner.ExecutorShell && o.executor != planner.ExecutorSandbox {
		return usage(fmt.Errorf("--executor %q: use sandbox or shell", o.executor))
	}
	if o.ttl < 3*time.Second {
		return usage(fmt.Errorf("--lease-ttl %s: use at least 3s", o.ttl))
	}
	if o.reapInterval <= 0 {
		return usage(fmt.Errorf("--reap-interval %s: must be positive", o.reapInterval))
	}
	if o.checkpointInterval <= 0 {
		return usage(fmt.Errorf("--checkpoint-interval %s: must be positive", o.checkpointInterval))
	}
	if err := o.scrub.check(); err != nil {
		return err
	}
	var rotatedAway []ed25519.PublicKey
	for _, k := range o.checkpointPublic {
		pub, err := eventlog.ParsePublicKey(k)
		if err != nil {
			return usage(fmt.Errorf("--checkpoint-public-key: %w", err))
		}
		rotatedAway = append(rotatedAway, pub)
	}
	if o.cacheLimit <= 0 {
		return usage(fmt.Errorf("--cache-limit %s: must be positive", o.cacheLimit.String()))
	}
	if o.fetchTimeout <= 0 {
		return usage(fmt.Errorf("--fetch-timeout %s: must be positive", o.fetchTimeout))
	}
	if o.statusRetryMax <= 0 {
		return usage(fmt.Errorf("--status-retry-max %s: must be positive", o.statusRetryMax))
	}
	if o.insecureNoAuth {
		if err := loopbackOnly(o.listen); err != nil {
			return usage(err)
		}
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	// Git runs in other directories (the mirrors'); paths must not be relative.
	abs, err := filepath.Abs(o.dataDir)
	if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	o.dataDir = abs
	if o.database == "" {
		o.database = filepath.Join(o.dataDir, "state.db")
	}
	if o.store == "" {
		o.store = filepath.Join(o.dataDir, "store")
	}
	if o.signingKey == "" {
		o.signingKey = filepath.Join(o.dataDir, "signing.key")
	}
	log := newJSONLogger(e.stdout)
	if o.registrationToken == "" {
		log.Warn("no registration token: runners cannot register (set DELTACI_REGISTRATION_TOKEN)")
	}
	keys, checkpointKey, checkpointTrusted, err := loadKeyset(o.signingKey, o.verifyKey)
	if err != nil {
		return err
	}
	tracing, flushSpans, err := startTracing(ctx, e, "deltaci-server", log)
	if err != nil {
		return usage(err)
	}
	// Deferred first, so it runs last: after the HTTP server and the
	// loops, which make spans, have stopped.
	defer flushSpans()

	cfg := api.Config{
		RegistrationToken: o.registrationToken, APIToken: o.apiToken, Keys: keys,
		Mirrors: gitx.Mirrors{Dir: filepath.Join(o.dataDir, "mirrors")}, InsecureNoAuth: o.insecureNoAuth,
		Executor: o.executor, TTL: o.ttl, ReapInterval: o.reapInterval, FetchTimeout: o.fetchTimeout, Log: log,
		CacheLimit:  int64(o.cacheLimit),
		ExternalURL: o.externalURL, StatusRetryMax: o.statusRetryMax, StatusLease: o.statusLease, InboxLease: o.inboxLease,
		Analysis: analyzer.Settings{Lease: o.analysisLease, ClearAfter: o.flakyClearAfter},
		Tracer:   tracing.Provider(),
	}
	if o.analysisLease <= 0 || o.flakyClearAfter <= 0 {
		return usage(fmt.Errorf("--analysis-lease and --flaky-clear-after must be positive, got %s and %d", o.analysisLease, o.flakyClearAfter))
	}
	var providers secret.Chain
	providers = append(providers, secret.NewEnv(e.vars))
	if o.secretsFile != "" {
		providers = append(providers, secret.NewFile(o.secretsFile))
	}
	cfg.Secrets = providers

	if isPostgres(o.database) {
		drv, err := postgres.Open(ctx, o.database, true)
		if err != nil {
			return err
		}
		defer drv.Close()
		cfg.Store = store.New(drv)
		cfg.Wake = drv.Listen
		leader := drv.NewLeader("reaper")
		defer func() { _ = leader.Resign(context.WithoutCancel(ctx)) }()
		cfg.Leader = leader
	} else {
		drv, err := sqlite.Open(ctx, strings.TrimPrefix(o.database, "sqlite://"), true)
		if err != nil {
			return err
		}
		defer drv.Close()
		cfg.Store = store.New(drv)
	}
	if o.insecureNoAuth {
		log.Warn("--insecure-no-auth: requests without an API token are served as an anonymous admin")
	} else if o.apiToken == "" {
		if err := firstAdminToken(ctx, cfg.Store, e, log); err != nil {
			return err
		}
	}
	ocfg := open.Config{Database: o.database, Store: o.store, Log: log}
	if strings.HasPrefix(o.store, "s3://") {
		if o.s3Endpoint == "" {
			return usage(fmt.Errorf("--store %s needs --s3-endpoint (or DELTACI_S3_ENDPOINT)", o.store))
		}
		ocfg.S3 = s3.EnvCredentials(s3.Options{Endpoint: o.s3Endpoint, Region: e.get("AWS_REGION")}, e.get)
		ocfg.StageDir = filepath.Join(o.dataDir, "stage")
	}
	arts, err := open.Open(ctx, ocfg)
	if err != nil {
		return fmt.Errorf("artifact store: %w", err)
	}
	defer arts.Close()
	// The newest checkpoint is kept in the data directory too, where
	// whoever rewrites the database cannot roll it back with the log.
	arts.Meta.UseCheckpoints(eventlog.CheckpointConfig{Key: checkpointKey, Trusted: append(checkpointTrusted, rotatedAway...),
		File: filepath.Join(o.dataDir, checkpointFileName)})
	cfg.Registry = arts.Registry
	scrubber := o.scrub.scrubber(arts.Registry, cfg.Leader, log)
	cfg.StoreAPI = httpapi.New(httpapi.Options{Registry: arts.Registry, Log: log, Scrubber: scrubber})
	cfg.Metrics = telemetry.New(queueDepth(ctx, cfg.Store), storeBytes(ctx, arts.Meta))
	if err := cfg.Metrics.Register(append(scrubber.Collectors(), arts.Data.Corruptions())...); err != nil {
		return err
	}

	srv := api.New(cfg)
	web, err := o.oidc.auth(ctx, cfg.Store, o.externalURL, log)
	if err != nil {
		return err
	}
	pages, err := withUI(srv, log, web)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return usage(fmt.Errorf("--listen %s: %w", o.listen, err))
	}
	hs := &http.Server{
		Handler:           webHandler(web, pages),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.Start(ctx)
	go expireSessions(ctx, arts.Data.ExpireSessions, log)
	// Stopped after the HTTP server (deferred before it returns), so its
	// last checkpoint covers every write.
	defer startCheckpointer(ctx, arts.Meta, o.checkpointInterval, cfg.Leader, log).Stop()
	scrubber.Start(ctx)
	defer scrubber.Stop()
	log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("database", redactURL(o.database)),
		slog.String("store", o.store), slog.String("executor", o.executor))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		srv.Stop()
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining long-polls and requests in flight")
	srv.Drain()
	if o.drainDelay > 0 {
		time.Sleep(o.drainDelay)
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
	defer cancel()
	err = hs.Shutdown(shutdown)
	srv.Stop()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// firstAdminToken makes the server's first admin API token when it has
// none, prints it once on stderr and stores only its hash (the way Jenkins
// hands out its initial password). Replicas starting together make one.
func firstAdminToken(ctx context.Context, st *store.Store, e env, log *slog.Logger) error {
	n, err := st.CountAPITokens(ctx)
	if err != nil || n > 0 {
		return err
	}
	tok, hash := auth.NewAPIToken()
	_, created, err := st.CreateFirstAPIToken(ctx, store.APIToken{Name: "admin", Role: auth.RoleAdmin, Hash: hash})
	if err != nil || !created {
		return err
	}
	fmt.Fprintf(e.stderr, "\nDelta CI made its first admin API token. It is shown only this once; keep it:\n\n    %s\n\n"+
		"Use it as DELTACI_API_TOKEN (or --api-token) with deltaci projects, trigger and runners.\n\n", tok)
	log.Info("made the first admin API token and printed it once on stderr; only its hash is kept")
	return nil
}

// loopbackOnly refuses a listen address that other machines can reach.
func loopbackOnly(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--insecure-no-auth serves anyone as an admin, so it needs a loopback --listen (127.0.0.1, ::1 or localhost), not %q", listen)
}

// loadKeyset reads the signing key seed at path, creating it first when
// it does not exist, and accepts the key of the seed at verify too. It
// returns the checkpoint keys as well: the signing key signs the artifact
// store's checkpoints, and the verify key's are genuine too.
func loadKeyset(path, verify string) (*auth.Keyset, ed25519.PrivateKey, []ed25519.PublicKey, error) {
	seed, err := readSeed("--signing-key", path, true)
	if err != nil {
		return nil, nil, nil, err
	}
	ks, err := auth.KeysetFromSeed(seed, nil)
	if err != nil {
		return nil, nil, nil, usage(fmt.Errorf("--signing-key %s: %w", path, err))
	}
	key := ed25519.NewKeyFromSeed(seed)
	if verify == "" {
		return ks, key, nil, nil
	}
	// Never created: a key to accept that nobody has is a mistake.
	vseed, err := readSeed("--verify-key", verify, false)
	if err != nil {
		return nil, nil, nil, usage(err)
	}
	if err := ks.Accept(vseed); err != nil {
		return nil, nil, nil, usage(fmt.Errorf("--verify-key %s: %w", verify, err))
	}
	return ks, key, []ed25519.PublicKey{ed25519.NewKeyFromSeed(vseed).Public().(ed25519.PublicKey)}, nil
}

// queueDepth reports queued attempts by their labels at scrape time.
func queueDepth(ctx context.Context, st *store.Store) func() map[string]float64 {
	return func() map[string]float64 {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		m, err := st.QueueDepth(c)
		if err != nil {
			return nil
		}
		return m
	}
}

// storeBytes reports the artifact store's bytes per ref namespace at
// scrape time.
func storeBytes(ctx context.Context, meta *eventlog.Store) func() map[string]float64 {
	return func() map[string]float64 {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		m, err := meta.NamespaceBytes(c)
		if err != nil {
			return nil
		}
		out := make(map[string]float64, len(m))
		for ns, n := range m {
			out[ns] = float64(n)
		}
		return out
	}
}

// withUI serves the web UI's pages at / in front of the API. With a web
// login (web not nil) the pages admit its sessions, which webHandler
// loads; without one, what the API admits: an API token, or anyone on a
// server run with --insecure-no-auth.
func withUI(srv *api.Server, log *slog.Logger, web *webauth.Auth) (http.Handler, error) {
	a := ui.APIAuth{Authenticate: srv.Authenticate}
	cfg := ui.Config{Backend: srv, Auth: a, Middleware: a.Middleware, Session: a.Session, Log: log}
	if web != nil {
		cfg = ui.WithWebLogin(cfg, web)
	}
	pages, err := ui.New(cfg)
	if err != nil {
		return nil, err
	}
	return pages.Handler(srv.Handler()), nil
}
