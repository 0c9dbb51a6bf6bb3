package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Config is the telemetry part of a deployable's configuration. The OTLP
// exporters read their own standard variables (OTEL_EXPORTER_OTLP_*); these
// are the rest.
type Config struct {
	// LogLevel is the lowest level logged: debug, info, warn or error.
	LogLevel slog.Level `envconfig:"SHOPFN_LOG_LEVEL" default:"info"`
	// ProjectID links log lines to Cloud Trace; Cloud Run sets it.
	ProjectID string `envconfig:"GOOGLE_CLOUD_PROJECT"`
	// Version names the running revision; Cloud Run and Knative set K_REVISION.
	Version string `envconfig:"K_REVISION" default:"dev"`

	// The standard OpenTelemetry variables that decide what is exported; the
	// exporters read the rest (headers, TLS, timeouts) themselves.
	Disabled        bool   `envconfig:"OTEL_SDK_DISABLED"`
	Protocol        string `envconfig:"OTEL_EXPORTER_OTLP_PROTOCOL"`
	Endpoint        string `envconfig:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	TracesEndpoint  string `envconfig:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`
	MetricsEndpoint string `envconfig:"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"`
}

// Providers are a deployable's tracer and meter providers and the
// propagator that carries trace context across calls and messages.
type Providers struct {
	Tracer     trace.TracerProvider
	Meter      metric.MeterProvider
	Propagator propagation.TextMapPropagator
	// Exporting says which signals leave the process ("traces", "metrics").
	Exporting []string

	shutdown []func(context.Context) error
}

// Setup creates the providers of the named service. Traces go to an OTLP
// (gRPC) collector when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, metrics when the endpoint or
// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is; OTEL_SDK_DISABLED=true turns
// everything off.
//
// The OTLP exporters are linked only into binaries built with -tags otlp:
// they bring the OTLP protos and grpc-gateway's runtime, 5 MB of binary that
// every instance would otherwise map at each cold start (about 2 MB of idle
// RSS). A binary without them refuses to start when an OTLP endpoint is
// configured, so no trace is lost silently. With no exporter, spans are never recorded but their
// contexts still propagate (trace ids in logs and downstream calls), and
// metrics are not computed at all: there is nobody to read them. Setup does
// no network I/O; exporters connect on first export.
func Setup(ctx context.Context, service string, cfg Config) (*Providers, error) {
	p := &Providers{
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		Meter:      metricnoop.NewMeterProvider(),
	}
	if cfg.Disabled {
		p.Tracer = tracenoop.NewTracerProvider()
		return p, nil
	}
	if cfg.Protocol != "" && cfg.Protocol != "grpc" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: only grpc is built in", cfg.Protocol)
	}

	tracesOn := cfg.Endpoint != "" || cfg.TracesEndpoint != ""
	metricsOn := cfg.Endpoint != "" || cfg.MetricsEndpoint != ""
	if (tracesOn || metricsOn) && otlp == nil {
		return nil, errors.New("OTEL_EXPORTER_OTLP_*ENDPOINT is set but this binary was built without OTLP support: build it with -tags otlp")
	}
	if tracesOn {
		tp, err := otlp.traces(ctx, service, cfg.Version)
		if err != nil {
			return nil, err
		}
		p.Tracer = tp
		p.shutdown = append(p.shutdown, tp.Shutdown)
		p.Exporting = append(p.Exporting, "traces")
	} else {
		// No spans are built for nobody to read. The noop tracer still carries
		// an incoming trace context (Cloud Run sends one with every request)
		// into the handler's context, so logs and downstream calls keep the
		// trace id.
		p.Tracer = tracenoop.NewTracerProvider()
	}
	if metricsOn {
		mp, shutdown, err := otlp.metrics(ctx, service, cfg.Version)
		if err != nil {
			return nil, errors.Join(err, p.Shutdown(ctx))
		}
		p.Meter = mp
		p.shutdown = append(p.shutdown, shutdown)
		p.Exporting = append(p.Exporting, "metrics")
	}
	return p, nil
}

// Exports reports whether any signal leaves the process: gRPC calls are
// instrumented with otelgrpc only then (else only the trace context is
// carried, see serve and dial).
func (p *Providers) Exports() bool { return len(p.Exporting) > 0 }

// Shutdown flushes and stops the exporters.
func (p *Providers) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range p.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}
