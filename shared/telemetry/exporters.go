package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// exporters create the providers that export; nil in binaries built
// without them (see Setup).
type exporters struct {
	traces  func(ctx context.Context, service, version string) (tracerProvider, error)
	metrics func(ctx context.Context, service, version string) (metric.MeterProvider, func(context.Context) error, error)
}

// tracerProvider is a trace.TracerProvider that flushes on shutdown.
type tracerProvider interface {
	trace.TracerProvider
	Shutdown(context.Context) error
}
