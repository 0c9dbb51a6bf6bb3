package inventory_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
)

// BenchmarkGetStock measures GetStock through the whole chain (telemetry,
// auth, validation, cache or store) over a loopback connection, with 64
// concurrent callers as in the throughput benchmark.
func BenchmarkGetStock(b *testing.B) {
	e := start(b, nil)
	e.setStock(b, "SKU-1", 1000)
	req := &inventoryv1.GetStockRequest{Sku: "SKU-1"}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.client.GetStock(e.customer, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReserve measures Reserve of one unit of one SKU under a new
// order id each time (one write transaction per call), with 64 concurrent
// callers.
func BenchmarkReserve(b *testing.B) {
	e := start(b, nil)
	e.setStock(b, "SKU-1", 1_000_000_000)
	var seq atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, err := e.client.Reserve(e.service, &inventoryv1.ReserveRequest{
				OrderId: fmt.Sprintf("ord_%d", seq.Add(1)), Lines: []*inventoryv1.Line{line("SKU-1", 1)},
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
