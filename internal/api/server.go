// Package api is the Delta CI server's HTTP+JSON API (/api/v1): the run
// API, the runner protocol of DESIGN.md section 6 and the artifact store
// mounted under /store. api/openapi.yaml is its contract.
package api

import (
	"context"
	"github.com/deltaci/deltaci/internal/analyzer"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/logstream"
	"github.com/deltaci/deltaci/internal/orchestrator"
	"github.com/deltaci/deltaci/internal/planner"
	"github.com/deltaci/deltaci/internal/secret"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/telemetry"

	"go.opentelemetry.io/otel/trace"
)

// Defaults of Config.
const (
	DefaultTTL          = 20 * time.Second
	DefaultMaxLeaseWait = 30 * time.Second
	DefaultMaxJSONBytes = 1 << 20
	// MaxLogChunk bounds one log chunk upload.
	MaxLogChunk = 1 << 20
	// StorePrefix is where the artifact store API is mounted.
	StorePrefix = "/store"
)

// Config wires the server.
type Config struct {
	Store    *store.Store
	Registry *registry.Registry
	// StoreAPI is the artifact store's HTTP API, mounted at StorePrefix.
	StoreAPI http.Handler
	Keys     *auth.Keyset
	// RegistrationToken lets runners register; empty refuses every runner.
	RegistrationToken string
	// APIToken, when set, is an admin API token besides those the server
	// made and stores hashed (store.APIToken).
	APIToken string
	// InsecureNoAuth admits requests without an API token as an anonymous
	// admin: for development on loopback only (the CLI refuses any other
	// listen address with it).
	InsecureNoAuth bool
	// AuthRate and AuthBurst limit registration and session requests per
	// source address (DefaultAuthRate and DefaultAuthBurst when 0).
	AuthRate  float64
	AuthBurst int
	// FetchTimeout bounds one fetch of a project's repository
	// (DefaultFetchTimeout when 0).
	FetchTimeout time.Duration
	// Secrets resolves the secrets jobs of trusted runs ask for.
	Secrets secret.Provider
	// Mirrors holds the server's per-repository mirrors, for planning.
	Mirrors gitx.Mirrors
	// Salt is mixed into every job digest (planner.DefaultSalt when empty).
	Salt string
	// Executor is where planned jobs run, shell or sandbox: part of every
	// job digest, and a label the leasing runner must have.
	Executor string
	// TTL of leases (DefaultTTL when 0); MaxLeaseWait caps a long-poll.
	TTL          time.Duration
	MaxLeaseWait time.Duration
	// CacheLimit bounds the bytes of a project's job cache entries
	// (DefaultCacheLimit when 0); over it, the least recently used go.
	CacheLimit int64
	// Wake, when set, starts a source of queue wake-ups besides the
	// in-process one (PostgreSQL LISTEN) and runs until ctx ends.
	Wake func(ctx context.Context, wake func())
	// Leader gates the reaper and the log sweeper (orchestrator.AlwaysLeader
	// when nil).
	Leader orchestrator.Leader
	// ReapInterval is how often leases are checked (2 s when 0).
	ReapInterval time.Duration
	// ContactFlush is how often the runners' contacts this replica saw
	// are written (DefaultContactFlush when 0).
	ContactFlush time.Duration
	// WaitScan is how often the leader looks for queued attempts that no
	// live runner can take, to log and count them (DefaultWaitScan when
	// 0). It runs with the reaper, so no more often than ReapInterval.
	WaitScan time.Duration
	// ExternalURL is the server's URL as forges and browsers reach it,
	// for webhook URLs and the links of commit statuses; webhook URLs
	// fall back to the request's host when it is empty, and statuses then
	// link nowhere.
	ExternalURL string
	// InboxPoll is how often the inbox is read for deliveries another
	// replica stored (DefaultInboxPoll when 0).
	InboxPoll time.Duration
	// StatusPoll is how often the outbox is read for statuses to post
	// (DefaultStatusPoll when 0); StatusRetryMax caps the wait between
	// tries of one the forge did not take (DefaultStatusRetryMax when 0).
	StatusPoll     time.Duration
	StatusRetryMax time.Duration
	// StatusLease and InboxLease bound one claim of a status context and
	// of a webhook delivery (DefaultStatusLease and DefaultInboxLease when
	// 0): a replica that dies holding a claim delays that status or
	// delivery this long. Only tests shorten them: a status lease under
	// the post timeout lets two posts of one context cross, and an inbox
	// lease under the planning timeout lets another replica plan a
	// delivery again while it is being planned (one of the two runs is
	// kept).
	StatusLease, InboxLease time.Duration
	// ForgeClient posts commit statuses (one that follows no redirects,
	// with a timeout, when nil).
	ForgeClient *http.Client

	// Analysis tunes the Failure Analyzer's loop.
	Analysis analyzer.Settings

	Metrics *telemetry.Metrics
	// Tracer records the spans of runs (tracing.go); nil is tracing off.
	Tracer trace.TracerProvider
	Log    *slog.Logger
}

