// Package serve is the container contract every shopfn gRPC deployable
// follows: listen on $PORT with plaintext HTTP/2 (the platform terminates
// TLS), answer grpc.health.v1 and reflection, run one interceptor chain for
// unary and streaming calls, and drain on SIGTERM within the grace period.
//
// The chain, outermost first: telemetry (the otelgrpc stats handler, below
// the interceptors at the transport, when spans or metrics are exported;
// else an interceptor carrying the incoming trace context) → recovery (a
// panic becomes Internal and the server keeps serving) → error mapping
// (apperr.Status) → auth (the service's access policy) → validation (the
// generated ValidateAll of every request message, every message of a
// stream included).
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/stats"

	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/telemetry"
)

// Config is the serving part of a deployable's configuration.
type Config struct {
	// Port is where the server listens; Cloud Run and Knative set PORT.
	Port int `envconfig:"PORT" default:"8080"`
	// ShutdownGrace is how long open calls may finish after SIGTERM before
	// the server closes them. Cloud Run allows 10 s between SIGTERM and
	// SIGKILL; 8 s leaves time to flush telemetry.
	ShutdownGrace time.Duration `envconfig:"SHOPFN_SHUTDOWN_GRACE" default:"8s"`
	// MaxRecvMsgBytes caps one received message (ResourceExhausted above).
	MaxRecvMsgBytes int `envconfig:"SHOPFN_MAX_RECV_MSG_BYTES" default:"4194304"`
	// MaxSendMsgBytes caps one sent message.
	MaxSendMsgBytes int `envconfig:"SHOPFN_MAX_SEND_MSG_BYTES" default:"16777216"`
	// Reflection serves the gRPC reflection API (grpcurl list/describe).
	Reflection bool `envconfig:"SHOPFN_REFLECTION" default:"true"`
}

// Platform is the configuration every deployable shares; a deployable's
// Config embeds it next to its own settings.
type Platform struct {
	Config
	Telemetry
	Auth

	// DataDir holds local state: SQLite files, file buckets and the
	// development key.
	DataDir string `envconfig:"SHOPFN_DATA_DIR" default:".data"`

	// Store selects the database of a deployable that has one: "sqlite" (a
	// file in DataDir, for one instance: shopfn dev, tests, a single VM) or
	// "firestore" (FirestoreDatabase in the project GOOGLE_CLOUD_PROJECT;
	// the emulator when FIRESTORE_EMULATOR_HOST is set).
	Store string `envconfig:"SHOPFN_STORE" default:"sqlite"`
	// IDTokens sends a Google ID token for the callee with every call to an
	// https:// deployable, for Cloud Run's run.invoker check between
	// services (infra/terraform sets it; the metadata server mints them).
	IDTokens bool `envconfig:"SHOPFN_ID_TOKENS"`
	// FirestoreDatabase is the deployable's named Firestore database; empty
	// means "shopfn-<deployable>", as infra/terraform names them.
	FirestoreDatabase string `envconfig:"SHOPFN_FIRESTORE_DATABASE"`
}

// Telemetry and Auth name the embedded parts of Platform.
type (
	Telemetry = telemetry.Config
	Auth      = auth.Config
)

// Keepalive settings. Clients may ping every 10 s (grpc-go's default
// enforcement of 5 min would answer such clients with GOAWAY
// "too_many_pings"); connections idle for 5 min are closed, which costs a
// scale-to-zero instance nothing to re-open and frees it sooner.
var (
	keepaliveEnforcement = keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}
	keepaliveParams      = keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute, Time: time.Minute, Timeout: 20 * time.Second}
)

// streamWorkersPerCPU sizes the pool of handler goroutines. A call that
// finds every worker busy gets a fresh goroutine, whose stack then grows
// (copied at each doubling) through the call's deep frames; with 8 per CPU,
// 64 concurrent GetProducts spent 14% of the catalog's CPU growing stacks.
// At 32 per CPU the catalog's CPU per GetProduct fell from 1.2x to 1.07x
// bare's; idle RSS grew 0.4 MiB and cold start did not move.
const streamWorkersPerCPU = 32

