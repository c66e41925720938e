package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/deltaci/deltaci/internal/core"
)

// Store applies the domain's state machines to a database. Every transition
// is written in one transaction together with its row in the events table.
type Store struct {
	drv         Driver
	now         func() time.Time
	logCapBytes int64 // LogCap when zero
}

// Option configures a Store.
type Option func(*Store)

// WithClock replaces time.Now, for tests of lease expiry.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New wraps an engine driver.
func New(drv Driver, opts ...Option) *Store {
	s := &Store{drv: drv, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Close closes the underlying driver.
func (s *Store) Close() error { return s.drv.Close() }

// Now returns the store's clock reading, truncated to the stored precision.
func (s *Store) Now() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// NewRun describes a run to create.
type NewRun struct {
	Repo        string
	Ref         string
	Commit      string
	Event       string
	Trusted     bool
	Project     string // the project's name; empty for a run of `deltaci run`, which has no projects
	TrustReason string // why the run is or is not trusted, in words
	RerunOf     string // the run this one reruns, if it is a rerun
	// Forge, when set, is where the run's commit statuses go: every move
	// of the run and its jobs then writes the Status Reporter's outbox.
	Forge *RunForge
	// Delivery, when set, is the claimed webhook delivery the run is made
	// for: it is finished, with the run's id, in the run's own
	// transaction, so a delivery makes one run however often it is
	// claimed. A lost claim (core.KindLeaseLost) makes no run.
	Delivery *Delivery
	// Base is the commit the run was planned against, "" for none: new
	// versus known failures compare with the base's results.
	Base string
	// ChangedPaths counts the paths that differ from Base, nil for not
	// known; it is kept only with a Base.
	ChangedPaths *int
	Jobs         []NewJob
}

// NewJob describes one job of a new run and what the planner decided.
type NewJob struct {
	Spec    core.JobSpec
	Explain string
	// Decision is core.JobReused or core.JobSkipped for a job that will
	// not run (applied when the run starts), core.JobFailed for a rerun's
	// job that carries its original's failure, empty otherwise.
	Decision   core.JobState
	Digest     string
	ReusedFrom string
}

// NewID returns a time-ordered UUIDv7.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// CreateRun inserts a queued run and its pending jobs, with their creation
// events, in one transaction.
func (s *Store) CreateRun(ctx context.Context, actor string, nr NewRun) (core.Run, []core.Job, error) {
	if nr.Event == "" {
		return core.Run{}, nil, core.E(core.KindInvalid, "create run", "event is required")
	}
	seen := map[string]bool{}
	for _, j := range nr.Jobs {
		if j.Spec.Name == "" || seen[j.Spec.Name] {
			return core.Run{}, nil, core.E(core.KindInvalid, "create run", "job names must be unique and non-empty (got %q)", j.Spec.Name)
		}
		if j.Decision != "" && j.Decision != core.JobReused && j.Decision != core.JobSkipped && j.Decision != core.JobFailed {
			return core.Run{}, nil, core.E(core.KindInvalid, "create run", "job %s: decision must be reused, skipped or failed, not %q", j.Spec.Name, j.Decision)
		}
		seen[j.Spec.Name] = true
	}
	now := s.Now()
	run := core.Run{
		ID: NewID(), Repo: nr.Repo, Ref: nr.Ref, Commit: nr.Commit, Event: nr.Event,
		Trusted: nr.Trusted, Project: nr.Project, TrustReason: nr.TrustReason, RerunOf: nr.RerunOf, State: core.RunQueued, CreatedAt: now,
	}
	jobs := make([]core.Job, len(nr.Jobs))
	err := s.drv.Write(ctx, func(q Queries) error {
		if err := q.InsertRun(ctx, run); err != nil {
			return err
		}
		if err := s.runSources(ctx, q, run.ID, nr); err != nil {
			return err
		}
		if nr.Base != "" {
			if err := q.InsertRunBase(ctx, run.ID, RunBase{Commit: nr.Base, ChangedPaths: changedPaths(nr.ChangedPaths)}); err != nil {
				return err
			}
		}
		if err := q.InsertEvent(ctx, event(now, actor, core.EntityRun, run.ID, run.ID, "", string(run.State), "")); err != nil {
			return err
		}
		for i, nj := range nr.Jobs {
			j := core.Job{
				ID: NewID(), RunID: run.ID, Name: nj.Spec.Name, Spec: nj.Spec,
				State: core.JobPending, Explain: nj.Explain, Decision: nj.Decision, Digest: nj.Digest,
				ReusedFrom: nj.ReusedFrom, CreatedAt: now,
			}
			if err := q.InsertJob(ctx, j, i); err != nil {
				return err
			}
			if err := q.InsertEvent(ctx, event(now, actor, core.EntityJob, j.ID, run.ID, "", string(j.State), "")); err != nil {
				return err
			}
			jobs[i] = j
		}
		return nil
	})
	if err != nil {
		return core.Run{}, nil, fmt.Errorf("create run: %w", err)
	}
	return run, jobs, nil
}

// Run returns one run.
func (s *Store) Run(ctx context.Context, id string) (core.Run, error) {
	return s.drv.Read().GetRun(ctx, id)
}

// ActiveRuns returns every run that has not ended, oldest first.
func (s *Store) ActiveRuns(ctx context.Context) ([]core.Run, error) {
	return s.drv.Read().ListActiveRuns(ctx)
}

// Jobs returns a run's jobs in pipeline order.
func (s *Store) Jobs(ctx context.Context, runID string) ([]core.Job, error) {
	return s.drv.Read().ListJobs(ctx, runID)
}

// Attempt returns one attempt.
func (s *Store) Attempt(ctx context.Context, id string) (core.Attempt, error) {
	return s.drv.Read().GetAttempt(ctx, id)
}

// Attempts returns every attempt of a run, oldest first.
func (s *Store) Attempts(ctx context.Context, runID string) ([]core.Attempt, error) {
	return s.drv.Read().ListAttempts(ctx, runID)
}

// Events returns a run's events in the order they were written.
func (s *Store) Events(ctx context.Context, runID string) ([]core.Event, error) {
	return s.drv.Read().ListRunEvents(ctx, runID)
}

// Update runs fn in one write transaction. Every move fn makes is recorded
// with actor as its author; if fn fails, nothing is written.
func (s *Store) Update(ctx context.Context, actor string, fn func(*Tx) error) error {
	return s.drv.Write(ctx, func(q Queries) error {
		return fn(&Tx{q: q, actor: actor, now: s.Now()})
	})
}

// UpdateOne is Update for an fn that makes one move in one statement that
// records its own events (Tx.MoveLeasedWithJob): the engine may commit it
// with the statement (Driver.WriteOne), so fn must not fail after it.
func (s *Store) UpdateOne(ctx context.Context, actor string, fn func(*Tx) error) error {
	return s.drv.WriteOne(ctx, func(q Queries) error {
		return fn(&Tx{q: q, actor: actor, now: s.Now()})
	})
}

// Claim describes a lease request: for one run's attempts (the embedded
// runner) or, with RunID empty, for any attempt whose labels are all among
// Labels (a remote runner).
type Claim struct {
	RunID    string
	RunnerID string
	Labels   []string
	TTL      time.Duration
}

// ClaimAttempt leases the oldest matching queued attempt and returns it
// with its job and run. It returns an error of kind core.KindNotFound when
// nothing matches. Concurrent claims never lease one attempt twice (BEGIN
// IMMEDIATE on SQLite, FOR UPDATE SKIP LOCKED on PostgreSQL).
func (s *Store) ClaimAttempt(ctx context.Context, actor string, c Claim) (Claimed, error) {
	if c.TTL <= 0 {
		return Claimed{}, core.E(core.KindInvalid, "claim attempt", "lease TTL must be positive")
	}
	now := s.Now()
	row := ClaimRow{
		RunID: c.RunID, RunnerID: c.RunnerID, LeaseToken: newToken(),
		Now: now, ExpiresAt: now.Add(c.TTL), Actor: actor,
		// "" is never an attempt label, and keeps the list non-empty.
		Labels: append([]string{""}, c.Labels...),
	}
	var leased Claimed
	if c.RunID == "" {
		// One statement, which records its event: one round trip where
		// the engine can.
		err := s.drv.WriteOne(ctx, func(q Queries) error {
			var err error
			leased, err = q.ClaimAttempt(ctx, row)
			return err
		})
		return leased, err
	}
	err := s.drv.Write(ctx, func(q Queries) error {
		a, err := q.ClaimRunAttempt(ctx, row)
		if err != nil {
			return err
		}
		if leased.Job, leased.Run, err = q.GetJobRun(ctx, a.JobID); err != nil {
			return err
		}
		leased.Attempt = a
		return q.InsertEvent(ctx, ClaimEvent(row, a))
	})
	return leased, err
}

// Heartbeat extends a lease by ttl from now. It returns an error of kind
// core.KindLeaseLost when token is no longer the attempt's current lease.
func (s *Store) Heartbeat(ctx context.Context, attemptID, token string, ttl time.Duration) (time.Time, error) {
	expires := s.Now().Add(ttl)
	var ok bool
	err := s.drv.Write(ctx, func(q Queries) error {
		var err error
		ok, err = q.ExtendLease(ctx, attemptID, token, expires)
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("heartbeat %s: %w", attemptID, err)
	}
	if !ok {
		return time.Time{}, core.E(core.KindLeaseLost, "heartbeat", "attempt %s: lease is no longer held", attemptID)
	}
	return expires, nil
}

// ExpiredLeases lists leased or running attempts whose lease ran out.
func (s *Store) ExpiredLeases(ctx context.Context, limit int) ([]core.Attempt, error) {
	return s.drv.Read().ListExpiredLeases(ctx, s.Now(), limit)
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return hex.EncodeToString(b)
}

func event(at time.Time, actor, entity, id, runID, from, to string, reason core.Reason) core.Event {
	return core.Event{At: at, Actor: actor, Entity: entity, EntityID: id, RunID: runID, From: from, To: to, Reason: reason}
}

// readier is a Driver that can tell whether it is usable.
type readier interface {
	Ready(ctx context.Context) error
}

// Ready reports whether the database answers and its schema is current.
func (s *Store) Ready(ctx context.Context) error {
	if r, ok := s.drv.(readier); ok {
		return r.Ready(ctx)
	}
	_, err := s.drv.Read().ListActiveRuns(ctx)
	return err
}

// JobStateCounts counts a run's jobs by state.
func (s *Store) JobStateCounts(ctx context.Context, runID string) (map[core.JobState]int, error) {
	return s.drv.Read().CountJobStates(ctx, runID)
}

// JobRun returns a job and its run.
func (s *Store) JobRun(ctx context.Context, jobID string) (core.Job, core.Run, error) {
	return s.drv.Read().GetJobRun(ctx, jobID)
}

// Job returns one job.
func (s *Store) Job(ctx context.Context, id string) (core.Job, error) {
	return s.drv.Read().GetJob(ctx, id)
}

// changedPaths is how a run base keeps a count that may not be known.
func changedPaths(n *int) int {
	if n == nil || *n < 0 {
		return -1
	}
	return *n
}