// Server is the API with its background loops.
type Server struct {
	tracer   trace.Tracer
	live     liveRunners
	contacts contacts
	waits    waits
	cfg      Config
	st       *store.Store
	orch     *orchestrator.Orchestrator
	notifier *orchestrator.Notifier
	sealer   *logstream.Sealer
	analyzer *analyzer.Analyzer
	log      *slog.Logger
	metrics  *telemetry.Metrics
	mux      *http.ServeMux

	// draining is closed when Shutdown begins: long-polls return at once.
	draining  chan struct{}
	drainOnce sync.Once
	loops     sync.WaitGroup
	stopLoops context.CancelFunc
	// planning serializes planning per project, so a hung fetch holds up
	// only its own project's runs.
	planning keyedMutex
	// editMu serializes project patches on this replica.
	editMu sync.Mutex
	// authLimit limits registration and session requests per address.
	authLimit *limiter
	// sweep asks the background loop to seal ended attempts' logs now.
	sweep chan struct{}

	// runEvents wakes the streams of runs' events (events.go).
	runEvents hub
	// watches are the runs this replica streams (watches.go).
	watches runWatches
	// inboxWake wakes the inbox loop when a delivery is stored here.
	inboxWake   chan struct{}
	forgeClient *http.Client
	// badHooks paces the log lines of refused webhook signatures.
	badHooks everyMinute
}

// New returns a server; Start runs its background loops.
func New(cfg Config) *Server {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxLeaseWait <= 0 {
		cfg.MaxLeaseWait = DefaultMaxLeaseWait
	}
	if cfg.CacheLimit <= 0 {
		cfg.CacheLimit = DefaultCacheLimit
	}
	if cfg.Leader == nil {
		cfg.Leader = orchestrator.AlwaysLeader{}
	}
	if cfg.ReapInterval <= 0 {
		cfg.ReapInterval = orchestrator.DefaultReapInterval
	}
	if cfg.ContactFlush <= 0 {
		cfg.ContactFlush = DefaultContactFlush
	}
	if cfg.WaitScan <= 0 {
		cfg.WaitScan = DefaultWaitScan
	}
	if cfg.Salt == "" {
		cfg.Salt = planner.DefaultSalt
	}
	if cfg.Executor == "" {
		cfg.Executor = planner.ExecutorSandbox
	}
	if cfg.AuthRate <= 0 {
		cfg.AuthRate = DefaultAuthRate
	}
	if cfg.AuthBurst <= 0 {
		cfg.AuthBurst = DefaultAuthBurst
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.InboxPoll <= 0 {
		cfg.InboxPoll = DefaultInboxPoll
	}
	if cfg.StatusPoll <= 0 {
		cfg.StatusPoll = DefaultStatusPoll
	}
	if cfg.StatusRetryMax <= 0 {
		cfg.StatusRetryMax = DefaultStatusRetryMax
	}
	if cfg.StatusLease <= 0 {
		cfg.StatusLease = DefaultStatusLease
	}
	if cfg.InboxLease <= 0 {
		cfg.InboxLease = DefaultInboxLease
	}
	if cfg.ForgeClient == nil {
		cfg.ForgeClient = newForgeClient()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = telemetry.New(nil, nil)
	}
	n := orchestrator.NewNotifier()
	s := &Server{
		cfg: cfg, st: cfg.Store, notifier: n, log: cfg.Log, metrics: cfg.Metrics, tracer: telemetry.Tracer(cfg.Tracer),
		orch:      orchestrator.New(cfg.Store, cfg.Log, n),
		draining:  make(chan struct{}),
		authLimit: newLimiter(cfg.AuthRate, cfg.AuthBurst),
		sweep:     make(chan struct{}, 1),
		inboxWake: make(chan struct{}, 1), forgeClient: cfg.ForgeClient,
		sealer: &logstream.Sealer{
			Store: cfg.Store, Actor: "server",
			Transfer: &registry.Transfer{Data: cfg.Registry.Data, Catalog: cfg.Registry, Alg: cfg.Registry.Alg},
		},
	}
	s.analyzer = &analyzer.Analyzer{
		Store: cfg.Store, Registry: cfg.Registry, Log: cfg.Log, Settler: s.orch, Settings: cfg.Analysis,
		Backlog: func(n int, oldest time.Time) {
			s.metrics.AnalysisBacklog.Set(float64(n))
			age := 0.0
			if !oldest.IsZero() {
				age = time.Since(oldest).Seconds()
			}
			s.metrics.AnalysisOldest.Set(age)
		},
	}
	s.routes()
	return s
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Start runs the reaper, the log sweeper and the queue listener until
// Shutdown.
func (s *Server) Start(ctx context.Context) {
	ctx, s.stopLoops = context.WithCancel(context.WithoutCancel(ctx))
	if s.cfg.Wake != nil {
		s.loops.Add(1)
		go func() {
			defer s.loops.Done()
			s.cfg.Wake(ctx, s.notifier.Broadcast)
		}()
	}
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		s.background(ctx)
	}()
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		s.flushContacts(ctx)
	}()
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		s.runInbox(ctx)
	}()
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		s.runReporter(ctx)
	}()
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		s.analyzer.Run(ctx)
	}()
	if s.st.CanWatch() {
		s.runEvents.watched.Store(true)
		s.loops.Add(1)
		go func() {
			defer s.loops.Done()
			s.st.Watch(ctx, s.runEvents.publish)
		}()
		s.loops.Add(1)
		go func() {
			defer s.loops.Done()
			s.renewWatches(ctx)
		}()
	}
}

