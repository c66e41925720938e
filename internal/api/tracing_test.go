package api_test

import (
	"net/http"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/forge"
	"github.com/deltaci/deltaci/internal/protocol"
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

// TestRerunStartsATraceOfItsOwn: a rerun is made in a span of its own,
// the root of its run's trace, which its run keeps.
func TestRerunStartsATraceOfItsOwn(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	srv := apitest.Start(t, apitest.Options{Edit: func(c *api.Config) { c.Tracer = tp }})
	lr := srv.Leased(t, map[string]string{".deltaci.yml": oneJob})
	ctx := t.Context()
	if err := lr.Client.Start(ctx, lr.Lease.AttemptID, lr.Lease.LeaseToken); err != nil {
		t.Fatal(err)
	}
	code := 1
	if _, err := lr.Client.Complete(ctx, lr.Lease.AttemptID, protocol.CompleteRequest{
		LeaseToken: lr.Lease.LeaseToken, State: core.AttemptFailed, Reason: core.ReasonExitCode, ExitCode: &code,
	}); err != nil {
		t.Fatal(err)
	}
	var rerun protocol.Run
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if rerun, err = srv.API.Rerun(ctx, "test", lr.Lease.RunID, ""); err == nil {
			break
		} else if core.KindOf(err) != core.KindConflict || time.Now().After(deadline) {
			t.Fatalf("rerun of %s: %v", lr.Lease.RunID, err)
		}
		time.Sleep(10 * time.Millisecond) // the run is still ending
	}
	var root sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "deltaci.run.rerun" {
			root = s
		}
	}
	if root == nil || root.Parent().IsValid() {
		t.Fatalf("the rerun's span: %v", root)
	}
	attrs := map[string]string{}
	for _, kv := range root.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	if attrs["deltaci.run.id"] != rerun.ID || attrs["deltaci.run.rerun_of"] != lr.Lease.RunID {
		t.Errorf("the rerun's span has attributes %v; want run %s, rerun of %s", attrs, rerun.ID, lr.Lease.RunID)
	}
	run, err := srv.Store.Run(ctx, rerun.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := telemetry.TraceParent(trace.ContextWithSpanContext(ctx, root.SpanContext())); run.TraceParent != want {
		t.Errorf("the rerun keeps traceparent %q, want its span's %q", run.TraceParent, want)
	}
	if first, _ := srv.Store.Run(ctx, lr.Lease.RunID); first.TraceParent == run.TraceParent {
		t.Errorf("the rerun keeps its original's traceparent %q", run.TraceParent)
	}
}

// TestWebhookRunIsTraced: a run a webhook delivery makes has the span of
// its planning as its root, with the forge and the delivery, and keeps it.
func TestWebhookRunIsTraced(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	f := newForgeEnv(t, forgeOptions{kind: forge.GitHub, tracer: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)),
		files: map[string]string{".deltaci.yml": forgePushPipeline, "src/main.c": "int main(void) { return 0; }\n"}})
	first := revParse(t, f.repo, "HEAD")
	sha := commitFiles(t, f.repo, "change", map[string]string{"src/main.c": "int main(void) { return 1; }\n"})
	delivery := newDeliveryID()
	f.deliver(t, http.StatusAccepted, "push", delivery, encodePayload(t, githubPush(t, first, sha, "change")))
	run := f.waitRunOf(t, sha)

	var root sdktrace.ReadOnlySpan
	deadline := time.Now().Add(30 * time.Second)
	for root == nil {
		for _, s := range rec.Ended() {
			if s.Name() == "deltaci.run.webhook" {
				root = s
			}
		}
		if root == nil && time.Now().After(deadline) {
			t.Fatal("no deltaci.run.webhook span ended within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	attrs := map[string]string{}
	for _, kv := range root.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	if root.Parent().IsValid() || attrs["deltaci.run.id"] != run.ID || attrs["deltaci.forge"] != string(forge.GitHub) ||
		attrs["deltaci.webhook.delivery"] != delivery || attrs["deltaci.run.event"] != core.EventPush {
		t.Errorf("the webhook's span has parent %v and attributes %v; want a root of run %s, delivery %s", root.Parent(), attrs, run.ID, delivery)
	}
	stored, err := f.st.Run(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := telemetry.TraceParent(trace.ContextWithSpanContext(t.Context(), root.SpanContext())); stored.TraceParent != want {
		t.Errorf("the run keeps traceparent %q, want its webhook span's %q", stored.TraceParent, want)
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