// platformPolicy is the access to the methods serve registers itself.
func platformPolicy() auth.Policy {
	return auth.Policy{
		healthpb.Health_Check_FullMethodName:                                   auth.Public,
		healthpb.Health_Watch_FullMethodName:                                   auth.Public,
		healthpb.Health_List_FullMethodName:                                    auth.Public,
		reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      auth.Public,
		reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: auth.Public,
	}
}

// Options are what a deployable hands to New besides its Config.
type Options struct {
	// Name is the deployable's name, used in logs.
	Name string
	// Logger receives the server's logs.
	Logger *slog.Logger
	// Telemetry provides tracing and metrics for the stats handler.
	Telemetry *telemetry.Providers
	// Policy is the service's access policy; serve adds health and
	// reflection. A method missing from it is denied, and Serve refuses to
	// start while any registered method is missing.
	Policy auth.Policy
	// Verifier checks bearer tokens.
	Verifier *auth.Verifier
	// Auth carries the rate-limit and proxy settings.
	Auth auth.Config
	// Callers, when set, returns the only services whose tokens the
	// internal methods accept (by the token's subject); it runs on the
	// first internal call. Nil, or a nil result, accepts any service.
	Callers func() []string
}

func newAuthenticator(policy auth.Policy, o Options) *auth.Authenticator {
	a := auth.NewAuthenticator(policy, o.Verifier, o.Auth)
	if o.Callers != nil {
		a.OnlyCallersFrom(o.Callers)
	}
	return a
}

// Server is a gRPC server with shopfn's contract. It is a
// grpc.ServiceRegistrar: register services with the generated
// RegisterXxxServer functions, then call Serve.
type Server struct {
	cfg    Config
	name   string
	log    *slog.Logger
	grpc   *grpc.Server
	health *health.Server
	authn  *auth.Authenticator

	mu       sync.Mutex
	services []string
}

// New returns a server for o.
func New(cfg Config, o Options) *Server {
	policy := platformPolicy()
	for m, a := range o.Policy {
		policy[m] = a
	}
	s := &Server{
		cfg:    cfg,
		name:   o.Name,
		log:    o.Logger,
		health: health.NewServer(),
		authn:  newAuthenticator(policy, o),
	}
	tel := o.Telemetry
	unary := []grpc.UnaryServerInterceptor{s.recoverUnary, s.mapErrorsUnary, s.authUnary, validateUnary}
	streams := []grpc.StreamServerInterceptor{s.recoverStream, s.mapErrorsStream, s.authStream, validateStream}
	var instrument grpc.ServerOption = grpc.EmptyServerOption{}
	if tel.Exports() {
		instrument = grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tel.Tracer),
			otelgrpc.WithMeterProvider(tel.Meter),
			otelgrpc.WithPropagators(tel.Propagator),
			otelgrpc.WithFilter(notHealth),
		))
	} else {
		// Nothing is exported: only the trace context (see tracecontext.go).
		unary = append([]grpc.UnaryServerInterceptor{traceContextUnary(tel.Propagator)}, unary...)
		streams = append([]grpc.StreamServerInterceptor{traceContextStream(tel.Propagator)}, streams...)
	}
	s.grpc = grpc.NewServer(
		instrument,
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(streams...),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgBytes),
		grpc.MaxSendMsgSize(cfg.MaxSendMsgBytes),
		grpc.KeepaliveEnforcementPolicy(keepaliveEnforcement),
		grpc.KeepaliveParams(keepaliveParams),
		// Handlers run on reused goroutines whose stacks have already grown:
		// a fresh goroutine per call pays for growing its stack through the
		// store's deep calls (SQLite) on every request. When all workers are
		// busy, grpc-go starts a goroutine as usual.
		grpc.NumStreamWorkers(uint32(streamWorkersPerCPU*runtime.GOMAXPROCS(0))),
	)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if cfg.Reflection {
		reflection.Register(s.grpc)
	}
	return s
}

