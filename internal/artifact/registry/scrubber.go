package registry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// DefaultScrubInterval is how often a server scrubs the whole store.
const DefaultScrubInterval = 24 * time.Hour

// scrubCheckEvery bounds how long a due scrub waits to begin.
const scrubCheckEvery = 5 * time.Minute

// ScrubState is where a scrub is.
type ScrubState string

// Scrub states.
const (
	ScrubRunning ScrubState = "running"
	ScrubDone    ScrubState = "done"
	ScrubFailed  ScrubState = "failed"
)

// ScrubStatus is a scrub run by a Scrubber: its options, the report so
// far, and how it ended.
type ScrubStatus struct {
	State    ScrubState
	Actor    string
	Options  ScrubOptions // Rate as given; Pacer and Progress unset
	Report   ScrubReport
	Finished time.Time // zero while running
	Err      error     // why it failed
}

// Scrubber runs a server's scrubs, one at a time: those asked for (Begin,
// the API's POST /scrub) and, every Interval, a scheduled scrub of every
// blob on the leader. A scheduled scrub is due when the log holds no
// scrub.completed event of a whole scrub within the last Interval, so a
// restart or a change of leader does not put it off, and a whole scrub
// run by hand counts. It keeps the running or last scrub's status for
// Status, and counts what scrubs find in its metrics (Collectors).
//
// Start and Stop are called at most once each, in that order; Begin works
// without Start. Stop ends a running scrub and waits for it.
type Scrubber struct {
	Registry *Registry
	// Interval is how often to scrub every blob; 0 schedules nothing.
	Interval time.Duration
	// Rate is the scheduled scrubs' rate (see ScrubOptions.Rate).
	Rate int64
	// Leader, when set, lets only the leader run scheduled scrubs.
	Leader eventlog.Leader
	// Actor is who the log records for scheduled scrubs; "scrub" when empty.
	Actor string
	Log   *slog.Logger

	once    sync.Once
	metrics scrubMetrics
	base    context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu      sync.Mutex
	last    *ScrubStatus
	stopped bool
}

type scrubMetrics struct {
	bytes   prometheus.Counter
	blobs   *prometheus.CounterVec
	running prometheus.Gauge
	whole   prometheus.Gauge
}

func (s *Scrubber) init() {
	s.once.Do(func() {
		s.base, s.cancel = context.WithCancel(context.Background())
		s.metrics = scrubMetrics{
			bytes: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "artifactstore_scrub_bytes_total", Help: "Stored bytes scrubs read to check them.",
			}),
			blobs: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "artifactstore_scrub_blobs_total",
				Help: "Blobs scrubs checked, by result: intact, corrupt (quarantined) or vanished (deleted before their turn).",
			}, []string{"result"}),
			running: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "artifactstore_scrub_running", Help: "1 while a scrub runs in this process.",
			}),
			whole: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "artifactstore_scrub_last_complete_timestamp_seconds",
				Help: "When this process last finished a scrub of every blob (Unix time).",
			}),
		}
		for _, r := range []string{"intact", "corrupt", "vanished"} {
			s.metrics.blobs.WithLabelValues(r)
		}
	})
}

// Collectors returns the scrub metrics, for the process's registry.
func (s *Scrubber) Collectors() []prometheus.Collector {
	s.init()
	m := s.metrics
	return []prometheus.Collector{m.bytes, m.blobs, m.running, m.whole}
}

func (s *Scrubber) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Begin starts a scrub in the background and returns its status. While
// another runs it returns core.KindConflict naming it; after Stop,
// core.KindUnavailable.
func (s *Scrubber) Begin(actor string, opts ScrubOptions) (ScrubStatus, error) {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return ScrubStatus{}, core.E(core.KindUnavailable, "scrub", "the server is stopping")
	case s.last != nil && s.last.State == ScrubRunning:
		return *s.last, core.E(core.KindConflict, "scrub", "a scrub by %s, started at %s, is running: follow it, or wait for it to end",
			s.last.Actor, eventlog.FormatTime(s.last.Report.Started))
	}
	opts.Pacer, opts.Progress = nil, nil
	st := &ScrubStatus{State: ScrubRunning, Actor: actor, Options: opts, Report: ScrubReport{Started: time.Now(), Partial: opts.Partial()}}
	s.last = st
	s.metrics.running.Set(1)
	s.wg.Add(1)
	go s.run(st, opts)
	return *st, nil
}

