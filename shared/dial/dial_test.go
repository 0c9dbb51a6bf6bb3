package dial_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	benchv1 "github.com/shopfn/shopfn/proto/shopfn/bench/v1"
	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	"github.com/shopfn/shopfn/shared/dial"
)

// waitLimit bounds every wait for something the server does, so a broken
// test fails instead of hanging. It is not a timing assertion.
const waitLimit = 10 * time.Second

// echoServer is an EchoService whose answers the test controls.
type echoServer struct {
	benchv1.UnimplementedEchoServiceServer
	calls atomic.Int64
	// handle decides the answer of call number n (from 1); nil means success.
	handle func(ctx context.Context, n int64) error
}

func (s *echoServer) Echo(ctx context.Context, req *benchv1.EchoRequest) (*benchv1.EchoResponse, error) {
	n := s.calls.Add(1)
	if s.handle != nil {
		if err := s.handle(ctx, n); err != nil {
			return nil, err
		}
	}
	return &benchv1.EchoResponse{Message: req.GetMessage()}, nil
}

// healthServer is a Health service whose Watch (a server stream) the test
// controls.
type healthServer struct {
	healthpb.UnimplementedHealthServer
	calls atomic.Int64
	watch func(ctx context.Context, n int64, send func() error) error
}

func (s *healthServer) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	n := s.calls.Add(1)
	send := func() error {
		return stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
	}
	return s.watch(stream.Context(), n, send)
}

