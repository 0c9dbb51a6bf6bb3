package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// exporters create the providers that export; nil in binaries built
// without them (see Setup).
type exporters struct {
	traces  func(context.Context, *resource.Resource) (*sdktrace.TracerProvider, error)
	metrics func(context.Context, *resource.Resource) (metric.MeterProvider, func(context.Context) error, error)
}
