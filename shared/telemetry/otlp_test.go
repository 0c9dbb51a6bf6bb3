//go:build otlp

package telemetry_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/shopfn/shopfn/shared/telemetry"
)

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