// serve starts a gRPC server on a loopback port with the given services and
// returns its address.
func serve(t *testing.T, echo *echoServer, health *healthServer, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer(opts...)
	if echo != nil {
		benchv1.RegisterEchoServiceServer(srv, echo)
	}
	if health != nil {
		healthpb.RegisterHealthServer(srv, health)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func mustDial(t *testing.T, target string, o dial.Options) *grpc.ClientConn {
	t.Helper()
	conn, err := dial.Dial(target, o)
	if err != nil {
		t.Fatalf("Dial(%q) = %v", target, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func echo(ctx context.Context, conn *grpc.ClientConn) error {
	_, err := benchv1.NewEchoServiceClient(conn).Echo(ctx, &benchv1.EchoRequest{Message: "hi"})
	return err
}

// errorInfo returns the ErrorInfo detail of err, or nil.
func errorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// failFirst fails the first n calls with code c.
func failFirst(n int64, c codes.Code) func(context.Context, int64) error {
	return func(_ context.Context, call int64) error {
		if call <= n {
			return status.Error(c, "injected")
		}
		return nil
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name       string
		idempotent []string
		handle     func(context.Context, int64) error
		want       codes.Code
		wantCalls  int64
	}{
		{
			name:       "idempotent method retried on Unavailable",
			idempotent: []string{benchv1.EchoService_Echo_FullMethodName},
			handle:     failFirst(2, codes.Unavailable),
			want:       codes.OK,
			wantCalls:  3,
		},
		{
			name:       "method not listed is not retried",
			idempotent: []string{healthpb.Health_Check_FullMethodName},
			handle:     failFirst(1, codes.Unavailable),
			want:       codes.Unavailable,
			wantCalls:  1,
		},
		{
			name:       "InvalidArgument is not retried",
			idempotent: []string{benchv1.EchoService_Echo_FullMethodName},
			handle:     failFirst(1, codes.InvalidArgument),
			want:       codes.InvalidArgument,
			wantCalls:  1,
		},
		{
			name:       "DeadlineExceeded from the server is not retried",
			idempotent: []string{benchv1.EchoService_Echo_FullMethodName},
			handle:     failFirst(1, codes.DeadlineExceeded),
			want:       codes.DeadlineExceeded,
			wantCalls:  1,
		},
		{
			name:       "attempts stop at MaxAttempts",
			idempotent: []string{benchv1.EchoService_Echo_FullMethodName},
			handle:     failFirst(100, codes.Unavailable),
			want:       codes.Unavailable,
			wantCalls:  4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &echoServer{handle: tt.handle}
			conn := mustDial(t, serve(t, srv, nil), dial.Options{Idempotent: tt.idempotent})

			err := echo(context.Background(), conn)
			if got := status.Code(err); got != tt.want {
				t.Errorf("Echo() = %v, want code %v", err, tt.want)
			}
			if got := srv.calls.Load(); got != tt.wantCalls {
				t.Errorf("server saw %d attempts, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestDefaultDeadline(t *testing.T) {
	serverErr := make(chan error, 1)
	srv := &echoServer{handle: func(ctx context.Context, _ int64) error {
		<-ctx.Done()
		serverErr <- ctx.Err()
		return ctx.Err()
	}}
	conn := mustDial(t, serve(t, srv, nil), dial.Options{DefaultTimeout: 100 * time.Millisecond})

	err := echo(context.Background(), conn)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("Echo() = %v, want code %v", err, codes.DeadlineExceeded)
	}
	select {
	case err := <-serverErr:
		if err == nil {
			t.Error("server context ended without an error")
		}
	case <-time.After(waitLimit):
		t.Fatal("server context was never cancelled")
	}
}

func TestDeadlineReachesServer(t *testing.T) {
	const long = time.Hour
	tests := []struct {
		name           string
		defaultTimeout time.Duration
		callerTimeout  time.Duration // 0: no caller deadline
		wantDeadline   bool
		wantBefore     time.Duration // the server's deadline is less than this from now
	}{
		{name: "default applies", defaultTimeout: long, wantDeadline: true, wantBefore: long + time.Minute},
		{name: "caller's shorter deadline wins", defaultTimeout: long, callerTimeout: 30 * time.Second, wantDeadline: true, wantBefore: time.Minute},
		{name: "caller's longer deadline is kept", defaultTimeout: time.Minute, callerTimeout: long, wantDeadline: true, wantBefore: long + time.Minute},
		{name: "disabled", defaultTimeout: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var deadline atomic.Pointer[time.Time]
			srv := &echoServer{handle: func(ctx context.Context, _ int64) error {
				if d, ok := ctx.Deadline(); ok {
					deadline.Store(&d)
				}
				return nil
			}}
			conn := mustDial(t, serve(t, srv, nil), dial.Options{DefaultTimeout: tt.defaultTimeout})

			ctx := context.Background()
			if tt.callerTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.callerTimeout)
				defer cancel()
			}
			start := time.Now()
			if err := echo(ctx, conn); err != nil {
				t.Fatalf("Echo() = %v", err)
			}

			got := deadline.Load()
			if (got != nil) != tt.wantDeadline {
				t.Fatalf("server saw deadline %v, want one: %v", got, tt.wantDeadline)
			}
			if got == nil {
				return
			}
			if limit := start.Add(tt.wantBefore); !got.Before(limit) {
				t.Errorf("server deadline %v, want before %v", got, limit)
			}
			if floor := start.Add(tt.wantBefore - 2*time.Minute); !got.After(floor) {
				t.Errorf("server deadline %v, want after %v", got, floor)
			}
		})
	}
}

func TestBreakerOpensAndCloses(t *testing.T) {
	const (
		threshold   = 3
		openTimeout = 200 * time.Millisecond
	)
	var failWith atomic.Uint32 // a codes.Code; OK means succeed
	failWith.Store(uint32(codes.Unavailable))
	srv := &echoServer{handle: func(context.Context, int64) error {
		if c := codes.Code(failWith.Load()); c != codes.OK {
			return status.Error(c, "injected")
		}
		return nil
	}}
	target := serve(t, srv, nil)
	conn := mustDial(t, target, dial.Options{
		// Retried methods would make the count of server calls harder to read.
		Breaker: dial.BreakerSettings{ConsecutiveFailures: threshold, OpenTimeout: openTimeout},
	})
	ctx := context.Background()

	for i := range threshold {
		if err := echo(ctx, conn); status.Code(err) != codes.Unavailable || errorInfo(err) != nil {
			t.Fatalf("call %d: Echo() = %v, want the server's Unavailable", i+1, err)
		}
	}

	err := echo(ctx, conn)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Echo() with breaker open = %v, want code %v", err, codes.Unavailable)
	}
	info := errorInfo(err)
	if info == nil || info.GetReason() != errorsv1.ErrorReason_CIRCUIT_OPEN.String() || info.GetDomain() != "shopfn" || info.GetMetadata()["target"] != target {
		t.Errorf("Echo() with breaker open: ErrorInfo = %v, want reason CIRCUIT_OPEN, domain shopfn, target %s", info, target)
	}
	if got := srv.calls.Load(); got != threshold {
		t.Errorf("server saw %d calls, want %d: the open breaker let a call through", got, threshold)
	}

	// The breaker turns half-open once openTimeout has passed; sleeping longer
	// is enough, however slow the machine.
	time.Sleep(2 * openTimeout)
	failWith.Store(uint32(codes.OK))
	for i := range 2 { // a half-open breaker lets only one call through
		if err := echo(ctx, conn); err != nil {
			t.Fatalf("call %d after the open timeout: Echo() = %v, want success", i+1, err)
		}
	}
	if got := srv.calls.Load(); got != threshold+2 {
		t.Errorf("server saw %d calls, want %d", got, threshold+2)
	}
}

func TestBreakerIgnoresClientErrors(t *testing.T) {
	for _, c := range []codes.Code{
		codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition,
		codes.PermissionDenied, codes.Unauthenticated, codes.Aborted, codes.ResourceExhausted,
	} {
		t.Run(c.String(), func(t *testing.T) {
			srv := &echoServer{handle: failFirst(100, c)}
			conn := mustDial(t, serve(t, srv, nil), dial.Options{
				Breaker: dial.BreakerSettings{ConsecutiveFailures: 2, FailureRatio: 0.1, MinRequests: 2},
			})
			const calls = 10
			for i := range calls {
				if err := echo(context.Background(), conn); status.Code(err) != c || errorInfo(err) != nil {
					t.Fatalf("call %d: Echo() = %v, want the server's %v", i+1, err, c)
				}
			}
			if got := srv.calls.Load(); got != calls {
				t.Errorf("server saw %d calls, want %d", got, calls)
			}
		})
	}
}

// TestBreakerIgnoresCancelledCalls checks that a call cancelled by its caller
// counts as neither failure nor success: cancellations between failures
// neither open the breaker nor reset its count of consecutive failures.
func TestBreakerIgnoresCancelledCalls(t *testing.T) {
	started := make(chan struct{})
	srv := &echoServer{handle: func(ctx context.Context, n int64) error {
		if n == 4 || n == 6 {
			return status.Error(codes.Unavailable, "injected")
		}
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}}
	conn := mustDial(t, serve(t, srv, nil), dial.Options{Breaker: dial.BreakerSettings{ConsecutiveFailures: 2}})

	cancelled := func() error {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-started:
			case <-time.After(waitLimit):
			}
			cancel()
		}()
		return echo(ctx, conn)
	}
	for i, want := range []codes.Code{
		codes.Canceled, codes.Canceled, codes.Canceled, // would open the breaker if counted as failures
		codes.Unavailable,
		codes.Canceled, // would reset the count if counted as a success
		codes.Unavailable,
	} {
		var err error
		if want == codes.Canceled {
			err = cancelled()
		} else {
			err = echo(context.Background(), conn)
		}
		if status.Code(err) != want || errorInfo(err) != nil {
			t.Fatalf("call %d: Echo() = %v, want the server's %v", i+1, err, want)
		}
	}
	// A call whose context is already cancelled never reaches the breaker.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := echo(ctx, conn); status.Code(err) != codes.Canceled {
		t.Fatalf("Echo(cancelled context) = %v, want code %v", err, codes.Canceled)
	}

	err := echo(context.Background(), conn)
	if errorInfo(err).GetReason() != errorsv1.ErrorReason_CIRCUIT_OPEN.String() {
		t.Errorf("Echo() after two failures = %v, want CIRCUIT_OPEN", err)
	}
	if got := srv.calls.Load(); got != 6 {
		t.Errorf("server saw %d calls, want 6", got)
	}
}

func TestBreakerStreams(t *testing.T) {
	var failWith atomic.Uint32
	failWith.Store(uint32(codes.Unavailable))
	hadDeadline := make(chan bool, 10)
	srv := &healthServer{watch: func(ctx context.Context, _ int64, send func() error) error {
		_, ok := ctx.Deadline()
		hadDeadline <- ok
		if c := codes.Code(failWith.Load()); c != codes.OK {
			return status.Error(c, "injected")
		}
		if err := send(); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}}
	conn := mustDial(t, serve(t, nil, srv), dial.Options{
		DefaultTimeout: time.Millisecond, // must not apply to streams
		Breaker:        dial.BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: time.Hour},
	})
	client := healthpb.NewHealthClient(conn)
	watch := func() error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	}

	// A stream that answers is a success and gets no default deadline.
	failWith.Store(uint32(codes.OK))
	if err := watch(); err != nil {
		t.Fatalf("Watch() = %v, want a message", err)
	}
	if <-hadDeadline {
		t.Error("the stream got a default deadline")
	}

	failWith.Store(uint32(codes.Unavailable))
	for i := range 2 {
		if err := watch(); status.Code(err) != codes.Unavailable || errorInfo(err) != nil {
			t.Fatalf("stream %d: Watch() = %v, want the server's Unavailable", i+1, err)
		}
	}
	err := watch()
	if info := errorInfo(err); status.Code(err) != codes.Unavailable || info.GetReason() != errorsv1.ErrorReason_CIRCUIT_OPEN.String() {
		t.Errorf("Watch() with breaker open = %v, want Unavailable with reason CIRCUIT_OPEN", err)
	}
	if got := srv.calls.Load(); got != 3 {
		t.Errorf("server saw %d streams, want 3", got)
	}
}

