package runner

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/telemetry"
)

// The runner's spans of an attempt (docs/operations.md, "Tracing"). The
// attempt's span is a child of the server's span of its lease, whose
// traceparent the lease carries; the others are the attempt's children.
const (
	spanAttempt       = "deltaci.runner.attempt"
	spanCheckout      = "deltaci.runner.checkout"
	spanRestore       = "deltaci.runner.restore_needs"
	spanExecute       = "deltaci.runner.execute"
	spanUploadReports = "deltaci.runner.upload_reports"
	spanUploadOutputs = "deltaci.runner.upload_outputs"
	spanLogFlush      = "deltaci.runner.log_flush"
	spanComplete      = "deltaci.runner.complete"
)

const (
	attrHermetic = attribute.Key("deltaci.job.hermetic")
	attrNeeds    = attribute.Key("deltaci.job.needs")
	attrState    = attribute.Key("deltaci.attempt.state")
	attrReason   = attribute.Key("deltaci.attempt.reason")
	attrExitCode = attribute.Key("deltaci.attempt.exit_code")
)

// startAttemptSpan starts the attempt's span under the lease's
// traceparent (a trace of its own when the lease has none).
func (a *attempt) startAttemptSpan(ctx context.Context) (context.Context, trace.Span) {
	l := a.l
	return a.tracer.Start(telemetry.WithRemoteParent(ctx, l.TraceParent), spanAttempt, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(telemetry.AttemptAttributes(l.RunID, l.Job, l.AttemptID, l.AttemptNumber)...))
}

// endAttemptSpan records the outcome the runner reported on the attempt's
// span.
func endAttemptSpan(span trace.Span, out protocol.CompleteRequest) {
	span.SetAttributes(attrState.String(string(out.State)))
	if out.Reason != core.ReasonNone {
		span.SetAttributes(attrReason.String(string(out.Reason)))
	}
	if out.State != core.AttemptSucceeded {
		span.SetStatus(codes.Error, string(out.State))
	}
}

// endExecuteSpan ends the span of the job's process with how it ended.
func endExecuteSpan(span trace.Span, res executor.Result, err error) {
	if err != nil {
		telemetry.End(span, err)
		return
	}
	span.SetAttributes(attrState.String(string(res.State)), attrExitCode.Int(res.ExitCode))
	if res.State != core.AttemptSucceeded {
		span.SetStatus(codes.Error, string(res.State))
	}
	span.End()
}
