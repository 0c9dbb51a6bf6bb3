package user_test

import (
	"testing"

	"github.com/shopfn/shopfn/functions/user"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
)

// BenchmarkGetUser measures GetUser through the whole chain (telemetry,
// auth, validation, store) over a loopback connection, with 64 concurrent
// callers as in the throughput benchmark.
func BenchmarkGetUser(b *testing.B) {
	e := start(b, func(c *user.Config) { c.RateLimit = 1e9; c.RateBurst = 1e9 })
	u := e.register(b, "bench@example.com", "Bench")
	ctx := e.login(b, "bench@example.com")
	req := &userv1.GetUserRequest{UserId: u.GetId()}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.client.GetUser(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
