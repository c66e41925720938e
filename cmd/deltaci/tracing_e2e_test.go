package main_test

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/deltaci/deltaci/internal/core"
)

// gotSpan is one span an OTLP collector received, with the service that
// sent it.
type gotSpan struct {
	service          string
	name             string
	trace, id, under string // hex; under is the parent's id, "" for a root
	attrs            map[string]string
	status           string
	start, end       time.Time
	// job is the job of the attempt the span is of, from its own
	// attributes or its parent's (runSpans).
	job string
}

// otlpCollector is an OTLP/HTTP trace collector in the test's process: it
// decodes each ExportTraceServiceRequest (protobuf) and keeps its spans.
type otlpCollector struct {
	url   string
	mu    sync.Mutex
	spans []gotSpan
	bad   []string // requests it could not decode
}

func newOTLPCollector(t *testing.T) *otlpCollector {
	t.Helper()
	c := &otlpCollector{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil || r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			c.mu.Lock()
			c.bad = append(c.bad, fmt.Sprintf("%s %s (%s): %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err))
			c.mu.Unlock()
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			service := attrMap(rs.GetResource().GetAttributes())["service.name"]
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					c.spans = append(c.spans, gotSpan{
						service: service, name: s.Name, trace: hex.EncodeToString(s.TraceId), id: hex.EncodeToString(s.SpanId),
						under: hex.EncodeToString(s.ParentSpanId), attrs: attrMap(s.Attributes), status: s.GetStatus().GetMessage(),
						start: time.Unix(0, int64(s.StartTimeUnixNano)), end: time.Unix(0, int64(s.EndTimeUnixNano)),
					})
				}
			}
		}
		c.mu.Unlock()
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	}))
	t.Cleanup(hs.Close)
	c.url = hs.URL
	return c
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.Key] = strconv.FormatInt(v.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			m[kv.Key] = strconv.FormatBool(v.BoolValue)
		default:
			m[kv.Key] = fmt.Sprint(kv.GetValue())
		}
	}
	return m
}

// received returns a copy of the spans received so far.
func (c *otlpCollector) received() ([]gotSpan, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.spans), slices.Clone(c.bad)
}

// env is what a process needs to send its spans to c: quickly, so the
// test does not wait on the default five-second batches.
func (c *otlpCollector) env() []string {
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + c.url, "OTEL_BSP_SCHEDULE_DELAY=100"}
}

// stop sends SIGTERM to the process and waits for it to exit, as an
// operator stopping it would.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(waitLong):
		t.Fatalf("%s (pid %d) did not exit after SIGTERM", p.name, p.cmd.Process.Pid)
	}
}

