// Package dial opens the gRPC client connections that shopfn services and the
// shopfn CLI use to call each other.
//
// A connection made by Dial carries, from the caller down:
//
//   - a default deadline for unary calls whose context has none;
//   - a circuit breaker (one per connection) that fails calls fast with
//     codes.Unavailable and reason CIRCUIT_OPEN while the target is failing;
//   - the channel's own retries with backoff and retry throttling, configured
//     through the gRPC service config, only for the methods listed as
//     idempotent;
//   - OpenTelemetry traces and metrics for every attempt;
//   - TLS with the system roots for https:// targets, plaintext otherwise.
//
// Dial does no network I/O: the connection is made on the first call, so
// creating clients costs nothing at cold start.
package dial

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
)

const (
	// defaultTimeout bounds a unary call whose caller set no deadline. It
	// covers a callee's cold start on Cloud Run (instance scheduling can take
	// a few seconds) with room to spare, and is far below the platform's
	// request timeout, so a stuck dependency never holds a request for minutes.
	defaultTimeout = 5 * time.Second

	// maxMessageBytes is the largest message sent or received: twice
	// grpc-go's 4 MiB default, room for a full page of products; anything
	// bigger (images, bulk imports) is streamed in chunks. Keep it in step
	// with the server limit in shared/serve.
	maxMessageBytes = 8 << 20

	// keepaliveTime is how long a connection with active streams may be
	// silent before the client pings. Five minutes is grpc-go's default
	// server enforcement minimum: pinging more often gets the connection
	// closed with "too_many_pings". Idle connections are never pinged (Cloud
	// Run closes them anyway); this only catches dead peers under long-lived
	// streams such as WatchOrder.
	keepaliveTime = 5 * time.Minute

	// keepaliveTimeout is how long a ping may go unanswered before the
	// connection is considered dead.
	keepaliveTimeout = 20 * time.Second
)

// Options configures one connection. The zero value is usable: no method is
// retried, unary calls get a 5s default deadline, the breaker is on, and
// telemetry goes to the OpenTelemetry globals.
type Options struct {
	// Idempotent lists the full method names ("/pkg.Service/Method", the
	// generated *_FullMethodName constants) that the channel may retry.
	// Methods not listed are never retried by the channel.
	Idempotent []string

	// Retry is the retry policy for the Idempotent methods.
	Retry RetryPolicy

	// Throttling limits retries on the whole connection when many calls fail.
	Throttling RetryThrottling

	// DefaultTimeout is the deadline given to a unary call whose context has
	// none. Zero means 5s; a negative value disables it. Streams never get a
	// default deadline: WatchOrder and Chat are meant to stay open, so a
	// streaming caller sets its own deadline or cancels its context.
	DefaultTimeout time.Duration

	// Breaker configures the connection's circuit breaker.
	Breaker BreakerSettings

	// RootCAs verifies the server certificate of https:// targets. Nil means
	// the system roots. It is ignored for plaintext targets.
	RootCAs *x509.CertPool

	// TracerProvider, MeterProvider and Propagators are passed to otelgrpc.
	// Nil means the OpenTelemetry globals (no-ops unless set).
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagators    propagation.TextMapPropagator

	// PropagateOnly, set when no span or metric leaves the process, leaves
	// otelgrpc out: calls only carry the caller's trace context (with
	// Propagators, or the global propagator). otelgrpc with no-op providers
	// costs several allocations per call for nothing.
	PropagateOnly bool

	// PerRPCCredentials, when set, attaches credentials (such as an identity
	// token) to every call.
	PerRPCCredentials credentials.PerRPCCredentials

	// IDTokens adds a Google ID token for the target's URL to every call
	// (see IDTokens): what Cloud Run's run.invoker check needs between
	// services. The target must be https://.
	IDTokens bool

	// ExtraDialOptions are appended after the ones Dial builds, so they win
	// where they overlap.
	ExtraDialOptions []grpc.DialOption
}

