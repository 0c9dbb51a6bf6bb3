package serve_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	supportv1 "github.com/shopfn/shopfn/proto/shopfn/support/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/serve"
	"github.com/shopfn/shopfn/shared/servetest"
	"github.com/shopfn/shopfn/shared/telemetry"
)

// support is a test implementation of a real contract with a unary and a
// bidirectional method, whose behaviour the tests steer through room ids.
type support struct {
	supportv1.UnimplementedSupportServiceServer
	mu      sync.Mutex
	calls   int
	chatted chan struct{}
	traces  chan trace.TraceID // when set, each call's trace id
}

func (s *support) History(ctx context.Context, req *supportv1.HistoryRequest) (*supportv1.HistoryResponse, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	if s.traces != nil {
		s.traces <- trace.SpanContextFromContext(ctx).TraceID()
	}
	switch req.GetRoomId() {
	case "ticket:panic":
		panic("boom")
	case "ticket:secret":
		return nil, errors.New("db password is hunter2")
	case "ticket:who":
		p, _ := auth.FromContext(ctx)
		return &supportv1.HistoryResponse{NextPageToken: p.Subject}, nil
	}
	return &supportv1.HistoryResponse{}, nil
}

// Chat echoes every posted text back until the client stops.
func (s *support) Chat(stream supportv1.SupportService_ChatServer) error {
	if s.chatted != nil {
		close(s.chatted)
	}
	if s.traces != nil {
		s.traces <- trace.SpanContextFromContext(stream.Context()).TraceID()
	}
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if req.GetPost() != nil {
			if err := stream.Send(&supportv1.ChatResponse{Kind: &supportv1.ChatResponse_Message{Message: &supportv1.ChatMessage{Text: req.GetPost().GetText()}}}); err != nil {
				return err
			}
		}
	}
}

type env struct {
	addr   string
	client supportv1.SupportServiceClient
	health healthpb.HealthClient
	signer *auth.Signer
	impl   *support
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var policy = auth.Policy{
	supportv1.SupportService_History_FullMethodName: auth.Customer,
	supportv1.SupportService_Chat_FullMethodName:    auth.Customer,
}

func start(t *testing.T, cfg serve.Config, ac auth.Config, impl *support) *env {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer := auth.NewSigner(key, "shopfn", "shopfn", time.Hour)
	tel, err := telemetry.Setup(context.Background(), "test", telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv := serve.New(cfg, serve.Options{
		Name:      "test",
		Logger:    telemetry.NewLogger(logs, slog.LevelInfo, ""),
		Telemetry: tel,
		Policy:    policy,
		Verifier:  auth.NewVerifier([]ed25519.PublicKey{signer.Public()}, "shopfn", "shopfn"),
		Auth:      ac,
	})
	supportv1.RegisterSupportServiceServer(srv, impl)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cc.Close()
		<-done
	})
	return &env{
		addr:   lis.Addr().String(),
		client: supportv1.NewSupportServiceClient(cc), health: healthpb.NewHealthClient(cc),
		signer: signer, impl: impl, logs: logs, cancel: cancel, done: done,
	}
}

func defaults() serve.Config {
	return serve.Config{ShutdownGrace: 5 * time.Second, MaxRecvMsgBytes: 4 << 20, MaxSendMsgBytes: 4 << 20, Reflection: true}
}

