package catalog_test

import (
	"context"
	"testing"

	"github.com/shopfn/shopfn/functions/catalog"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
)

func benchEnv(b *testing.B, products int) (*env, []*catalogv1.Product) {
	e := start(b, func(c *catalog.Config) { c.RateLimit = 1e9; c.RateBurst = 1e9 })
	if _, err := e.bulkImport(e.admin, items("BENCH", products)); err != nil {
		b.Fatal(err)
	}
	got, err := e.client.ListProducts(e.customer, &catalogv1.ListProductsRequest{PageSize: 100})
	if err != nil {
		b.Fatal(err)
	}
	return e, got.GetProducts()
}

// BenchmarkGetProduct measures an anonymous GetProduct through the whole
// chain over a loopback connection, with 64 concurrent callers as in the
// throughput benchmark.
func BenchmarkGetProduct(b *testing.B) {
	e, ps := benchEnv(b, 500)
	req := &catalogv1.GetProductRequest{ProductId: ps[50].GetId()}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.client.GetProduct(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkListProducts measures the first page (20 products) of an
// anonymous listing, as BenchmarkGetProduct.
func BenchmarkListProducts(b *testing.B) {
	e, _ := benchEnv(b, 500)
	req := &catalogv1.ListProductsRequest{PageSize: 20}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.client.ListProducts(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBulkImport imports a stream of 10,000 new products per
// iteration and reports items/s.
func BenchmarkBulkImport(b *testing.B) {
	e := start(b, nil)
	b.ResetTimer()
	for i := range b.N {
		stream := items("B"+string(rune('A'+i%26))+string(rune('A'+i/26%26)), 10_000)
		got, err := e.bulkImport(e.admin, stream)
		if err != nil || got.GetCreated() != 10_000 {
			b.Fatalf("BulkImportProducts = %v, %v", got, err)
		}
	}
	b.ReportMetric(float64(10_000*b.N)/b.Elapsed().Seconds(), "items/s")
}
