package api_test

import (
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/telemetry"
)

const oneJob = "version: 1\njobs:\n  build:\n    run: echo built\n"

// TestLeaseCarriesTheRunsTrace: the run keeps the traceparent of the span
// it was made in, and a lease hands the runner the traceparent of the
// lease's span, a child of that one in the same trace, after the job's
// queue wait.
func TestLeaseCarriesTheRunsTrace(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			srv := apitest.Start(t, apitest.Options{Engine: engine, Edit: func(c *api.Config) { c.Tracer = tp }})
			lr := srv.Leased(t, map[string]string{".deltaci.yml": oneJob})

			run, err := srv.Store.Run(t.Context(), lr.Lease.RunID)
			if err != nil {
				t.Fatal(err)
			}
			var root, lease, wait sdktrace.ReadOnlySpan
			deadline := time.Now().Add(30 * time.Second)
			for lease == nil || wait == nil || root == nil {
				for _, s := range rec.Ended() {
					switch s.Name() {
					case "deltaci.run.trigger":
						root = s
					case "deltaci.job.lease":
						lease = s
					case "deltaci.job.queue_wait":
						wait = s
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("spans ended after 30 s: trigger %v, lease %v, queue wait %v", root != nil, lease != nil, wait != nil)
				}
				time.Sleep(10 * time.Millisecond)
			}
			rootCtx := trace.ContextWithSpanContext(t.Context(), root.SpanContext())
			if want := telemetry.TraceParent(rootCtx); run.TraceParent != want || want == "" {
				t.Errorf("the run keeps traceparent %q, want its trigger span's %q", run.TraceParent, want)
			}
			leaseCtx := trace.ContextWithSpanContext(t.Context(), lease.SpanContext())
			if want := telemetry.TraceParent(leaseCtx); lr.Lease.TraceParent != want {
				t.Errorf("the lease carries traceparent %q, want its lease span's %q", lr.Lease.TraceParent, want)
			}
			for _, s := range []sdktrace.ReadOnlySpan{lease, wait} {
				if s.Parent().SpanID() != root.SpanContext().SpanID() || s.SpanContext().TraceID() != root.SpanContext().TraceID() {
					t.Errorf("span %s has parent %v, want the trigger span %v", s.Name(), s.Parent(), root.SpanContext())
				}
			}
		})
	}
}

// TestNoTraceWhenTracingIsOff: a server without a tracer keeps no
// traceparent with its runs and sends none with its leases.
func TestNoTraceWhenTracingIsOff(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	lr := srv.Leased(t, map[string]string{".deltaci.yml": oneJob})
	run, err := srv.Store.Run(t.Context(), lr.Lease.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.TraceParent != "" || lr.Lease.TraceParent != "" {
		t.Errorf("tracing off, the run keeps traceparent %q and the lease carries %q", run.TraceParent, lr.Lease.TraceParent)
	}
}
