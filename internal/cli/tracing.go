package cli

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/deltaci/deltaci/internal/telemetry"
)

// tracingFlushTimeout bounds how long a stopping process waits for the
// collector to take its last spans.
const tracingFlushTimeout = 10 * time.Second

// startTracing turns tracing on when the environment names an OTLP
// collector (docs/operations.md, "Tracing"). The returned func sends the
// spans still buffered; the caller calls it once everything that makes
// spans has stopped.
func startTracing(ctx context.Context, e env, service string, log *slog.Logger) (*telemetry.Tracing, func(), error) {
	t, err := telemetry.NewTracing(ctx, service, Version, e.get)
	if err != nil || !t.On() {
		return nil, func() {}, err
	}
	// The SDK reports failed exports here; without it they go to stderr
	// unstructured.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing", slog.Any("err", err))
	}))
	log.Info("tracing on: spans go to the OTLP/HTTP collector the OTEL_EXPORTER_OTLP_* environment names")
	return t, func() {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
		defer cancel()
		if err := t.Shutdown(c); err != nil {
			log.Warn("sending the last spans", slog.Any("err", err))
		}
	}, nil
}