// TestBreakerHalfOpenCancelledStream checks that a half-open breaker's probe
// stream, abandoned by its caller before any answer and without a Recv, is
// reported to the breaker: otherwise the breaker would stay half-open and
// reject every later call.
func TestBreakerHalfOpenCancelledStream(t *testing.T) {
	const openTimeout = 100 * time.Millisecond
	started := make(chan struct{}, 1)
	srv := &healthServer{watch: func(ctx context.Context, n int64, send func() error) error {
		switch n {
		case 1:
			return status.Error(codes.Unavailable, "injected")
		case 2:
			started <- struct{}{}
			<-ctx.Done() // never answers
			return nil
		}
		return send()
	}}
	conn := mustDial(t, serve(t, nil, srv), dial.Options{
		Breaker: dial.BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: openTimeout},
	})
	client := healthpb.NewHealthClient(conn)

	stream, err := client.Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("Watch() = %v", err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("Recv() = %v, want code %v", err, codes.Unavailable)
	}

	time.Sleep(2 * openTimeout) // now half-open
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := client.Watch(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("probe Watch() = %v", err)
	}
	select {
	case <-started:
	case <-time.After(waitLimit):
		t.Fatal("the probe stream never reached the server")
	}
	cancel() // the caller gives up before any answer

	// The breaker learns of the cancellation asynchronously: poll, bounded.
	for limit := time.Now().Add(waitLimit); ; time.Sleep(10 * time.Millisecond) {
		stream, err := client.Watch(context.Background(), &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		if err == nil {
			break
		}
		if errorInfo(err).GetReason() != errorsv1.ErrorReason_CIRCUIT_OPEN.String() || time.Now().After(limit) {
			t.Fatalf("Watch() after the cancelled probe = %v, want success", err)
		}
	}
}

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "shopfn test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestHTTPSUsesTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	addr := serve(t, &echoServer{}, nil, grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	target := "https://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	t.Run("system roots reject the test CA", func(t *testing.T) {
		err := echo(ctx, mustDial(t, target, dial.Options{}))
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("Echo() = %v, want Unavailable with a certificate error", err)
		}
	})
	t.Run("RootCAs trusts the test CA", func(t *testing.T) {
		if err := echo(ctx, mustDial(t, target, dial.Options{RootCAs: pool})); err != nil {
			t.Errorf("Echo() = %v, want success", err)
		}
	})
	t.Run("plaintext to a TLS server fails", func(t *testing.T) {
		if err := echo(ctx, mustDial(t, "http://"+addr, dial.Options{})); err == nil {
			t.Error("Echo() = nil, want an error")
		}
	})
}

