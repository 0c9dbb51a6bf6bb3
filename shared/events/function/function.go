// Package function runs an event function as its own container, the way
// Cloud Run and Knative run it: functions-framework-go serving one handler
// on $PORT, Pub/Sub push requests arriving at /projects/P/topics/T.
package function

import (
	"context"
	"log/slog"
	"os"
	"strconv"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/events"
	"github.com/shopfn/shopfn/shared/serve"
	"github.com/shopfn/shopfn/shared/telemetry"
)

// Main sets up a function from its configuration and serves it until the
// process ends, as an HTTP function (see events.Function for why). open builds the handler (and whatever it holds open) once;
// cfg is logged at start with secrets masked.
//
// The framework's server has no graceful shutdown: a delivery cut short by
// SIGTERM is not acknowledged, so Pub/Sub delivers it again (handlers are
// idempotent).
func Main(ctx context.Context, name string, p serve.Platform, cfg any, open func(ctx context.Context, d *serve.Deployment, log *slog.Logger) (events.Handler, error)) error {
	log := telemetry.NewLogger(os.Stdout, p.LogLevel, p.ProjectID).With("service", name)
	d, err := serve.StartClient(ctx, name, p)
	if err != nil {
		return err
	}
	defer d.Close()
	h, err := open(ctx, d, log)
	if err != nil {
		return err
	}
	if err := funcframework.RegisterHTTPFunctionContext(ctx, "/", events.Function(name, log, h)); err != nil {
		return err
	}
	log.Info("starting", "config", config.LogValue(cfg))
	err = funcframework.StartHostPort("", strconv.Itoa(p.Port))
	log.Error("stopped", "error", err.Error())
	return err
}