// TestTraceOfTwoJobRun follows a two-job run through its trace: the
// server's spans (trigger, planning, each job's queue wait and lease, log
// sealing) and the runner's (checkout, execution, output upload), in one
// trace with each span under its parent, sent over OTLP/HTTP by both
// processes. The server restarts between making the run and leasing its
// jobs, so the leases parent their spans on the run's stored trace
// context. No span carries the job's secret or its log.
func TestTraceOfTwoJobRun(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, func(t *testing.T, database string) {
		const secret, logLine = "trace-secret-value-8d1f", "log-line-only-in-the-log-5c2e"
		col := newOTLPCollector(t)
		srv := startServer(t, serverOpts{database: database, env: append(col.env(), "DELTACI_SECRET_TOKEN="+secret)})
		dir := repo(t, map[string]string{".deltaci.yml": `version: 1
jobs:
  build:
    secrets: [TOKEN]
    run: mkdir -p out && echo "$TOKEN" > out/value && echo ` + logLine + `
    outputs: ["out/**"]
  test:
    needs: [build]
    run: cat out/value >/dev/null && echo tested
`})
		srv.project(t, dir, "--secrets", "TOKEN")
		run := srv.createRun(t, dir, "main")

		// Another server process leases the jobs.
		srv.proc.stop(t)
		srv.restart(t)
		r := srv.startRunner(t, runnerOpts{proc: procOpts{env: col.env()}})
		ended := srv.waitRunEnds(t, run.ID)
		if ended.State != string(core.RunSucceeded) || !ended.Trusted {
			t.Fatalf("run %s (trusted %v)", describeRun(&ended), ended.Trusted)
		}
		attempts := map[string]string{} // job name by attempt id
		for _, j := range ended.Jobs {
			for _, a := range j.Attempts {
				attempts[a.ID] = j.Name
			}
		}
		// Stopping flushes what each process still holds.
		r.proc.stop(t)
		srv.proc.stop(t)

		want := []string{
			"deltaci-server deltaci.run.trigger", "deltaci-server deltaci.plan", "deltaci-server deltaci.plan.fetch",
			"deltaci-server deltaci.plan.diff", "deltaci-server deltaci.plan.digests",
		}
		for _, job := range []string{"build", "test"} {
			for _, n := range []string{"job.queue_wait", "job.lease", "log.seal"} {
				want = append(want, "deltaci-server deltaci."+n+" "+job)
			}
			for _, n := range []string{"attempt", "checkout", "execute", "log_flush", "complete"} {
				want = append(want, "deltaci-runner deltaci.runner."+n+" "+job)
			}
		}
		want = append(want, "deltaci-runner deltaci.runner.upload_outputs build", "deltaci-runner deltaci.runner.restore_needs test")
		sort.Strings(want)

		var spans []gotSpan
		var root gotSpan
		deadline := time.Now().Add(waitLong)
		for {
			got, bad := col.received()
			if len(bad) > 0 {
				t.Fatalf("the collector got requests it could not decode: %q", bad)
			}
			spans, root = runSpans(got, run.ID, attempts)
			if missing := missingSpans(spans, want); len(missing) == 0 {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("after %s the collector still misses %q; it has:\n%s", waitLong, missing, describeSpans(got))
			}
			time.Sleep(50 * time.Millisecond)
		}

		byID := map[string]gotSpan{}
		for _, s := range spans {
			byID[s.id] = s
		}
		parent := func(s gotSpan) gotSpan { return byID[s.under] }
		leases := map[string]gotSpan{} // by attempt id
		attemptSpans := map[string]gotSpan{}
		for _, s := range spans {
			switch s.name {
			case "deltaci.job.lease":
				leases[s.attrs["deltaci.attempt.id"]] = s
			case "deltaci.runner.attempt":
				attemptSpans[s.attrs["deltaci.attempt.id"]] = s
			}
		}
		for _, s := range spans {
			if s.trace != root.trace {
				t.Errorf("span %s of %s is in trace %s, not the run's %s", s.name, s.service, s.trace, root.trace)
			}
			if s.end.Before(s.start) {
				t.Errorf("span %s ends before it starts", s.name)
			}
			var want gotSpan
			switch s.name {
			case "deltaci.run.trigger":
				if s.under != "" {
					t.Errorf("the trigger span has a parent %s", s.under)
				}
				continue
			case "deltaci.plan", "deltaci.job.queue_wait", "deltaci.job.lease", "deltaci.log.seal":
				want = root
			case "deltaci.plan.fetch", "deltaci.plan.diff", "deltaci.plan.digests":
				want = byName(spans, "deltaci.plan")
			case "deltaci.runner.attempt":
				want = leases[s.attrs["deltaci.attempt.id"]]
			default:
				want = attemptSpans[parent(s).attrs["deltaci.attempt.id"]]
			}
			if got := parent(s); want.id == "" || got.id != want.id {
				t.Errorf("span %s (%s, job %s) is under %q (%s), want under %s", s.name, s.service, s.job,
					s.under, got.name, want.name)
			}
		}
		if root.attrs["deltaci.project"] == "" || root.attrs["deltaci.run.event"] != core.EventPush {
			t.Errorf("the trigger span's attributes: %v", root.attrs)
		}
		if wait := byJob(spans, "deltaci.job.queue_wait", "test"); wait.attrs["deltaci.attempt.number"] != "1" {
			t.Errorf("test's queue wait has attributes %v", wait.attrs)
		}
		if ex := byJob(spans, "deltaci.runner.execute", "build"); ex.attrs["deltaci.attempt.exit_code"] != "0" || ex.attrs["deltaci.attempt.state"] != "succeeded" {
			t.Errorf("build's execution span has attributes %v", ex.attrs)
		}
		// The job's secret, its log and the repository's path are nowhere.
		all, _ := col.received()
		for _, s := range all {
			text := s.name + " " + s.status + " " + fmt.Sprint(s.attrs)
			for _, leak := range []string{secret, logLine, dir} {
				if strings.Contains(text, leak) {
					t.Errorf("span %s carries %q: %s", s.name, leak, text)
				}
			}
		}
	})
}

// runSpans picks the spans of run runID out of got: those of its trace,
// found by its trigger span, each named by service, name and (for the
// spans of an attempt) job, and the trigger span.
func runSpans(got []gotSpan, runID string, attempts map[string]string) ([]gotSpan, gotSpan) {
	var root gotSpan
	for _, s := range got {
		if s.name == "deltaci.run.trigger" && s.attrs["deltaci.run.id"] == runID {
			root = s
		}
	}
	var out []gotSpan
	for _, s := range got {
		if root.trace != "" && s.trace == root.trace {
			out = append(out, s)
		}
	}
	byID := map[string]gotSpan{}
	for _, s := range out {
		byID[s.id] = s
	}
	for i := range out {
		id := out[i].attrs["deltaci.attempt.id"]
		if id == "" {
			id = byID[out[i].under].attrs["deltaci.attempt.id"]
		}
		if id != "" {
			out[i].job = attempts[id]
			if j, ok := out[i].attrs["deltaci.job.name"]; ok && j != attempts[id] {
				out[i].job = "(attempt " + id + " of job " + attempts[id] + " named " + j + ")"
			}
		}
	}
	return out, root
}

func spanKey(s gotSpan) string {
	k := s.service + " " + s.name
	if s.job != "" {
		k += " " + s.job
	}
	return k
}

// missingSpans lists the keys of want that spans lack, and those spans
// holds more than once.
func missingSpans(spans []gotSpan, want []string) []string {
	n := map[string]int{}
	for _, s := range spans {
		n[spanKey(s)]++
	}
	var out []string
	for _, k := range want {
		if n[k] != 1 {
			out = append(out, fmt.Sprintf("%s (%d)", k, n[k]))
		}
	}
	return out
}

func byName(spans []gotSpan, name string) gotSpan {
	for _, s := range spans {
		if s.name == name {
			return s
		}
	}
	return gotSpan{}
}

func byJob(spans []gotSpan, name, job string) gotSpan {
	for _, s := range spans {
		if s.name == name && s.job == job {
			return s
		}
	}
	return gotSpan{}
}

func describeSpans(spans []gotSpan) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %s %s trace %s id %s under %q %v\n", s.service, s.name, s.trace, s.id, s.under, s.attrs)
	}
	return b.String()
}