func TestDialErrors(t *testing.T) {
	tests := []struct {
		name   string
		target string
		opts   dial.Options
	}{
		{name: "empty", target: ""},
		{name: "unknown scheme", target: "ftp://x"},
		{name: "resolver scheme", target: "dns:///localhost:443"},
		{name: "https without host", target: "https://"},
		{name: "path", target: "https://example.com/v1"},
		{name: "query", target: "http://localhost:8080?x=1"},
		{name: "bare host without port", target: "localhost"},
		{name: "method name without slash", target: "localhost:1", opts: dial.Options{Idempotent: []string{"Echo"}}},
		{name: "method name without service", target: "localhost:1", opts: dial.Options{Idempotent: []string{"//Echo"}}},
		{name: "bad throttling", target: "localhost:1", opts: dial.Options{Throttling: dial.RetryThrottling{MaxTokens: 5000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := dial.Dial(tt.target, tt.opts)
			if err == nil {
				conn.Close()
				t.Errorf("Dial(%q, %+v) = nil error, want an error", tt.target, tt.opts)
			}
		})
	}
}

func TestDialDoesNotConnect(t *testing.T) {
	// Nothing listens on port 1: Dial must still succeed, since it does no
	// network I/O; the call is what fails.
	conn := mustDial(t, "127.0.0.1:1", dial.Options{
		Idempotent: []string{benchv1.EchoService_Echo_FullMethodName, benchv1.EchoService_Echo_FullMethodName},
		Retry:      dial.RetryPolicy{MaxAttempts: 7, RetryableCodes: []codes.Code{codes.Unavailable, codes.Aborted}},
	})
	err := echo(context.Background(), conn)
	if status.Code(err) != codes.Unavailable {
		t.Errorf("Echo() = %v, want code %v", err, codes.Unavailable)
	}
}
