package store

import (
	"context"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// The states of a webhook delivery in the inbox.
const (
	// DeliveryPending is waiting to be planned (or planned again, after a
	// failure that may pass).
	DeliveryPending = "pending"
	// DeliveryDone made its run (RunID), or decided to make none (Message).
	DeliveryDone = "done"
	// DeliveryFailed could not be planned; Message says why.
	DeliveryFailed = "failed"
)

// Delivery is a webhook delivery in the inbox.
type Delivery struct {
	ID       string
	Project  string
	Forge    string
	Delivery string // the forge's delivery id, unique per project
	// Event is the delivery as the server read it (forge.Event in JSON).
	Event   string
	State   string
	RunID   string
	Message string
	Tries   int
	NextAt  time.Time
	// Claim is the current claim's token, which fences every write of its
	// holder; LeaseUntil is when the claim lapses, unless renewed.
	Claim      string
	LeaseUntil time.Time
	ReceivedAt time.Time
	DoneAt     time.Time
}

// RunForge says where a run's commit statuses go: the forge and
// repository, the commit, and the name of the secret holding the token.
type RunForge struct {
	Kind, APIURL, Repo, Commit, TokenSecret string
}

// StatusRow is one status context of a run in the Status Reporter's
// outbox. JobID is "" for the run's own context.
type StatusRow struct {
	RunID, JobID string
	// Version counts the moves of the run or job; Posted is the version
	// the forge last got the state of.
	Version, Posted int64
	// PostedState is what was last posted ("state description"), so that
	// a move that changes nothing the forge shows posts nothing.
	PostedState string
	ChangedAt   time.Time
	Tries       int
	NextAt      time.Time
	// Claim and LeaseUntil are as for Delivery.
	Claim      string
	LeaseUntil time.Time
	LastError  string
}

// AddDelivery stores a verified webhook delivery in the inbox, pending. It
// reports false, storing nothing, when the project already has a delivery
// with that id (a replay).
func (s *Store) AddDelivery(ctx context.Context, d Delivery) (Delivery, bool, error) {
	if d.Project == "" || d.Forge == "" || d.Delivery == "" || d.Event == "" {
		return Delivery{}, false, core.E(core.KindInvalid, "add delivery", "project, forge, delivery id and event are required")
	}
	d.ID = NewID()
	d.State = DeliveryPending
	d.ReceivedAt = s.Now()
	d.NextAt = d.ReceivedAt
	var added bool
	err := s.drv.Write(ctx, func(q Queries) error {
		var err error
		added, err = q.InsertDelivery(ctx, d)
		return err
	})
	return d, added, err
}

// ClaimDelivery leases the oldest due delivery for lease, one project's
// deliveries in the order they came. It returns a core.KindNotFound error
// when none is due.
func (s *Store) ClaimDelivery(ctx context.Context, lease time.Duration) (Delivery, error) {
	now := s.Now()
	var d Delivery
	err := s.drv.Write(ctx, func(q Queries) error {
		var err error
		d, err = q.ClaimDelivery(ctx, now, now.Add(lease), newToken())
		return err
	})
	return d, err
}

// RenewDelivery extends a claimed delivery's lease to lease from now and
// returns the delivery with its new LeaseUntil. It returns a
// core.KindLeaseLost error when the claim has passed to another.
func (s *Store) RenewDelivery(ctx context.Context, d Delivery, lease time.Duration) (Delivery, error) {
	d.LeaseUntil = s.Now().Add(lease)
	err := s.fenced(ctx, "renew delivery "+d.ID, func(q Queries) (bool, error) { return q.RenewDelivery(ctx, d) })
	return d, err
}

// FinishDelivery ends a claimed delivery in state (DeliveryDone or
// DeliveryFailed) with its run or a message. It returns a
// core.KindLeaseLost error when the claim's lease has passed to another.
func (s *Store) FinishDelivery(ctx context.Context, d Delivery, state, runID, message string) error {
	if state != DeliveryDone && state != DeliveryFailed {
		return core.E(core.KindInvalid, "finish delivery", "state must be done or failed, not %q", state)
	}
	d.State, d.RunID, d.Message, d.DoneAt = state, runID, clip(message, MaxRunMessage), s.Now()
	return s.fenced(ctx, "finish delivery "+d.ID, func(q Queries) (bool, error) { return q.FinishDelivery(ctx, d) })
}

// RetryDelivery hands a claimed delivery back, to be tried again after
// wait, with message saying what failed.
func (s *Store) RetryDelivery(ctx context.Context, d Delivery, wait time.Duration, message string) error {
	d.NextAt, d.Message = s.Now().Add(wait), clip(message, MaxRunMessage)
	return s.fenced(ctx, "retry delivery "+d.ID, func(q Queries) (bool, error) { return q.RetryDelivery(ctx, d) })
}

// Deliveries returns a project's latest deliveries, newest first.
func (s *Store) Deliveries(ctx context.Context, project string, limit int) ([]Delivery, error) {
	return s.drv.Read().ListDeliveries(ctx, project, limit)
}

// InboxDepth counts the deliveries waiting to be planned.
func (s *Store) InboxDepth(ctx context.Context) (int, error) {
	return s.drv.Read().CountPendingDeliveries(ctx)
}

// RunForge returns where a run's statuses go, or a core.KindNotFound
// error for a run that reports to no forge.
func (s *Store) RunForge(ctx context.Context, runID string) (RunForge, error) {
	return s.drv.Read().GetRunForge(ctx, runID)
}

// ClaimStatuses leases up to limit status contexts whose state the forge
// does not have yet, oldest change first.
func (s *Store) ClaimStatuses(ctx context.Context, limit int, lease time.Duration) ([]StatusRow, error) {
	now := s.Now()
	var rows []StatusRow
	err := s.drv.Write(ctx, func(q Queries) error {
		var err error
		rows, err = q.ClaimStatuses(ctx, now, now.Add(lease), newToken(), limit)
		return err
	})
	return rows, err
}

// FinishStatus records that the forge has the state of r's context as of
// r.Version (posted, described by posted), or, with lastErr, that it was
// refused for good. Posted versions never go back. It returns a
// core.KindLeaseLost error when the claim's lease has passed to another.
func (s *Store) FinishStatus(ctx context.Context, r StatusRow, posted, lastErr string) error {
	r.PostedState, r.LastError = posted, clip(lastErr, 1024)
	return s.fenced(ctx, "finish status", func(q Queries) (bool, error) { return q.FinishStatus(ctx, r) })
}

// RetryStatus hands a claimed status context back, to be posted again
// after wait.
func (s *Store) RetryStatus(ctx context.Context, r StatusRow, wait time.Duration, lastErr string) error {
	r.NextAt, r.LastError = s.Now().Add(wait), clip(lastErr, 1024)
	return s.fenced(ctx, "retry status", func(q Queries) (bool, error) { return q.RetryStatus(ctx, r) })
}

// RunStatuses returns the outbox rows of a run, the run's own first.
func (s *Store) RunStatuses(ctx context.Context, runID string) ([]StatusRow, error) {
	return s.drv.Read().ListRunStatuses(ctx, runID)
}

// StatusBacklog counts the status contexts the forge does not have the
// state of yet, and says when the oldest of them changed (zero for none).
func (s *Store) StatusBacklog(ctx context.Context) (int, time.Time, error) {
	return s.drv.Read().StatusBacklog(ctx)
}

// PruneForgeRows deletes finished deliveries received before before, and
// status contexts last changed before it, posted or not.
func (s *Store) PruneForgeRows(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.drv.Write(ctx, func(q Queries) error {
		a, err := q.PruneDeliveries(ctx, before)
		if err != nil {
			return err
		}
		b, err := q.PruneStatuses(ctx, before)
		n = a + b
		return err
	})
	return n, err
}

// fenced runs a write that matches its row by a claim's lease, and turns
// "no row matched" into a core.KindLeaseLost error.
func (s *Store) fenced(ctx context.Context, op string, fn func(Queries) (bool, error)) error {
	var ok bool
	err := s.drv.Write(ctx, func(q Queries) error {
		var err error
		ok, err = fn(q)
		return err
	})
	if err != nil {
		return err
	}
	if !ok {
		return core.E(core.KindLeaseLost, op, "the claim's lease has passed; another replica has it")
	}
	return nil
}

// runSources records, in a new run's transaction and before its first
// event, where its statuses go (so that the outbox sees every move) and
// that its webhook delivery is done.
func (s *Store) runSources(ctx context.Context, q Queries, runID string, nr NewRun) error {
	if f := nr.Forge; f != nil {
		if f.Kind == "" || f.APIURL == "" || f.Repo == "" || f.Commit == "" {
			return core.E(core.KindInvalid, "create run", "a run's forge needs its kind, API URL, repository and commit")
		}
		if err := q.InsertRunForge(ctx, runID, *f); err != nil {
			return err
		}
	}
	if nr.Delivery == nil {
		return nil
	}
	d := *nr.Delivery
	d.State, d.RunID, d.Message, d.DoneAt = DeliveryDone, runID, "", s.Now()
	ok, err := q.FinishDelivery(ctx, d)
	if err != nil {
		return err
	}
	if !ok {
		return core.E(core.KindLeaseLost, "create run", "delivery %s: the claim's lease has passed; another replica has it", d.Delivery)
	}
	return nil
}
