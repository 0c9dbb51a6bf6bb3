//go:build !otlp

package telemetry

// otlp is nil: this binary was built without -tags otlp.
var otlp *exporters
