package support_test

import (
	"fmt"
	"testing"

	"github.com/shopfn/shopfn/functions/support"
	supportv1 "github.com/shopfn/shopfn/proto/shopfn/support/v1"
)

// BenchmarkHistory measures a customer's History of a ticket room, one
// page of 50, through the whole chain (telemetry, auth, validation, the
// ownership check, the store) over a loopback connection, with 64
// concurrent callers as in the throughput benchmark.
func BenchmarkHistory(b *testing.B) {
	e := start(b, func(c *support.Config) { c.RateLimit = 1e9; c.RateBurst = 1e9 })
	room := "ticket:bench"
	p, _ := e.join(b, e.ann, &supportv1.JoinRoom{RoomId: room})
	for i := range 50 {
		p.post(fmt.Sprintf("Message %d: my order arrived with a cracked lid; could you send a replacement?", i+1), "")
	}
	p.expect(50, 1)
	req := &supportv1.HistoryRequest{RoomId: room, PageSize: 50}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.support.History(e.ann.ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
