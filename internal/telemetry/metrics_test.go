package telemetry_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/telemetry"
)

func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	m := telemetry.New(
		func() map[string]float64 { return map[string]float64{"linux": 3, "": 1} },
		func() map[string]float64 { return map[string]float64{"logs": 2048} },
	)
	m.QueueWait.Observe((1500 * time.Millisecond).Seconds())
	m.Attempts.WithLabelValues("failed", "exit_code").Inc()
	m.LeaseExpirations.Inc()
	m.LogBytes.Add(4096)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{
		`deltaci_queue_depth{labels="linux"} 3`,
		`deltaci_queue_depth{labels=""} 1`,
		`deltaci_store_bytes{namespace="logs"} 2048`,
		`deltaci_queue_wait_seconds_bucket{le="2.5"} 1`,
		`deltaci_attempts_total{outcome="failed",reason="exit_code"} 1`,
		`deltaci_lease_expirations_total 1`,
		`deltaci_log_bytes_total 4096`,
		`deltaci_jobs_reused_total 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	// Two instances never collide: nothing is global.
	_ = telemetry.New(nil, nil)
}