// notHealth keeps health checks (a probe every few seconds) out of traces
// and metrics.
func notHealth(info *stats.RPCTagInfo) bool {
	return !strings.HasPrefix(info.FullMethodName, "/grpc.health.v1.")
}

// RegisterService registers a service implementation; its health status is
// SERVING from Serve until shutdown.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.grpc.RegisterService(desc, impl)
	s.mu.Lock()
	s.services = append(s.services, desc.ServiceName)
	s.mu.Unlock()
}

// Dependency is something a deployable opens in the background while it
// starts serving, typically its store (see store.Opening): Done is closed
// once it is ready or has failed, and Err says why it failed.
type Dependency interface {
	Done() <-chan struct{}
	Err() error
}

// Serve answers calls on lis until ctx ends, then drains: health turns
// NOT_SERVING, no new calls are accepted, open calls get ShutdownGrace to
// finish, and whatever is still open then (a long stream) is closed. If a
// dependency fails to open, the server drains the same way at once and
// Serve returns that error: an instance without its store must not look
// healthy.
func (s *Server) Serve(ctx context.Context, lis net.Listener, deps ...Dependency) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	depErr := make(chan error, len(deps))
	for _, d := range deps {
		go func() {
			select {
			case <-d.Done():
				if err := d.Err(); err != nil {
					depErr <- err
					cancel()
				}
			case <-ctx.Done():
			}
		}()
	}
	err := s.serve(ctx, lis)
	select {
	case e := <-depErr:
		if parent.Err() != nil {
			// Stopped while a dependency was still opening: its failure is
			// the stop (a cancelled migration), not a fault.
			return err
		}
		return fmt.Errorf("%s: %w", s.name, e)
	default:
		return err
	}
}

func (s *Server) serve(ctx context.Context, lis net.Listener) error {
	if missing := s.authn.Policy().Missing(s.grpc); len(missing) > 0 {
		return fmt.Errorf("%s: no access policy for %s", s.name, strings.Join(missing, ", "))
	}
	s.mu.Lock()
	for _, svc := range s.services {
		s.health.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
	}
	s.mu.Unlock()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	// The first token check would otherwise pay for building Ed25519's
	// tables; build them now, in parallel with the first connection.
	go auth.Warm()
	served := make(chan error, 1)
	go func() { served <- s.grpc.Serve(lis) }()
	select {
	case err := <-served:
		return fmt.Errorf("%s: serve: %w", s.name, err)
	case <-ctx.Done():
	}

	s.log.Info("draining", "grace", s.cfg.ShutdownGrace.String())
	s.health.Shutdown()
	drained := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(drained)
	}()
	grace := time.NewTimer(s.cfg.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-drained:
	case <-grace.C:
		s.log.Warn("grace period over: closing open calls")
		s.grpc.Stop()
		<-drained
	}
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("%s: serve: %w", s.name, err)
	}
	return nil
}

// stopProfile ends the CPU profile of a -tags pprof build (see pprof.go).
var stopProfile = func() {}

// Listen opens the TCP listener for cfg.Port on all interfaces.
func Listen(cfg Config) (net.Listener, error) {
	lis, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return nil, fmt.Errorf("listen on port %d: %w", cfg.Port, err)
	}
	return lis, nil
}

// Main is the body of a deployable's main: it tunes the garbage collector
// (see gcPercent), logs start-up with cfg (the deployable's whole
// configuration, secrets masked), listens on $PORT and calls run until ctx
// ends.
func Main(ctx context.Context, name string, p Platform, cfg any, run func(context.Context, *slog.Logger, net.Listener) error) error {
	tuneGC()
	defer stopProfile()
	log := telemetry.NewLogger(os.Stdout, p.LogLevel, p.ProjectID).With("service", name)
	lis, err := Listen(p.Config)
	if err != nil {
		return err
	}
	log.Info("starting", "config", config.LogValue(cfg))
	if err := run(ctx, log, lis); err != nil {
		log.Error("stopped", "error", err.Error())
		return err
	}
	log.Info("stopped")
	return nil
}
