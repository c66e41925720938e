package telemetry

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/deltaci/deltaci/internal/core"
)

// TracerName names the tracer of every Delta CI span.
const TracerName = "github.com/deltaci/deltaci"

// Tracing is a process's OpenTelemetry tracer provider. Its zero value,
// and the nil *Tracing, is tracing off: no spans are made or sent.
type Tracing struct {
	provider *sdktrace.TracerProvider
}

// NewTracing exports spans over OTLP/HTTP (protobuf) when the environment
// names a collector (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), and is off otherwise, or when
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. service is the
// service.name unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES set
// one. The SDK reads the other standard variables itself (headers,
// timeout, compression, sampler, batching). getenv reads the environment
// the decision is made from.
func NewTracing(ctx context.Context, service, version string, getenv func(string) string) (*Tracing, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return nil, nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return nil, nil
	case "", "otlp":
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: Delta CI exports traces only with otlp (or none to turn them off)", exp)
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(k)); p != "" && p != "http/protobuf" {
			return nil, fmt.Errorf("%s=%q: Delta CI sends traces over OTLP/HTTP with protobuf only; set it to http/protobuf or leave it unset", k, p)
		}
		if getenv(k) != "" {
			break // the traces-specific one wins
		}
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// Ours first, so that OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override them.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("tracing resource (OTEL_RESOURCE_ATTRIBUTES?): %w", err)
	}
	return &Tracing{provider: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))}, nil
}

// NewTracingWith wraps a tracer provider the caller configured (a test's
// exporter, say).
func NewTracingWith(p *sdktrace.TracerProvider) *Tracing { return &Tracing{provider: p} }

// On reports whether spans are recorded.
func (t *Tracing) On() bool { return t != nil && t.provider != nil }

// Provider is the tracer provider to pass on; nil when tracing is off.
func (t *Tracing) Provider() trace.TracerProvider {
	if !t.On() {
		return nil
	}
	return t.provider
}

// Shutdown sends the spans still buffered and stops the exporter; ctx
// bounds how long it waits for the collector.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.On() {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// Tracer returns Delta CI's tracer of p, a no-op one when p is nil.
func Tracer(p trace.TracerProvider) trace.Tracer {
	if p == nil {
		return noopTracer
	}
	return p.Tracer(TracerName)
}

var noopTracer = noop.NewTracerProvider().Tracer(TracerName)

// ChildTracer is the tracer of the span in ctx: spans made with it belong
// to that span's provider, and cost nothing when ctx holds no recording
// span. Packages below the server and the runner (the planner) use it, so
// that they need no provider of their own.
func ChildTracer(ctx context.Context) trace.Tracer {
	return trace.SpanFromContext(ctx).TracerProvider().Tracer(TracerName)
}

// traceContext is the W3C Trace Context format (traceparent only: no
// baggage, and no tracestate is kept).
var traceContext = propagation.TraceContext{}

// TraceParent formats the span context of ctx as a W3C traceparent, or ""
// when ctx holds none.
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c.Get("traceparent")
}

// WithRemoteParent returns ctx with the span context of traceparent as the
// remote parent of the spans made from it. A value that is empty or not a
// valid traceparent leaves ctx as it is: those spans start traces of their
// own.
func WithRemoteParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	sc := trace.SpanContextFromContext(traceContext.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent}))
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// ValidTraceParent reports whether s is a W3C traceparent this package
// would parent spans on.
func ValidTraceParent(s string) bool {
	return trace.SpanContextFromContext(WithRemoteParent(context.Background(), s)).IsValid()
}

// End ends span, marking it failed when err is not nil. Only the error's
// kind is recorded: messages can carry repository URLs with their
// credentials, or a job's words.
func End(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, string(core.KindOf(err)))
	}
	span.End()
}

// The attributes of Delta CI's spans (docs/operations.md, "Tracing"). None
// carries a secret, a log's bytes or a repository URL (it may hold
// credentials).
const (
	AttrProject       = attribute.Key("deltaci.project")
	AttrRunID         = attribute.Key("deltaci.run.id")
	AttrEvent         = attribute.Key("deltaci.run.event")
	AttrTrusted       = attribute.Key("deltaci.run.trusted")
	AttrJob           = attribute.Key("deltaci.job.name")
	AttrAttemptID     = attribute.Key("deltaci.attempt.id")
	AttrAttemptNumber = attribute.Key("deltaci.attempt.number")
	AttrRunnerID      = attribute.Key("deltaci.runner.id")
)

// AttemptAttributes are the attributes of every span of one attempt.
func AttemptAttributes(runID, job, attemptID string, number int) []attribute.KeyValue {
	return []attribute.KeyValue{AttrRunID.String(runID), AttrJob.String(job), AttrAttemptID.String(attemptID), AttrAttemptNumber.Int(number)}
}
