// Package telemetry sets up what a deployable reports about itself: JSON logs
// in the field names Cloud Logging reads, and OpenTelemetry traces and
// metrics.
//
// Nothing is global: Setup returns the providers, and NewLogger returns a
// logger that the caller passes down. With no exporter configured (the
// default) nothing leaves the process, yet span contexts still flow, so log
// lines and downstream calls carry the trace id.
package telemetry

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Cloud Logging's structured-log field names
// (https://cloud.google.com/logging/docs/structured-logging).
const (
	keySeverity     = "severity"
	keyMessage      = "message"
	keyTime         = "time"
	keyTrace        = "logging.googleapis.com/trace"
	keySpanID       = "logging.googleapis.com/spanId"
	keyTraceSampled = "logging.googleapis.com/trace_sampled"
)

// NewLogger returns a JSON logger writing to w in Cloud Logging's format.
// projectID, when set, turns trace ids into the full resource name Cloud
// Logging links to Cloud Trace ("projects/P/traces/T").
func NewLogger(w io.Writer, level slog.Leveler, projectID string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		AddSource:   false,
		Level:       level,
		ReplaceAttr: cloudLoggingAttr,
	})
	return slog.New(&traceHandler{Handler: h, tracePrefix: tracePrefix(projectID)})
}

func tracePrefix(projectID string) string {
	if projectID == "" {
		return ""
	}
	return "projects/" + projectID + "/traces/"
}

// cloudLoggingAttr renames slog's built-in keys and levels to Cloud
// Logging's.
func cloudLoggingAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.MessageKey:
		a.Key = keyMessage
	case slog.TimeKey:
		a.Key = keyTime
	case slog.LevelKey:
		a.Key = keySeverity
		a.Value = slog.StringValue(severity(a.Value.Any().(slog.Level)))
	}
	return a
}

func severity(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	default:
		return "DEBUG"
	}
}

// traceHandler adds the current span's trace and span ids to every record
// logged with a context.
type traceHandler struct {
	slog.Handler
	tracePrefix string
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(
			slog.String(keyTrace, h.tracePrefix+sc.TraceID().String()),
			slog.String(keySpanID, sc.SpanID().String()),
			slog.Bool(keyTraceSampled, sc.IsSampled()),
		)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &traceHandler{Handler: h.Handler.WithAttrs(attrs), tracePrefix: h.tracePrefix}
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	return &traceHandler{Handler: h.Handler.WithGroup(name), tracePrefix: h.tracePrefix}
}
