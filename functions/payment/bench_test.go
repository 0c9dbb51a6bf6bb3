package payment_test

import (
	"strconv"
	"sync/atomic"
	"testing"

	paymentv1 "github.com/shopfn/shopfn/proto/shopfn/payment/v1"
)

// BenchmarkGetPayment measures GetPayment through the whole chain
// (telemetry, auth, validation, store) over a loopback connection, with 64
// concurrent callers as in the throughput benchmark.
func BenchmarkGetPayment(b *testing.B) {
	e := start(b, "")
	e.authorize(b, "ord_bench", 4999, "tok_visa")
	req := &paymentv1.GetPaymentRequest{OrderId: "ord_bench"}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.client.GetPayment(e.admin, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAuthorize measures Authorize of new orders (two SQLite writes
// each: the simulator's attempt count and the payment) with 64 concurrent
// callers.
func BenchmarkAuthorize(b *testing.B) {
	e := start(b, "")
	var seq atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.client.Authorize(e.svc, authorizeReq("ord_"+strconv.FormatInt(seq.Add(1), 10), 4999, "tok_visa")); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
