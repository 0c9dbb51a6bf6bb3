package serve_test

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	supportv1 "github.com/shopfn/shopfn/proto/shopfn/support/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/dial"
)

// With nothing exported (no otelgrpc on the server), a call still carries
// the caller's trace context into the handler's context, unary and
// streaming, and the server's logs name the trace; whether the client
// injects it with its own interceptors (PropagateOnly) or with otelgrpc.
func TestTraceContextCrossesCallsWithoutExporters(t *testing.T) {
	impl := &support{traces: make(chan trace.TraceID, 4)}
	e := start(t, defaults(), auth.Config{}, impl)
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

	for i, propagateOnly := range []bool{true, false} {
		cc, err := dial.Dial(e.addr, dial.Options{Propagators: prop, PropagateOnly: propagateOnly})
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		client := supportv1.NewSupportServiceClient(cc)
		want := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, byte(i)}
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: want, SpanID: trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
			TraceFlags: trace.FlagsSampled, Remote: true,
		})
		ctx := trace.ContextWithRemoteSpanContext(e.as(t, auth.RoleCustomer), sc)

		if _, err := client.History(ctx, &supportv1.HistoryRequest{RoomId: "ticket:1"}); err != nil {
			t.Fatalf("History = %v", err)
		}
		if got := <-impl.traces; got != want {
			t.Errorf("PropagateOnly=%v: unary handler's trace = %v, want %v", propagateOnly, got, want)
		}
		stream, err := client.Chat(ctx)
		if err != nil {
			t.Fatalf("Chat = %v", err)
		}
		if got := <-impl.traces; got != want {
			t.Errorf("PropagateOnly=%v: stream handler's trace = %v, want %v", propagateOnly, got, want)
		}
		stream.CloseSend()

		// A failure the server logs carries the trace id.
		if _, err := client.History(ctx, &supportv1.HistoryRequest{RoomId: "ticket:secret"}); err == nil {
			t.Fatal("History(ticket:secret) succeeded")
		}
		<-impl.traces
		if !strings.Contains(e.logs.String(), want.String()) {
			t.Errorf("PropagateOnly=%v: the server's logs do not name trace %v:\n%s", propagateOnly, want, e.logs.String())
		}
	}
}
