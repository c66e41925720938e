package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/deltaci/deltaci/internal/telemetry"
)

func envOf(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestTracingOff(t *testing.T) {
	t.Parallel()
	for name, env := range map[string]map[string]string{
		"NoEndpoint":   {"OTEL_SERVICE_NAME": "ci"},
		"SDKDisabled":  {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"},
		"ExporterNone": {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces", "OTEL_TRACES_EXPORTER": "none"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tr, err := telemetry.NewTracing(t.Context(), "deltaci-server", "dev", envOf(env))
			if err != nil || tr.On() || tr.Provider() != nil || tr.Shutdown(t.Context()) != nil {
				t.Fatalf("NewTracing(%v) = %+v, %v; want tracing off", env, tr, err)
			}
			// Off, the tracer makes no-op spans: nothing to record or send.
			_, span := telemetry.Tracer(tr.Provider()).Start(t.Context(), "x")
			if span.IsRecording() || span.SpanContext().IsValid() {
				t.Errorf("tracing off made a recording span %v", span.SpanContext())
			}
		})
	}
}

func TestTracingRefusesWhatItCannotSend(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		env  map[string]string
		want string
	}{
		"GRPC":          {map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, `OTEL_EXPORTER_OTLP_PROTOCOL="grpc"`},
		"TracesGRPC":    {map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc"`},
		"JSON":          {map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "http/protobuf"},
		"OtherExporter": {map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, `OTEL_TRACES_EXPORTER="zipkin"`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:1"
			tr, err := telemetry.NewTracing(t.Context(), "deltaci-server", "dev", envOf(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewTracing(%v) = %v, %v; want an error naming %s", c.env, tr, err, c.want)
			}
		})
	}
}

// TestTracingExportsOnShutdown: with a collector named, spans go to it
// over OTLP/HTTP as protobuf, under the service OTEL_SERVICE_NAME names,
// and Shutdown sends those still buffered.
func TestTracingExportsOnShutdown(t *testing.T) {
	var (
		mu       sync.Mutex
		services []string
		names    []string
	)
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil || r.URL.Path != "/v1/traces" {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					services = append(services, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer col.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL)
	t.Setenv("OTEL_SERVICE_NAME", "ci-east")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "3600000") // only Shutdown sends
	tr, err := telemetry.NewTracing(context.Background(), "deltaci-server", "dev", os.Getenv)
	if err != nil || !tr.On() {
		t.Fatalf("NewTracing = %v, %v; want tracing on", tr, err)
	}
	_, span := telemetry.Tracer(tr.Provider()).Start(context.Background(), "deltaci.test")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(names) != 1 || names[0] != "deltaci.test" || len(services) != 1 || services[0] != "ci-east" {
		t.Fatalf("the collector got spans %q of services %q; want deltaci.test of ci-east", names, services)
	}
}

func TestTraceParentRoundTrip(t *testing.T) {
	t.Parallel()
	if got := telemetry.TraceParent(t.Context()); got != "" {
		t.Errorf("TraceParent of a context without a span = %q", got)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := telemetry.WithRemoteParent(t.Context(), tp)
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsRemote() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sc.SpanID().String() != "00f067aa0ba902b7" || !sc.IsSampled() {
		t.Fatalf("WithRemoteParent(%s) holds %+v", tp, sc)
	}
	if got := telemetry.TraceParent(ctx); got != tp {
		t.Errorf("TraceParent = %q, want %q", got, tp)
	}
	for _, bad := range []string{
		"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff is invalid
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
	} {
		if telemetry.ValidTraceParent(bad) || trace.SpanContextFromContext(telemetry.WithRemoteParent(t.Context(), bad)).IsValid() {
			t.Errorf("WithRemoteParent(%q) took it as a parent", bad)
		}
	}
}

// FuzzWithRemoteParent: whatever a lease or a stored run carries, taking
// it as a parent never panics, and what it takes formats back the same.
func FuzzWithRemoteParent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		ctx := telemetry.WithRemoteParent(context.Background(), s)
		sc := trace.SpanContextFromContext(ctx)
		if !sc.IsValid() {
			if telemetry.TraceParent(ctx) != "" {
				t.Fatalf("%q: no parent, yet a traceparent", s)
			}
			return
		}
		again := trace.SpanContextFromContext(telemetry.WithRemoteParent(context.Background(), telemetry.TraceParent(ctx)))
		if !again.Equal(sc) {
			t.Fatalf("%q: took %v, which formats to %q and reads back %v", s, sc, telemetry.TraceParent(ctx), again)
		}
	})
}