func (e *env) as(t *testing.T, role auth.Role) context.Context {
	t.Helper()
	tok, _, err := e.signer.Issue(auth.Principal{Subject: "usr_1", Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return auth.WithBearer(context.Background(), tok)
}

func TestUnaryChain(t *testing.T) {
	e := start(t, defaults(), auth.Config{}, &support{})
	ctx := e.as(t, auth.RoleCustomer)

	got, err := e.client.History(ctx, &supportv1.HistoryRequest{RoomId: "ticket:who"})
	if err != nil || got.GetNextPageToken() != "usr_1" {
		t.Fatalf("History as usr_1 = %v, %v; want the principal usr_1 in the handler", got, err)
	}

	_, err = e.client.History(ctx, &supportv1.HistoryRequest{RoomId: "lobby"})
	servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	if v := apperr.FieldViolations(err); len(v) != 1 || v[0].Field != "room_id" {
		t.Errorf("violations = %v, want one on room_id", v)
	}

	_, err = e.client.History(context.Background(), &supportv1.HistoryRequest{RoomId: "ticket:1"})
	servetest.WantErr(t, err, codes.Unauthenticated, "TOKEN_MISSING")
	if e.impl.calls != 1 {
		t.Errorf("handler ran %d times, want 1 (invalid and unauthenticated calls must not reach it)", e.impl.calls)
	}
}

func TestPanicBecomesInternalAndServerKeepsServing(t *testing.T) {
	e := start(t, defaults(), auth.Config{}, &support{})
	ctx := e.as(t, auth.RoleCustomer)
	_, err := e.client.History(ctx, &supportv1.HistoryRequest{RoomId: "ticket:panic"})
	if status.Code(err) != codes.Internal || status.Convert(err).Message() != "internal error" {
		t.Fatalf("History(panic) = %v, want Internal \"internal error\"", err)
	}
	if _, err := e.client.History(ctx, &supportv1.HistoryRequest{RoomId: "ticket:1"}); err != nil {
		t.Fatalf("History after a panic = %v, want success", err)
	}
	if !strings.Contains(e.logs.String(), `"panic":"boom"`) {
		t.Errorf("panic not logged: %s", e.logs.String())
	}
}

func TestUnclassifiedErrorIsHiddenAndLoggedOnce(t *testing.T) {
	e := start(t, defaults(), auth.Config{}, &support{})
	_, err := e.client.History(e.as(t, auth.RoleCustomer), &supportv1.HistoryRequest{RoomId: "ticket:secret"})
	servetest.WantErr(t, err, codes.Internal, "INTERNAL")
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("client saw the internal error: %v", err)
	}
	if n := strings.Count(e.logs.String(), "hunter2"); n != 1 {
		t.Errorf("internal error logged %d times, want once:\n%s", n, e.logs.String())
	}
}

func TestMessageTooLarge(t *testing.T) {
	cfg := defaults()
	cfg.MaxRecvMsgBytes = 1024
	e := start(t, cfg, auth.Config{}, &support{})
	_, err := e.client.History(e.as(t, auth.RoleCustomer), &supportv1.HistoryRequest{RoomId: "ticket:1", PageToken: strings.Repeat("x", 2048)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("History(2 KB) with a 1 KB limit = %v, want ResourceExhausted", err)
	}
	if e.impl.calls != 0 {
		t.Errorf("handler ran for an oversized message")
	}
}

func TestRateLimit(t *testing.T) {
	e := start(t, defaults(), auth.Config{RateLimit: 1, RateBurst: 2}, &support{})
	ctx := e.as(t, auth.RoleCustomer)
	var err error
	for range 3 {
		_, err = e.client.History(ctx, &supportv1.HistoryRequest{RoomId: "ticket:1"})
	}
	servetest.WantErr(t, err, codes.ResourceExhausted, "RATE_LIMITED")
}

func TestEveryStreamMessageIsValidated(t *testing.T) {
	e := start(t, defaults(), auth.Config{}, &support{})
	stream, err := e.client.Chat(e.as(t, auth.RoleCustomer))
	if err != nil {
		t.Fatal(err)
	}
	send := func(r *supportv1.ChatRequest) {
		if err := stream.Send(r); err != nil && err != io.EOF {
			t.Fatal(err)
		}
	}
	send(&supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Join{Join: &supportv1.JoinRoom{RoomId: "order:o1"}}})
	send(&supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Post{Post: &supportv1.PostMessage{Text: "hello"}}})
	if got, err := stream.Recv(); err != nil || got.GetMessage().GetText() != "hello" {
		t.Fatalf("Recv = %v, %v; want the echo of hello", got, err)
	}
	send(&supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Post{Post: &supportv1.PostMessage{Text: ""}}})
	_, err = stream.Recv()
	servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	if v := apperr.FieldViolations(err); len(v) != 1 || v[0].Field != "post.text" {
		t.Errorf("violations = %v, want one on post.text", v)
	}
}

func TestStreamNeedsToken(t *testing.T) {
	e := start(t, defaults(), auth.Config{}, &support{})
	stream, err := e.client.Chat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	servetest.WantErr(t, err, codes.Unauthenticated, "TOKEN_MISSING")
}

func TestHealthIsPublic(t *testing.T) {
	e := start(t, defaults(), auth.Config{}, &support{})
	for _, svc := range []string{"", supportv1.SupportService_ServiceDesc.ServiceName} {
		got, err := e.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || got.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v, %v; want SERVING", svc, got, err)
		}
	}
}

func TestRefusesToStartWithoutPolicyForEveryMethod(t *testing.T) {
	tel, _ := telemetry.Setup(context.Background(), "test", telemetry.Config{})
	srv := serve.New(defaults(), serve.Options{
		Name: "test", Logger: slog.New(slog.DiscardHandler), Telemetry: tel,
		Policy:   auth.Policy{supportv1.SupportService_History_FullMethodName: auth.Customer},
		Verifier: auth.NewVerifier(nil, "shopfn", "shopfn"),
	})
	supportv1.RegisterSupportServiceServer(srv, &support{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	err = srv.Serve(context.Background(), lis)
	if err == nil || !strings.Contains(err.Error(), supportv1.SupportService_Chat_FullMethodName) {
		t.Fatalf("Serve with Chat missing from the policy = %v, want an error naming it", err)
	}
}

// TestShutdown: on cancel, health watchers see NOT_SERVING, and a stream
// that never ends is closed once the grace period is over.
func TestShutdown(t *testing.T) {
	cfg := defaults()
	cfg.ShutdownGrace = 200 * time.Millisecond
	impl := &support{chatted: make(chan struct{})}
	e := start(t, cfg, auth.Config{}, impl)

	watch, err := e.health.Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := watch.Recv(); err != nil || got.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first Watch = %v, %v; want SERVING", got, err)
	}
	stream, err := e.client.Chat(e.as(t, auth.RoleCustomer))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Join{Join: &supportv1.JoinRoom{RoomId: "order:o1"}}}); err != nil {
		t.Fatal(err)
	}
	<-impl.chatted

	e.cancel()
	if got, err := watch.Recv(); err != nil || got.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch after shutdown = %v, %v; want NOT_SERVING", got, err)
	}
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil after a drain", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return: an open stream held the server past its grace period")
	}
	if _, err := stream.Recv(); err == nil {
		t.Error("the open stream is still alive after shutdown")
	}
	e.done <- nil // for the cleanup
}
