package api

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/orchestrator"
	"github.com/deltaci/deltaci/internal/telemetry"
)

// The server's spans of a run (docs/operations.md, "Tracing"). A run's
// trace starts at the span it is made in (trigger, webhook or rerun),
// whose traceparent is kept with the run: the spans of its jobs, made
// later by any replica, are its children.
const (
	spanTrigger   = "deltaci.run.trigger"
	spanWebhook   = "deltaci.run.webhook"
	spanRerun     = "deltaci.run.rerun"
	spanPlan      = "deltaci.plan"
	spanFetch     = "deltaci.plan.fetch"
	spanQueueWait = "deltaci.job.queue_wait"
	spanLease     = "deltaci.job.lease"
	spanSeal      = "deltaci.log.seal"
)

// Attributes of the server's spans besides telemetry's.
const (
	attrForge      = attribute.Key("deltaci.forge")
	attrDelivery   = attribute.Key("deltaci.webhook.delivery")
	attrRerunOf    = attribute.Key("deltaci.run.rerun_of")
	attrJobs       = attribute.Key("deltaci.run.jobs")
	attrReused     = attribute.Key("deltaci.run.jobs_reused")
	attrLogBytes   = attribute.Key("deltaci.log.bytes")
	attrLeaseTTLms = attribute.Key("deltaci.lease.ttl_ms")
)

// startRoot starts the span a run is made in: the root of its trace.
func (s *Server) startRoot(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return s.tracer.Start(ctx, name, trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
}

// leaseSpans records a leased attempt's wait in the queue, from its
// enqueueing to its lease, and starts the span of the lease itself at
// claimed, when the claim that won it began. Both are children of the
// run's root span, whichever server made it. The returned context holds
// the lease span, whose traceparent the runner's spans take as parent.
func (s *Server) leaseSpans(ctx context.Context, l orchestrator.Leased, claimed time.Time) (context.Context, trace.Span) {
	if s.cfg.Tracer == nil {
		// The lease is the hot path: not even the attributes when off.
		return ctx, trace.SpanFromContext(context.Background())
	}
	a := l.Attempt
	parent := telemetry.WithRemoteParent(ctx, l.Run.TraceParent)
	attrs := append(telemetry.AttemptAttributes(a.RunID, l.Job.Name, a.ID, a.Number), telemetry.AttrRunnerID.String(a.RunnerID))
	_, wait := s.tracer.Start(parent, spanQueueWait, trace.WithTimestamp(a.QueuedAt), trace.WithAttributes(attrs...))
	wait.End(trace.WithTimestamp(a.LeasedAt))
	return s.tracer.Start(parent, spanLease, trace.WithTimestamp(claimed), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(append(attrs, attrLeaseTTLms.Int64(s.cfg.TTL.Milliseconds()))...))
}

// sealSpan starts the span of sealing attempt a's log, a child of its
// run's root span. Its job and run are read only when tracing is on.
func (s *Server) sealSpan(ctx context.Context, a core.Attempt) (context.Context, trace.Span) {
	job := ""
	if s.cfg.Tracer != nil {
		if j, run, err := s.st.JobRun(ctx, a.JobID); err == nil {
			ctx, job = telemetry.WithRemoteParent(ctx, run.TraceParent), j.Name
		}
	}
	return s.tracer.Start(ctx, spanSeal, trace.WithAttributes(append(telemetry.AttemptAttributes(a.RunID, job, a.ID, a.Number),
		attrLogBytes.Int64(a.LogLength))...))
}