// Dial returns a client connection to target, which is one of:
//
//   - "https://host[:port]": TLS (port 443 by default), verified against
//     Options.RootCAs or the system roots. This is how Cloud Run services
//     are called.
//   - "http://host[:port]" or "host:port": plaintext HTTP/2 (port 80 by
//     default for http://), as for Knative in-cluster calls and local dev.
//
// The authority (HTTP/2 :authority, and the TLS server name) is host[:port]
// as written, the way an HTTP client sends the Host header.
//
// Dial does not connect; the first call does. The caller closes the
// connection.
func Dial(target string, o Options) (*grpc.ClientConn, error) {
	addr, useTLS, authority, err := parseTarget(target)
	if err != nil {
		return nil, err
	}
	sc, err := serviceConfig(o.Idempotent, o.Retry, o.Throttling)
	if err != nil {
		return nil, err
	}

	timeout := o.DefaultTimeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	b := newBreaker(target, o.Breaker)

	opts := []grpc.DialOption{
		grpc.WithDefaultServiceConfig(sc),
		grpc.WithChainUnaryInterceptor(deadlineInterceptor(timeout), b.unary),
		grpc.WithChainStreamInterceptor(b.stream),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessageBytes),
			grpc.MaxCallSendMsgSize(maxMessageBytes),
		),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:    keepaliveTime,
			Timeout: keepaliveTimeout,
		}),
		grpc.WithAuthority(authority),
	}
	opts = append(opts, instrument(o)...)
	if n := o.Retry.maxAttempts(); n > grpcMaxAttempts {
		opts = append(opts, grpc.WithMaxCallAttempts(n))
	}
	if useTLS {
		opts = append(opts,
			grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
				RootCAs:    o.RootCAs,
				MinVersion: tls.VersionTLS12,
			})),
		)
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if o.IDTokens {
		ids, err := NewIDTokens(target)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(ids))
	}
	if o.PerRPCCredentials != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(o.PerRPCCredentials))
	}
	opts = append(opts, o.ExtraDialOptions...)

	conn, err := grpc.NewClient("dns:///"+addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return conn, nil
}

// parseTarget splits a Dial target into the host:port to resolve, whether to
// use TLS, and the authority to send.
func parseTarget(target string) (addr string, useTLS bool, authority string, err error) {
	if target == "" {
		return "", false, "", errors.New("empty target")
	}
	if !strings.Contains(target, "://") {
		if _, _, err := net.SplitHostPort(target); err != nil {
			return "", false, "", fmt.Errorf("target %q: want host:port: %w", target, err)
		}
		return target, false, target, nil
	}

	u, err := url.Parse(target)
	if err != nil {
		return "", false, "", fmt.Errorf("parse target: %w", err)
	}
	var port string
	switch u.Scheme {
	case "https":
		useTLS, port = true, "443"
	case "http":
		port = "80"
	default:
		return "", false, "", fmt.Errorf("target %q: unsupported scheme %q, want https or http", target, u.Scheme)
	}
	if u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false, "", fmt.Errorf("target %q: want %s://host[:port]", target, u.Scheme)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	return net.JoinHostPort(u.Hostname(), port), useTLS, u.Host, nil
}

// instrument returns otelgrpc's stats handler, or with PropagateOnly the
// interceptors that put the trace context into each call's metadata.
func instrument(o Options) []grpc.DialOption {
	if !o.PropagateOnly {
		return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelOptions(o)...))}
	}
	p := o.Propagators
	if p == nil {
		p = otel.GetTextMapPropagator()
	}
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(withTraceContext(ctx, p), method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(withTraceContext(ctx, p), desc, cc, method, opts...)
		}),
	}
}

// withTraceContext adds the trace context of ctx (if any) to its outgoing
// metadata.
func withTraceContext(ctx context.Context, p propagation.TextMapPropagator) context.Context {
	var c outgoingCarrier
	p.Inject(ctx, &c)
	if len(c) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, c...)
}

// outgoingCarrier collects the propagator's key-value pairs.
type outgoingCarrier []string

func (c outgoingCarrier) Get(string) string { return "" }
func (c *outgoingCarrier) Set(k, v string)  { *c = append(*c, k, v) }
func (c outgoingCarrier) Keys() []string    { return nil }

// otelOptions passes on the telemetry providers that are set.
func otelOptions(o Options) []otelgrpc.Option {
	var opts []otelgrpc.Option
	if o.TracerProvider != nil {
		opts = append(opts, otelgrpc.WithTracerProvider(o.TracerProvider))
	}
	if o.MeterProvider != nil {
		opts = append(opts, otelgrpc.WithMeterProvider(o.MeterProvider))
	}
	if o.Propagators != nil {
		opts = append(opts, otelgrpc.WithPropagators(o.Propagators))
	}
	return opts
}
