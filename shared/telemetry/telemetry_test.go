package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/shopfn/shopfn/shared/telemetry"
)

func TestLoggerUsesCloudLoggingFields(t *testing.T) {
	p, err := telemetry.Setup(context.Background(), "test", telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := p.Tracer.Tracer("t").Start(context.Background(), "op")
	defer span.End()

	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, slog.LevelInfo, "my-project")
	log.WarnContext(ctx, "low stock", "sku", "A-1")
	log.DebugContext(ctx, "hidden")

	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("log line %q is not one JSON object: %v", buf.String(), err)
	}
	sc := span.SpanContext()
	want := map[string]any{
		"severity":                             "WARNING",
		"message":                              "low stock",
		"sku":                                  "A-1",
		"logging.googleapis.com/trace":         "projects/my-project/traces/" + sc.TraceID().String(),
		"logging.googleapis.com/spanId":        sc.SpanID().String(),
		"logging.googleapis.com/trace_sampled": false,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("log field %q = %v, want %v", k, got[k], v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, got["time"].(string)); err != nil {
		t.Errorf("time %v: %v", got["time"], err)
	}
	if !sc.IsValid() || sc.IsSampled() {
		t.Errorf("span context without exporter = valid %v sampled %v, want valid and unsampled", sc.IsValid(), sc.IsSampled())
	}
}

func TestLoggerWithoutSpan(t *testing.T) {
	var buf bytes.Buffer
	telemetry.NewLogger(&buf, slog.LevelDebug, "").ErrorContext(context.Background(), "boom")
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["severity"] != "ERROR" || got["logging.googleapis.com/trace"] != nil {
		t.Errorf("log = %v, want severity ERROR and no trace field", got)
	}
}

// collector is a real OTLP trace receiver on loopback.
type collector struct {
	coltrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
}

func (c *collector) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.names = append(c.names, s.GetName())
			}
		}
	}
	return &coltrace.ExportTraceServiceResponse{}, nil
}

func TestOTLPExport(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	col := &collector{}
	coltrace.RegisterTraceServiceServer(srv, col)
	go srv.Serve(lis)
	defer srv.Stop()

	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	cfg := telemetry.Config{TracesEndpoint: "http://" + lis.Addr().String()}
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", cfg.TracesEndpoint)
	p, err := telemetry.Setup(context.Background(), "test", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Exporting) != 1 || p.Exporting[0] != "traces" {
		t.Errorf("Exporting = %v, want [traces]", p.Exporting)
	}
	_, span := p.Tracer.Tracer("t").Start(context.Background(), "checkout")
	if !span.SpanContext().IsSampled() {
		t.Errorf("span with an exporter is not sampled")
	}
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown() = %v", err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.names) != 1 || col.names[0] != "checkout" {
		t.Errorf("collector received spans %v, want [checkout]", col.names)
	}
}

func TestSetupRejectsUnsupportedProtocol(t *testing.T) {
	if _, err := telemetry.Setup(context.Background(), "test", telemetry.Config{Protocol: "http/protobuf", Endpoint: "http://x"}); err == nil {
		t.Error("Setup(protocol http/protobuf) = nil error, want one")
	}
}
