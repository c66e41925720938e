package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// Runner is a registered runner. CredentialHash is the stored form of its
// credential (auth.HashCredential); the credential itself is never kept.
type Runner struct {
	ID              string
	Name            string
	Labels          []string
	CredentialHash  string
	ProtocolVersion int
	CreatedAt       time.Time
	// LastSeenAt is the runner's last contact: its registration, a session,
	// or (as the server records it, at most every so often) any request
	// made with its tokens.
	LastSeenAt time.Time
}

// RunnerRow is an engine-neutral runner row; Labels is a JSON array.
type RunnerRow struct {
	ID, Name, Labels, CredentialHash string
	ProtocolVersion                  int
	CreatedAt, LastSeenAt            int64
}

// RunnerToRow encodes a runner for storage.
func RunnerToRow(r Runner) (RunnerRow, error) {
	labels := r.Labels
	if labels == nil {
		labels = []string{}
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return RunnerRow{}, core.Wrap(core.KindInternal, "encode runner labels", err)
	}
	return RunnerRow{
		ID: r.ID, Name: r.Name, Labels: string(b), CredentialHash: r.CredentialHash,
		ProtocolVersion: r.ProtocolVersion, CreatedAt: Millis(r.CreatedAt), LastSeenAt: Millis(r.LastSeenAt),
	}, nil
}

// RunnerFromRow decodes a stored runner.
func RunnerFromRow(r RunnerRow) (Runner, error) {
	var labels []string
	if err := json.Unmarshal([]byte(r.Labels), &labels); err != nil {
		return Runner{}, core.Wrap(core.KindInternal, "decode runner labels of "+r.ID, err)
	}
	return Runner{
		ID: r.ID, Name: r.Name, Labels: labels, CredentialHash: r.CredentialHash,
		ProtocolVersion: r.ProtocolVersion, CreatedAt: FromMillis(r.CreatedAt), LastSeenAt: FromMillis(r.LastSeenAt),
	}, nil
}

// RegisterRunner records a new runner; its ID and times are set here.
func (s *Store) RegisterRunner(ctx context.Context, r Runner) (Runner, error) {
	r.ID = NewID()
	r.CreatedAt, r.LastSeenAt = s.Now(), s.Now()
	err := s.drv.Write(ctx, func(q Queries) error { return q.InsertRunner(ctx, r) })
	if err != nil {
		return Runner{}, fmt.Errorf("register runner: %w", err)
	}
	return r, nil
}

// Runner returns one registered runner, or a core.KindNotFound error.
func (s *Store) Runner(ctx context.Context, id string) (Runner, error) {
	return s.drv.Read().GetRunner(ctx, id)
}

// Runners returns every registered runner, oldest first.
func (s *Store) Runners(ctx context.Context) ([]Runner, error) {
	return s.drv.Read().ListRunners(ctx)
}

// RemoveRunner forgets a registered runner, so that its credential no
// longer buys sessions. An unknown id is a core.KindNotFound error.
func (s *Store) RemoveRunner(ctx context.Context, id string) error {
	var ok bool
	err := s.drv.Write(ctx, func(q Queries) error {
		var err error
		ok, err = q.DeleteRunner(ctx, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove runner %s: %w", id, err)
	}
	if !ok {
		return core.E(core.KindNotFound, "remove runner", "no runner %s", id)
	}
	return nil
}

// TouchRunner records that the runner was seen now.
func (s *Store) TouchRunner(ctx context.Context, id string) error {
	return s.drv.Write(ctx, func(q Queries) error { return q.TouchRunner(ctx, id, s.Now()) })
}

// UnsealedLogs lists up to limit ended attempts whose log has chunks that
// were not sealed yet: a server that died between an attempt's end and the
// seal leaves them for the next sweep.
func (s *Store) UnsealedLogs(ctx context.Context, limit int) ([]string, error) {
	return s.drv.Read().ListUnsealedLogs(ctx, limit)
}

// QueueDepth counts queued attempts by the labels they need, as a sorted,
// comma-joined list ("" for none).
func (s *Store) QueueDepth(ctx context.Context) (map[string]float64, error) {
	rows, err := s.drv.Read().QueueDepth(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for encoded, n := range rows {
		var labels []string
		if err := json.Unmarshal([]byte(encoded), &labels); err != nil {
			return nil, core.Wrap(core.KindInternal, "decode queue labels", err)
		}
		sort.Strings(labels)
		out[strings.Join(labels, ",")] += float64(n)
	}
	return out, nil
}

// HeldAttempt is an attempt that a runner holds: leased or running.
// LeaseExpiresAt moves with each heartbeat.
type HeldAttempt struct {
	ID, RunID, RunnerID, Job string
	State                    core.AttemptState
	LeasedAt, LeaseExpiresAt time.Time
}

// maxHeldAttempts bounds one listing of the held attempts.
const maxHeldAttempts = 10000

// SeeRunners records, in one transaction, when each runner was last in
// touch (never moving a time back). Runners no longer registered are
// passed over.
func (s *Store) SeeRunners(ctx context.Context, seen map[string]time.Time) error {
	err := s.drv.Write(ctx, func(q Queries) error {
		for id, at := range seen {
			if _, err := q.SeeRunner(ctx, id, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record the contacts of %d runners: %w", len(seen), err)
	}
	return nil
}

// HeldAttempts returns, by runner id, the attempts runners hold (leased or
// running), oldest lease first; at most 10000 in all.
func (s *Store) HeldAttempts(ctx context.Context) (map[string][]HeldAttempt, error) {
	list, err := s.drv.Read().ListHeldAttempts(ctx, maxHeldAttempts)
	if err != nil {
		return nil, err
	}
	out := map[string][]HeldAttempt{}
	for _, a := range list {
		out[a.RunnerID] = append(out[a.RunnerID], a)
	}
	return out, nil
}
