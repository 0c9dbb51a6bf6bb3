package serve

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// When no span or metric leaves the process, the server does not install
// otelgrpc: with no-op providers it would still copy every call's metadata
// twice (grpc-go for the stats handler's InHeader, otelgrpc to extract the
// trace context), 12% of a GetProduct's CPU. These interceptors do what is
// left to do: carry the incoming trace context (Cloud Run sends one with
// every request) into the handler's context, for logs and for downstream
// calls, reading only the propagator's keys.

func traceContextUnary(p propagation.TextMapPropagator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(p.Extract(ctx, incomingCarrier{ctx}), req)
	}
}

func traceContextStream(p propagation.TextMapPropagator) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		return handler(srv, &stream{ServerStream: ss, ctx: p.Extract(ctx, incomingCarrier{ctx})})
	}
}

// incomingCarrier reads single keys of a call's incoming metadata.
type incomingCarrier struct{ ctx context.Context }

func (c incomingCarrier) Get(key string) string {
	if v := metadata.ValueFromIncomingContext(c.ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (incomingCarrier) Set(string, string) {}

// Keys is not needed by the W3C propagators' Extract.
func (incomingCarrier) Keys() []string { return nil }
