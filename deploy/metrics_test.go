package deploy_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// definedMetrics returns the names of the Prometheus metrics the code
// defines: the server's (internal/telemetry) and the artifact store's,
// read from their definitions (Name: fields, NewDesc and labeledGauge
// calls) in the non-test sources.
func definedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	def := regexp.MustCompile(`(?:Name:\s*|NewDesc\(|labeledGauge\()"((?:deltaci|artifactstore)_[a-z0-9_]+)"`)
	names := map[string]bool{}
	err := filepath.WalkDir(filepath.Join("..", "internal"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range def.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"deltaci_queue_depth", "deltaci_attempts_total", "artifactstore_http_requests_total"} {
		if !names[must] {
			t.Fatalf("found no definition of %s: the search for metric definitions is broken (%d found)", must, len(names))
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\b(?:deltaci|artifactstore)_[a-z0-9_]+\b`)

// queryProblems lists what is wrong with the metric names of a PromQL
// query: none at all, or one no code defines. A histogram's _bucket, _sum
// and _count series count as the histogram.
func queryProblems(query string, defined map[string]bool) []string {
	found := metricName.FindAllString(query, -1)
	if len(found) == 0 {
		return []string{"it names no Delta CI metric"}
	}
	var problems []string
	for _, n := range found {
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suffix); ok && defined[b] {
				base = b
			}
		}
		if !defined[base] {
			problems = append(problems, n+" is defined by no code")
		}
	}
	return problems
}

func checkQuery(t *testing.T, where, query string, defined map[string]bool) {
	t.Helper()
	for _, p := range queryProblems(query, defined) {
		t.Errorf("%s: query %q: %s", where, query, p)
	}
}

// TestQueryProblems: a query on a metric that does not exist, or on none
// of Delta CI's, is caught.
func TestQueryProblems(t *testing.T) {
	t.Parallel()
	defined := map[string]bool{"deltaci_plan_seconds": true}
	for q, ok := range map[string]bool{
		`histogram_quantile(0.9, sum by (le) (rate(deltaci_plan_seconds_bucket[5m])))`: true,
		`rate(deltaci_plan_seconds_count[5m])`:                                         true,
		`sum(deltaci_no_such_metric)`:                                                  false,
		`rate(deltaci_plan_seconds_total[5m])`:                                         false,
		`sum(up)`:                                                                      false,
	} {
		if got := queryProblems(q, defined); (len(got) == 0) != ok {
			t.Errorf("query %q: problems %v, want ok=%v", q, got, ok)
		}
	}
}
