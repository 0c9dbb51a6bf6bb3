//go:build otlp

package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

func otlpResource(service, version string) *resource.Resource {
	return resource.NewSchemaless(semconv.ServiceName(service), semconv.ServiceVersion(version))
}

// otlp builds the OTLP (gRPC) exporters; they read their own standard
// OTEL_EXPORTER_OTLP_* variables (endpoint, headers, TLS, timeouts).
var otlp = &exporters{
	traces: func(ctx context.Context, service, version string) (tracerProvider, error) {
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp trace exporter: %w", err)
		}
		// The sampler comes from OTEL_TRACES_SAMPLER (default: parent-based,
		// always on).
		return sdktrace.NewTracerProvider(sdktrace.WithResource(otlpResource(service, version)), sdktrace.WithBatcher(exp)), nil
	},
	metrics: func(ctx context.Context, service, version string) (metric.MeterProvider, func(context.Context) error, error) {
		exp, err := otlpmetricgrpc.New(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("otlp metric exporter: %w", err)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(otlpResource(service, version)), sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
		return mp, mp.Shutdown, nil
	},
}
