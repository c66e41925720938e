package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
)

// Metrics are a standalone store's Prometheus instruments, served at
// /metrics: requests by route and status, body bytes in and out, refused
// credentials, and what the store itself counts (the bytes per namespace
// and the length of the event log), read at scrape time. They live in a
// registry of their own, never the global one. A nil *Metrics counts
// nothing.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	bytesIn   *prometheus.CounterVec
	bytesOut  *prometheus.CounterVec
	aborted   *prometheus.CounterVec
	authFails *prometheus.CounterVec
}

// unroutedLabel is the route label of requests no route matched, so that
// probing paths cannot grow the label set.
const unroutedLabel = "unrouted"

// scrapeTimeout bounds the database reads of one scrape.
const scrapeTimeout = 5 * time.Second

// NewMetrics registers the API's metrics, the Go runtime and process
// collectors, and gauges read from meta at scrape time (meta may be nil).
func NewMetrics(meta *eventlog.Store) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artifactstore_http_requests_total", Help: "HTTP requests by route (its pattern) and status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "artifactstore_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 10, 30, 120},
		}, []string{"route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artifactstore_http_request_bytes_total", Help: "Request body bytes read, by route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artifactstore_http_response_bytes_total", Help: "Response body bytes written, by route.",
		}, []string{"route"}),
		aborted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artifactstore_http_aborted_responses_total",
			Help: "Responses cut off mid-body because of a failure after the status was sent, by route.",
		}, []string{"route"}),
		authFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artifactstore_auth_failures_total",
			Help: "Refused requests: unauthorized (no, unknown or revoked token) and forbidden (scopes too narrow).",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.aborted, m.authFails,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if meta != nil {
		reg.MustRegister(storeCollector{meta: meta,
			bytes: prometheus.NewDesc("artifactstore_store_bytes", "Bytes of the blobs the refs of each namespace reach.", []string{"namespace"}, nil),
			head:  prometheus.NewDesc("artifactstore_events", "Events in the log: the sequence number of its head.", nil, nil),
		})
	}
	return m
}

// Register adds collectors of the store's other parts (the blob store's
// counters, say) to what /metrics serves.
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

// observe counts one answered request.
func (m *Metrics) observe(pattern string, tw *trackingWriter, in int64, took time.Duration) {
	route := pattern
	if route == "" {
		route = unroutedLabel
	}
	status := tw.status
	if status == 0 {
		// Nothing written: net/http answers 200 with an empty body.
		status = http.StatusOK
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(took.Seconds())
	m.bytesIn.WithLabelValues(route).Add(float64(in))
	m.bytesOut.WithLabelValues(route).Add(float64(tw.n))
	if tw.aborted {
		m.aborted.WithLabelValues(route).Inc()
	}
}

// authFailed counts a refused request.
func (m *Metrics) authFailed(reason string) {
	if m != nil {
		m.authFails.WithLabelValues(reason).Inc()
	}
}

// storeCollector reads the store's own figures at scrape time.
type storeCollector struct {
	meta        *eventlog.Store
	bytes, head *prometheus.Desc
}

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.bytes; ch <- c.head }

// Collect reports what the database answers within scrapeTimeout, and
// leaves out what it does not: a missing series says more than a zero.
func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if byNS, err := c.meta.NamespaceBytes(ctx); err == nil {
		for ns, n := range byNS {
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(n), ns)
		}
	}
	if h, err := c.meta.Head(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.head, prometheus.GaugeValue, float64(h.Seq))
	}
}
