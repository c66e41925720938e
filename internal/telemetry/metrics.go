// Package telemetry holds Delta CI's Prometheus metrics (DESIGN.md section
// 13) and the logger setup. Metrics live in a Registry made per process, not
// in the global default registry, so tests and embedded uses never collide.
package telemetry

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's instruments.
type Metrics struct {
	reg *prometheus.Registry

	// QueueWait observes the time from an attempt being queued to leased.
	QueueWait prometheus.Histogram
	// Attempts counts ended attempts by outcome (their final state) and reason.
	Attempts *prometheus.CounterVec
	// LeaseExpirations counts leases the reaper found expired.
	LeaseExpirations prometheus.Counter
	// JobsReused counts jobs the planner reused.
	JobsReused prometheus.Counter
	// PlanSeconds observes how long planning a run took.
	PlanSeconds prometheus.Histogram
	// LogBytes counts log bytes received from runners.
	LogBytes prometheus.Counter
	// AuthFailures counts refused credentials by endpoint (register,
	// session, api, store, webhook).
	AuthFailures *prometheus.CounterVec
	// RateLimited counts requests refused for coming too fast from one
	// address, by endpoint.
	RateLimited *prometheus.CounterVec
	// Unschedulable counts queued attempts found waiting for labels no
	// live runner has, each once.
	Unschedulable prometheus.Counter
	// HookDeliveries counts webhook deliveries by forge and result
	// (queued, duplicate, ignored, bad_signature, invalid, too_large,
	// unknown_project).
	HookDeliveries *prometheus.CounterVec
	// InboxDepth is the number of webhook deliveries waiting to be planned,
	// as the inbox loop last counted them.
	InboxDepth prometheus.Gauge
	// OutboxDepth is the number of status contexts whose state the forge
	// does not have yet, and OutboxOldest the age of the oldest change among
	// them, as the delivery loop last counted them.
	OutboxDepth  prometheus.Gauge
	OutboxOldest prometheus.Gauge
	// AnalysisBacklog is the number of ended attempts the Failure Analyzer
	// has not analyzed yet, and AnalysisOldest how long the oldest of them
	// has waited, as the analyzer last counted them.
	AnalysisBacklog prometheus.Gauge
	AnalysisOldest  prometheus.Gauge
	// StatusLatency is the time from a move to the post that shows it on
	// the forge, by forge.
	StatusLatency *prometheus.HistogramVec
	// StatusFailures counts status posts that failed, by forge and outcome
	// (retry: tried again later; refused: the forge refused for good).
	StatusFailures *prometheus.CounterVec
}

// QueueDepthFunc reports queued attempts by the labels they need (a
// comma-joined, sorted list, "" for none); it is read at scrape time.
type QueueDepthFunc func() map[string]float64

// StoreBytesFunc reports stored bytes per artifact namespace at scrape time.
type StoreBytesFunc func() map[string]float64

// New registers every metric, the Go runtime and process collectors, and
// the scrape-time gauges backed by the given functions (either may be nil).
func New(queueDepth QueueDepthFunc, storeBytes StoreBytesFunc) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		QueueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "deltaci_queue_wait_seconds", Help: "Time from an attempt being queued to a runner leasing it.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900},
		}),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deltaci_attempts_total", Help: "Ended attempts by outcome (final state) and failure reason.",
		}, []string{"outcome", "reason"}),
		LeaseExpirations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deltaci_lease_expirations_total", Help: "Leases that ran out and were reaped (runner lost).",
		}),
		JobsReused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deltaci_jobs_reused_total", Help: "Jobs whose recorded result was reused instead of running them.",
		}),
		PlanSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "deltaci_plan_seconds", Help: "Time to plan a run.", Buckets: prometheus.DefBuckets,
		}),
		LogBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deltaci_log_bytes_total", Help: "Log bytes received from runners.",
		}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deltaci_auth_failures_total", Help: "Refused credentials by endpoint (register, session, api, store, webhook).",
		}, []string{"endpoint"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deltaci_rate_limited_total", Help: "Requests refused for coming too fast from one address, by endpoint.",
		}, []string{"endpoint"}),
		Unschedulable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deltaci_unschedulable_attempts_total", Help: "Queued attempts found waiting for runner labels no live runner has, each counted once.",
		}),
		HookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deltaci_webhook_deliveries_total", Help: "Webhook deliveries by forge and result.",
		}, []string{"forge", "result"}),
		InboxDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deltaci_webhook_inbox_depth", Help: "Webhook deliveries waiting to be planned.",
		}),
		OutboxDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deltaci_status_outbox_depth", Help: "Commit status contexts whose latest state the forge does not have yet.",
		}),
		OutboxOldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deltaci_status_outbox_oldest_seconds", Help: "Age of the oldest change the forge does not show yet.",
		}),
		AnalysisBacklog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deltaci_analysis_backlog", Help: "Ended attempts the Failure Analyzer has not analyzed yet.",
		}),
		AnalysisOldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deltaci_analysis_oldest_seconds", Help: "How long the oldest ended attempt not analyzed yet has waited.",
		}),
		StatusLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "deltaci_status_delivery_seconds", Help: "Time from a run or job move to the commit status that shows it, by forge.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"forge"}),
		StatusFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deltaci_status_failures_total", Help: "Failed commit status posts by forge and outcome (retry, refused).",
		}, []string{"forge", "outcome"}),
	}
	reg.MustRegister(m.QueueWait, m.Attempts, m.LeaseExpirations, m.JobsReused, m.PlanSeconds, m.LogBytes,
		m.AuthFailures, m.RateLimited, m.Unschedulable,
		m.HookDeliveries, m.InboxDepth, m.OutboxDepth, m.OutboxOldest, m.StatusLatency, m.StatusFailures,
		m.AnalysisBacklog, m.AnalysisOldest,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if queueDepth != nil {
		reg.MustRegister(labeledGauge("deltaci_queue_depth", "Queued attempts by the runner labels they need.", "labels", queueDepth))
	}
	if storeBytes != nil {
		reg.MustRegister(labeledGauge("deltaci_store_bytes", "Bytes stored per artifact namespace.", "namespace", storeBytes))
	}
	return m
}

// Register adds collectors of the server's other parts (the artifact
// store's counters, say) to what Handler serves.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// gaugeFunc is a one-label gauge vector computed at scrape time.
type gaugeFunc struct {
	desc *prometheus.Desc
	read func() map[string]float64
}

func labeledGauge(name, help, label string, read func() map[string]float64) prometheus.Collector {
	return gaugeFunc{desc: prometheus.NewDesc(name, help, []string{label}, nil), read: read}
}

func (g gaugeFunc) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g gaugeFunc) Collect(ch chan<- prometheus.Metric) {
	for l, v := range g.read() {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v, l)
	}
}
