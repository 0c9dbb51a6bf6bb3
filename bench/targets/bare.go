package targets

import (
	"context"

	"google.golang.org/grpc"

	"github.com/shopfn/shopfn/bench/benchkit"
	benchv1 "github.com/shopfn/shopfn/proto/shopfn/bench/v1"
)

// echoPayload is the message of every throughput Echo: small, like most of
// our unary requests, so the figure is dominated by per-RPC overhead.
const echoPayload = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// Bare is the reference target: bench/bareecho, a grpc-go server with
// nothing else linked. Its probe is one Echo, its load the same Echo with a
// 64-byte payload.
func Bare() benchkit.Target {
	return benchkit.Target{
		Name:    "bare",
		Package: "./bench/bareecho",
		Probe: func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := benchv1.NewEchoServiceClient(cc).Echo(ctx, &benchv1.EchoRequest{Message: "probe"})
			return err
		},
		Call: func(_ context.Context, cc *grpc.ClientConn) (func(context.Context) error, error) {
			client := benchv1.NewEchoServiceClient(cc)
			req := &benchv1.EchoRequest{Message: echoPayload}
			return func(ctx context.Context) error {
				_, err := client.Echo(ctx, req)
				return err
			}, nil
		},
	}
}
