package api

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// runnerSnapshotFor is how long one read of the runners serves: a run
// followed by several clients asks often, and the list changes rarely.
const runnerSnapshotFor = time.Second

// Bounds of a waiting reason: the runners it names, and its length.
const (
	waitListRunners = 5
	waitMaxLen      = 480
)

// waits holds the live-runner snapshot and what was already reported, so
// that each waiting run is logged once and each attempt counted once.
type waits struct {
	mu      sync.Mutex
	at      time.Time
	runners []store.Runner
	logged  map[string]bool // run id + job name
	counted map[string]bool // attempt id
}

// runnersNow returns the registered runners, read at most once per
// runnerSnapshotFor.
func (s *Server) runnersNow(ctx context.Context, now time.Time) ([]store.Runner, error) {
	w := &s.waits
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.at.IsZero() && now.Sub(w.at) < runnerSnapshotFor && now.After(w.at) {
		return w.runners, nil
	}
	rs, err := s.st.Runners(ctx)
	if err != nil {
		return nil, err
	}
	w.runners, w.at = rs, now
	return rs, nil
}

// forgetRunners drops the snapshot, so that the next waiting reason reads
// the runners again: one registered, opening a session or removed on this
// replica is seen at once.
func (s *Server) forgetRunners() {
	s.waits.mu.Lock()
	s.waits.at = time.Time{}
	s.waits.mu.Unlock()
}

// Waiting returns, by job name, why a queued attempt of the run's jobs
// cannot be leased: no live runner has every label it needs. A job that a
// live runner could take (busy or not) is absent, so the map is empty
// when nothing waits for a runner that is not there. The first time a job
// of a run is found so, it is logged, and each such attempt is counted in
// deltaci_unschedulable_attempts_total once.
func (s *Server) Waiting(ctx context.Context, run core.Run, jobs []core.Job, attempts []core.Attempt) (map[string]string, error) {
	out := map[string]string{}
	var queued []core.Attempt
	for _, a := range attempts {
		if a.State == core.AttemptQueued {
			queued = append(queued, a)
		}
	}
	if len(queued) == 0 {
		return out, nil
	}
	now := time.Now()
	all, err := s.runnersNow(ctx, now)
	if err != nil {
		return nil, err
	}
	// Live as runners ls shows them: in touch within runnerSilence.
	live := make([]store.Runner, 0, len(all))
	for _, r := range all {
		if s.runnerOnline(r.LastSeenAt, now) {
			live = append(live, r)
		}
	}
	names := map[string]string{}
	for _, j := range jobs {
		names[j.ID] = j.Name
	}
	for _, a := range queued {
		name, ok := names[a.JobID]
		if !ok {
			continue
		}
		why := waitReason(a.Labels, live, s.runnerSilence())
		if why == "" {
			continue
		}
		out[name] = why
		s.reportWait(ctx, run.ID, name, a.ID, why)
	}
	return out, nil
}

// DefaultWaitScan is how often the leader looks for queued attempts that
// no live runner can take, so that a wait is logged and counted even when
// nobody reads the run: a job queued once its needs ended, a runner that
// died.
const DefaultWaitScan = 15 * time.Second

// scanWaits reports the waits of every active run (Waiting).
func (s *Server) scanWaits(ctx context.Context) {
	runs, err := s.st.ActiveRuns(ctx)
	for _, run := range runs {
		if err != nil || ctx.Err() != nil {
			break
		}
		var attempts []core.Attempt
		if attempts, err = s.st.Attempts(ctx, run.ID); err != nil {
			break
		}
		if !slices.ContainsFunc(attempts, func(a core.Attempt) bool { return a.State == core.AttemptQueued }) {
			continue
		}
		var jobs []core.Job
		if jobs, err = s.st.Jobs(ctx, run.ID); err == nil {
			_, err = s.Waiting(ctx, run, jobs, attempts)
		}
	}
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "looking for jobs that wait for a runner", slog.Any("err", err))
	}
}

