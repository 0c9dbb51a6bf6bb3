package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/shopfn/shopfn/shared/telemetry"
)

func TestLoggerUsesCloudLoggingFields(t *testing.T) {
	p, err := telemetry.Setup(context.Background(), "test", telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// A request arrives with a trace context (Cloud Run always sends one).
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	incoming := trace.ContextWithRemoteSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, Remote: true}))
	ctx, span := p.Tracer.Tracer("t").Start(incoming, "op")
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
	if sc.TraceID() != tid || span.IsRecording() {
		t.Errorf("span without exporter: trace %v recording %v; want the incoming trace %v, not recording", sc.TraceID(), span.IsRecording(), tid)
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

func TestSetupRejectsUnsupportedProtocol(t *testing.T) {
	if _, err := telemetry.Setup(context.Background(), "test", telemetry.Config{Protocol: "http/protobuf", Endpoint: "http://x"}); err == nil {
		t.Error("Setup(protocol http/protobuf) = nil error, want one")
	}
}
