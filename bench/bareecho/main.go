// Command bareecho is the reference every benchmark compares a shopfn
// deployable against: a bare grpc-go server implementing
// shopfn.bench.v1.EchoService, with no interceptors, health service,
// reflection or telemetry linked in.
//
// It listens on :$PORT (default 8080) and stops gracefully on SIGTERM or
// SIGINT, as Cloud Run and Knative expect.
package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	benchv1 "github.com/shopfn/shopfn/proto/shopfn/bench/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bareecho:", err)
		os.Exit(1)
	}
}

// run serves until ctx is cancelled, then drains in-flight RPCs.
func run(ctx context.Context) error {
	addr := ":" + cmp.Or(os.Getenv("PORT"), "8080")
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}

	srv := grpc.NewServer()
	benchv1.RegisterEchoServiceServer(srv, echoServer{})

	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	srv.GracefulStop()
	return nil
}

// echoServer answers every Echo with the request's message.
type echoServer struct {
	benchv1.UnimplementedEchoServiceServer
}

// Echo returns the request's message.
func (echoServer) Echo(_ context.Context, req *benchv1.EchoRequest) (*benchv1.EchoResponse, error) {
	return &benchv1.EchoResponse{Message: req.GetMessage()}, nil
}
