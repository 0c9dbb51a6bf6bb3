package dial

import (
	"context"
	"time"

	"google.golang.org/grpc"
)

// deadlineInterceptor gives a unary call whose context has no deadline one of
// timeout; a caller's own deadline, shorter or longer, is kept. A timeout of
// zero or less disables it.
func deadlineInterceptor(timeout time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok && timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