// background reaps expired leases and seals ended attempts' logs, on the
// leader only.
func (s *Server) background(ctx context.Context) {
	t := time.NewTicker(s.cfg.ReapInterval)
	defer t.Stop()
	var lastRepair, lastWaits, lastPrune time.Time // zero: at the first reap, after a restart
	for {
		reap := true
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.sweep:
			reap = false
		}
		lead, err := s.cfg.Leader.IsLeader(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "leader election", slog.Any("err", err))
			}
			continue
		}
		if !lead {
			continue
		}
		if !reap {
			s.sweepLogs(ctx)
			continue
		}
		n, err := s.orch.ReapExpired(ctx, 100)
		if n > 0 {
			s.metrics.LeaseExpirations.Add(float64(n))
			s.metrics.Attempts.WithLabelValues("lost", "runner_lost").Add(float64(n))
		}
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "reaping leases", slog.Any("err", err))
		}
		// Both read every active run, and what they repair is rare and
		// minutes old: not at every reap.
		if time.Since(lastRepair) >= repairEvery {
			lastRepair = time.Now()
			s.repairRuns(ctx)
		}
		if time.Since(lastWaits) >= s.cfg.WaitScan {
			lastWaits = time.Now()
			s.scanWaits(ctx)
		}
		if time.Since(lastPrune) >= pruneEvery {
			lastPrune = time.Now()
			if _, err := s.st.PruneForgeRows(ctx, time.Now().Add(-forgeRowsKept)); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "pruning webhook deliveries and posted statuses", slog.Any("err", err))
			}
		}
		s.sweepLogs(ctx)
	}
}

// The leader prunes, every pruneEvery, the webhook deliveries and posted
// status contexts older than forgeRowsKept.
const (
	pruneEvery    = time.Hour
	forgeRowsKept = 30 * 24 * time.Hour
)

// repairEvery is how often the leader looks for runs a stopped server
// left behind.
const repairEvery = 30 * time.Second

// repairRuns ends the runs a server stopped while planning, and advances
// those whose last completion's server stopped before advancing them.
func (s *Server) repairRuns(ctx context.Context) {
	// Planning is bounded by planTimeout; a run still not started well
	// after it lost its server midway.
	stale, err := s.orch.FailStalePlanning(ctx, 2*planTimeout)
	for _, id := range stale {
		s.log.WarnContext(ctx, "run never started: its server stopped while planning it", slog.String("run_id", id))
	}
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "ending stale runs", slog.Any("err", err))
	}
	if err := s.orch.AdvanceStalled(ctx); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "advancing runs", slog.Any("err", err))
	}
}

// sweepLogs seals the logs of ended attempts left unsealed.
func (s *Server) sweepLogs(ctx context.Context) {
	ids, err := s.st.UnsealedLogs(ctx, 50)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "listing unsealed logs", slog.Any("err", err))
		}
		return
	}
	for _, id := range ids {
		s.seal(ctx, id)
	}
}

// kickSweep has the background loop seal ended logs without waiting for
// its tick: sealing a large log must not hold up the completion's answer.
func (s *Server) kickSweep() {
	select {
	case s.sweep <- struct{}{}:
	default:
	}
}

// seal keeps an ended attempt's log in the artifact store. A failure is
// logged; the sweep tries again.
func (s *Server) seal(ctx context.Context, attemptID string) {
	a, err := s.st.Attempt(ctx, attemptID)
	if err == nil {
		sctx, span := s.sealSpan(ctx, a)
		_, err = s.sealer.Seal(sctx, a)
		telemetry.End(span, err)
	}
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "sealing log", slog.String("attempt_id", attemptID), slog.Any("err", err))
	}
}

// Drain makes every waiting and future long-poll return at once, so a
// shutting-down server does not hand out new leases.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// Stop ends the background loops and waits for them.
func (s *Server) Stop() {
	s.Drain()
	if s.stopLoops != nil {
		s.stopLoops()
	}
	s.loops.Wait()
}
