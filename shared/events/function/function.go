// Package function runs an event function as its own container, the way
// Cloud Run and Knative run it: functions-framework-go serving one handler
// on $PORT, Pub/Sub push requests arriving at /projects/P/topics/T.
package function

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/events"
	"github.com/shopfn/shopfn/shared/serve"
	"github.com/shopfn/shopfn/shared/telemetry"
)

// Main sets up a function from its configuration and serves it as an HTTP
// function (see events.Function for why) until ctx ends (SIGTERM). open
// builds the handler (and whatever it holds open) once; cfg is logged at
// start with secrets masked.
//
// The framework's server has no graceful shutdown, so Main drains in front
// of it: once ctx ends, new deliveries are answered 503 (Pub/Sub delivers
// them again, to another instance), the ones running get ShutdownGrace to
// finish, and Main returns. A delivery still running then is cut short and
// delivered again (handlers are idempotent).
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
	var push PushConfig
	if err := config.Load(&push); err != nil {
		return err
	}
	handler, err := Guard(push, d, events.Function(name, log, h))
	if err != nil {
		return err
	}
	dr := &drainer{h: handler}
	if err := funcframework.RegisterHTTPFunctionContext(ctx, "/", dr.ServeHTTP); err != nil {
		return err
	}
	log.Info("starting", "config", config.LogValue(cfg), "push_auth", push.Mode)
	served := make(chan error, 1)
	go func() { served <- funcframework.StartHostPort("", strconv.Itoa(p.Port)) }()
	select {
	case err := <-served:
		log.Error("stopped", "error", err.Error())
		return err
	case <-ctx.Done():
	}
	log.Info("draining", "grace", p.ShutdownGrace.String())
	if !dr.drain(p.ShutdownGrace) {
		log.Warn("grace period over: the deliveries still running will be delivered again", "running", dr.inflight.Load())
	}
	log.Info("stopped")
	return nil
}

// drainer counts the requests its handler is serving and, once draining,
// refuses new ones with 503.
type drainer struct {
	h        http.Handler
	inflight atomic.Int64
	draining atomic.Bool
}

func (d *drainer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.inflight.Add(1) // before the check, so drain sees it or it sees drain
	defer d.inflight.Add(-1)
	if d.draining.Load() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	d.h.ServeHTTP(w, r)
}

// drainPoll is how often drain looks at the requests in flight.
const drainPoll = 10 * time.Millisecond

// drain refuses new requests and waits until none is in flight (true) or
// grace has passed (false).
func (d *drainer) drain(grace time.Duration) bool {
	d.draining.Store(true)
	deadline := time.Now().Add(grace)
	for d.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(drainPoll)
	}
	return true
}

// PushConfig says how a function authenticates push requests.
type PushConfig struct {
	// Mode is events.PushAuthShopfn (a service token of events.PushIdentity
	// signed with shopfn's keys: the dev push bridge), PushAuthCloudRun
	// (Cloud Run checked Pub/Sub's OIDC token already) or PushAuthNone (the
	// emulator's unsigned pushes).
	Mode string `envconfig:"SHOPFN_PUSH_AUTH" default:"shopfn"`
}

// Guard wraps a function's handler with the push authentication cfg asks
// for; d's keys verify shopfn tokens.
func Guard(cfg PushConfig, d *serve.Deployment, h http.Handler) (http.Handler, error) {
	switch cfg.Mode {
	case events.PushAuthCloudRun, events.PushAuthNone:
		return h, nil
	case events.PushAuthShopfn:
	default:
		return nil, fmt.Errorf("SHOPFN_PUSH_AUTH=%q: want %s, %s or %s", cfg.Mode, events.PushAuthShopfn, events.PushAuthCloudRun, events.PushAuthNone)
	}
	v := d.Keys.NewVerifier(d.Platform.Auth)
	return events.Authenticated(func(r *http.Request) error {
		p, err := v.Verify(events.BearerToken(r))
		if err != nil {
			return events.ErrPushUnauthenticated
		}
		if p.Role != auth.RoleService || p.Subject != events.PushIdentity {
			return events.ErrPushForbidden
		}
		return nil
	}, h), nil
}