// run runs one scrub and records its end in st.
func (s *Scrubber) run(st *ScrubStatus, opts ScrubOptions) {
	defer s.wg.Done()
	var counted tally
	opts.Progress = func(rep ScrubReport) {
		counted = s.count(counted, rep)
		s.mu.Lock()
		st.Report = rep
		st.Report.Corrupt = append([]CorruptBlob(nil), rep.Corrupt...)
		s.mu.Unlock()
	}
	rep, err := s.Registry.Scrub(s.base, st.Actor, opts)
	s.count(counted, rep)
	if rep.Started.IsZero() {
		rep.Started = st.Report.Started // it failed before it began
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Report, st.Finished, st.State, st.Err = rep, time.Now(), ScrubDone, err
	if err != nil {
		st.State = ScrubFailed
		s.log().WarnContext(s.base, "scrub failed", slog.String("actor", st.Actor), slog.Int("blobs", rep.Blobs), slog.Any("err", err))
	} else if !rep.Partial {
		s.metrics.whole.Set(float64(st.Finished.Unix()))
	}
	s.metrics.running.Set(0)
}

// tally is what the metrics have counted of a scrub so far.
type tally struct {
	blobs, corrupt, vanished int
	bytes                    int64
}

// count adds to the metrics what rep holds beyond what was counted, and
// returns the new tally.
func (s *Scrubber) count(counted tally, rep ScrubReport) tally {
	now := tally{blobs: rep.Blobs, corrupt: len(rep.Corrupt), vanished: rep.Vanished, bytes: rep.Bytes}
	m := s.metrics
	m.bytes.Add(float64(now.bytes - counted.bytes))
	m.blobs.WithLabelValues("corrupt").Add(float64(now.corrupt - counted.corrupt))
	m.blobs.WithLabelValues("intact").Add(float64((now.blobs - now.corrupt) - (counted.blobs - counted.corrupt)))
	m.blobs.WithLabelValues("vanished").Add(float64(now.vanished - counted.vanished))
	return now
}

// Status returns the running or the last scrub; core.KindNotFound when
// none ran since the process started.
func (s *Scrubber) Status() (ScrubStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return ScrubStatus{}, core.E(core.KindNotFound, "scrub", "no scrub has run on this server since it started")
	}
	st := *s.last
	st.Report.Corrupt = append([]CorruptBlob(nil), st.Report.Corrupt...)
	return st, nil
}

// Start runs the schedule until Stop, when Interval is positive: it
// checks whether a scrub is due every Interval or five minutes, whichever
// is shorter, the first time that long after Start.
func (s *Scrubber) Start(ctx context.Context) {
	s.init()
	if s.Interval <= 0 {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// Not at once: a deploy restarts servers, and has enough to do.
		t := time.NewTicker(min(s.Interval, scrubCheckEvery))
		defer t.Stop()
		for {
			select {
			case <-s.base.Done():
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			s.due(s.base)
		}
	}()
}

// due begins a scheduled scrub if this process leads and none of every
// blob ended within the last Interval.
func (s *Scrubber) due(ctx context.Context) {
	log := s.log()
	if s.Leader != nil {
		lead, err := s.Leader.IsLeader(ctx)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "leader election for scrubs", slog.Any("err", err))
		}
		if !lead {
			return
		}
	}
	_, ok, err := s.Registry.Meta.LastScrub(ctx, s.Registry.Meta.Now().Add(-s.Interval))
	if err != nil || ok {
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "reading when the store was last scrubbed", slog.Any("err", err))
		}
		return
	}
	actor := s.Actor
	if actor == "" {
		actor = "scrub"
	}
	if _, err := s.Begin(actor, ScrubOptions{Rate: s.Rate}); err == nil {
		log.InfoContext(ctx, "scheduled scrub started", slog.Duration("interval", s.Interval), slog.Int64("rate", s.Rate))
	}
}

// Stop ends the schedule and a running scrub, and waits for both.
func (s *Scrubber) Stop() {
	if s == nil {
		return
	}
	s.init()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}