// reportWait logs a run's waiting job once and counts its attempt once.
func (s *Server) reportWait(ctx context.Context, runID, job, attemptID, why string) {
	w := &s.waits
	w.mu.Lock()
	// Bounded memory: past the cap the sets start again, at worst logging
	// or counting a long-waiting attempt a second time.
	if w.logged == nil || len(w.logged) >= 4096 {
		w.logged = map[string]bool{}
	}
	if w.counted == nil || len(w.counted) >= 4096 {
		w.counted = map[string]bool{}
	}
	key := runID + "\x00" + job
	log := !w.logged[key]
	count := !w.counted[attemptID]
	w.logged[key], w.counted[attemptID] = true, true
	w.mu.Unlock()
	if count {
		s.metrics.Unschedulable.Inc()
	}
	if log {
		s.log.WarnContext(ctx, "job waits for a runner", slog.String("run_id", runID), slog.String("job", job),
			slog.String("attempt_id", attemptID), slog.String("reason", why))
	}
}

// waitReason says why no live runner (in touch within silence) can take
// an attempt that needs the labels, or "" when one can.
func waitReason(labels []string, live []store.Runner, silence time.Duration) string {
	for _, r := range live {
		if hasAll(r.Labels, labels) {
			return ""
		}
	}
	need := slices.Clone(labels)
	sort.Strings(need)
	var b strings.Builder
	if len(live) == 0 {
		fmt.Fprintf(&b, "no live runner: none was in touch in the last %s; the job needs one with %s",
			silence, orNone(need))
		return bounded(b.String())
	}
	var missing []string
	for _, l := range need {
		held := false
		for _, r := range live {
			if slices.Contains(r.Labels, l) {
				held = true
				break
			}
		}
		if !held {
			missing = append(missing, l)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, "no live runner has %s", strings.Join(missing, ", "))
	} else {
		fmt.Fprintf(&b, "no live runner has all of %s", strings.Join(need, ", "))
	}
	b.WriteString("; live runners: ")
	for i, r := range live {
		if i == waitListRunners {
			fmt.Fprintf(&b, " and %d more", len(live)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		rl := slices.Clone(r.Labels)
		sort.Strings(rl)
		fmt.Fprintf(&b, "%s [%s]", r.Name, strings.Join(rl, " "))
	}
	return bounded(b.String())
}

func hasAll(have, need []string) bool {
	for _, l := range need {
		if !slices.Contains(have, l) {
			return false
		}
	}
	return true
}

func orNone(labels []string) string {
	if len(labels) == 0 {
		return "no labels"
	}
	return strings.Join(labels, ", ")
}

// bounded cuts a reason to waitMaxLen bytes, at a rune boundary.
func bounded(s string) string {
	if len(s) <= waitMaxLen {
		return s
	}
	cut := waitMaxLen - len("...")
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "..."
}

// neverRegistered lists the labels of the run's jobs that no registered
// runner has ever had (live or not), as warnings for the run's creator.
func (s *Server) neverRegistered(ctx context.Context, jobs []core.Job) ([]string, error) {
	all, err := s.st.Runners(ctx) // fresh: a runner may have just registered
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, r := range all {
		for _, l := range r.Labels {
			have[l] = true
		}
	}
	var out []string
	for _, j := range jobs {
		if j.Decision != "" {
			continue // reused or skipped: it needs no runner
		}
		var missing []string
		for _, l := range j.Spec.RunsOn {
			if !have[l] {
				missing = append(missing, l)
			}
		}
		if len(missing) > 0 {
			out = append(out, bounded(fmt.Sprintf("job %s needs a runner with %s, and no registered runner has %s",
				j.Name, strings.Join(j.Spec.RunsOn, ", "), strings.Join(missing, ", "))))
		}
	}
	return out, nil
}

// creationWarnings are the warnings of a run's creation: see
// neverRegistered.
func (s *Server) creationWarnings(ctx context.Context, runID string) ([]string, error) {
	jobs, err := s.st.Jobs(ctx, runID)
	if err != nil {
		return nil, err
	}
	return s.neverRegistered(ctx, jobs)
}
