package order_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/shopfn/shopfn/functions/order"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	"github.com/shopfn/shopfn/shared/auth"
)

// BenchmarkCreateOrder places orders to CONFIRMED through the whole saga,
// against the real catalog, inventory and payment services, with 64
// concurrent customers' calls.
func BenchmarkCreateOrder(b *testing.B) {
	s := startSystem(b, func(c *order.Config) { c.RateLimit, c.RateBurst = 1e9, 1e9 })
	mug := s.product(b, "MUG-1", 1000, "EUR", 100_000_000)
	alice := s.as(b, "usr_alice", auth.RoleCustomer)
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := s.orders.CreateOrder(alice, request(fmt.Sprintf("key-bench-%d", n.Add(1)), "tok_visa", line(mug, 1)))
			if err != nil || resp.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
				b.Errorf("CreateOrder = %v, %v", resp.GetOrder().GetState(), err)
				return
			}
		}
	})
}
