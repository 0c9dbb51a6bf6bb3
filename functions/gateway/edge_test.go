package gateway_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/functions/gateway"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
)

// recordingCatalog is a stand-in catalog backend that records the metadata
// of each call and answers GetProduct("code-N") with gRPC code N and a
// message that must not reach the client, and no ErrorInfo: what a failing
// transport or a foreign service returns. It lets the test see exactly what
// the gateway sends a service, and drive every code through the gateway.
type recordingCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer
	mu sync.Mutex
	md []metadata.MD
}

const leakyMessage = "open /srv/secret/catalog.db: disk I/O error"

func (c *recordingCatalog) GetProduct(ctx context.Context, req *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c.mu.Lock()
	c.md = append(c.md, md)
	c.mu.Unlock()
	if n, ok := strings.CutPrefix(req.GetProductId(), "code-"); ok {
		code, _ := strconv.Atoi(n)
		return nil, status.Error(codes.Code(code), leakyMessage)
	}
	return &catalogv1.GetProductResponse{Product: &catalogv1.Product{Id: req.GetProductId(), Name: "Mug"}}, nil
}

func (c *recordingCatalog) last() metadata.MD {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.md[len(c.md)-1]
}

// startRecording runs the recording catalog and a gateway in front of it
// (the other services point nowhere).
func startRecording(t testing.TB) (*recordingCatalog, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &recordingCatalog{}
	srv := grpc.NewServer()
	catalogv1.RegisterCatalogServiceServer(srv, rc)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	var cfg gateway.Config
	load(t, &cfg)
	cfg.DataDir = t.TempDir()
	cfg.CatalogAddr = lis.Addr().String()
	return rc, startGateway(t, cfg)
}

func TestForwardsTokenRequestIDAndTraceContext(t *testing.T) {
	rc, url := startRecording(t)
	const (
		traceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
		traceparent = "00-" + traceID + "-00f067aa0ba902b7-01"
	)
	r := do(t, "GET", url+"/v1/products/prd_1", "tok.en.value", "",
		"X-Request-Id", "req-42", "Traceparent", traceparent, "Cookie", "session=secret", "X-Custom", "x")
	if r.status != http.StatusOK || r.str("product", "name") != "Mug" {
		t.Fatalf("GET through the gateway = %d %s", r.status, r.raw)
	}
	md := rc.last()
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer tok.en.value" {
		t.Errorf("authorization metadata = %q, want the caller's bearer token once", got)
	}
	if got := md.Get("x-request-id"); len(got) != 1 || got[0] != "req-42" {
		t.Errorf("x-request-id metadata = %q, want req-42", got)
	}
	if got := md.Get("traceparent"); len(got) != 1 || !strings.Contains(got[0], traceID) {
		t.Errorf("traceparent metadata = %q, want trace %s", got, traceID)
	}
	if got := md.Get("x-forwarded-for"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("x-forwarded-for metadata = %q, want the client address", got)
	}
	for k := range md {
		if strings.Contains(k, "cookie") || strings.Contains(k, "custom") {
			t.Errorf("header forwarded as metadata %q: %q", k, md[k])
		}
	}

	// Without a client id the gateway makes one, and sends the same.
	r = do(t, "GET", url+"/v1/products/prd_1", "", "")
	id := r.header.Get("X-Request-Id")
	if got := rc.last().Get("x-request-id"); !hex32.MatchString(id) || len(got) != 1 || got[0] != id {
		t.Errorf("generated request id %q, service got %q", id, got)
	}
	if got := rc.last().Get("authorization"); len(got) != 0 {
		t.Errorf("authorization metadata without a token = %q", got)
	}
}

// TestEveryCodeMapsToItsHTTPStatus drives every gRPC code through the
// gateway: the HTTP status, the code in the google.rpc.Status body, and an
// ErrorInfo reason for every code but DeadlineExceeded and Canceled; the
// service's message never reaches the client for the codes that mean a
// failure on the server side.
func TestEveryCodeMapsToItsHTTPStatus(t *testing.T) {
	_, url := startRecording(t)
	tests := []struct {
		code       codes.Code
		wantStatus int
		wantReason string
		hideMsg    bool
	}{
		{codes.Canceled, 499, "", false},
		{codes.Unknown, 500, "INTERNAL", true},
		{codes.InvalidArgument, 400, "INVALID_ARGUMENT", false},
		{codes.DeadlineExceeded, 504, "", false},
		{codes.NotFound, 404, "", false},
		{codes.AlreadyExists, 409, "", false},
		{codes.PermissionDenied, 403, "PERMISSION_DENIED", false},
		{codes.ResourceExhausted, 413, "MESSAGE_TOO_LARGE", true}, // a service's own limits carry RATE_LIMITED (429)
		{codes.FailedPrecondition, 400, "", false},
		{codes.Aborted, 409, "", false},
		{codes.OutOfRange, 400, "INVALID_ARGUMENT", false},
		{codes.Unimplemented, 501, "METHOD_NOT_ALLOWED", true},
		{codes.Internal, 500, "INTERNAL", true},
		{codes.Unavailable, 503, "DEPENDENCY_UNAVAILABLE", true},
		{codes.DataLoss, 500, "INTERNAL", true},
		{codes.Unauthenticated, 401, "TOKEN_INVALID", false},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			r := do(t, "GET", url+"/v1/products/code-"+strconv.Itoa(int(tt.code)), "", "")
			st := r.status_()
			if r.status != tt.wantStatus || st.Code != int(tt.code) || r.reason() != tt.wantReason {
				t.Errorf("GetProduct failing with %v = %d %s, want %d with code %d and reason %q", tt.code, r.status, r.raw, tt.wantStatus, tt.code, tt.wantReason)
			}
			if tt.hideMsg && strings.Contains(string(r.raw), "secret") {
				t.Errorf("the service's message reached the client: %s", r.raw)
			}
			if got := gateway.HTTPStatus(status.New(tt.code, "")); got != tt.wantStatus && tt.code != codes.ResourceExhausted {
				t.Errorf("HTTPStatus(%v) = %d, want %d", tt.code, got, tt.wantStatus)
			}
		})
	}
}
