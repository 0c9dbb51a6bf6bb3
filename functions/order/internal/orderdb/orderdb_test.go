package orderdb_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shopfn/shopfn/functions/order/internal/orderdb"
	"github.com/shopfn/shopfn/functions/order/internal/orders/storetest"
)

// TestStore runs the orders.Store conformance suite on SQLite.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s := orderdb.Open(context.Background(), filepath.Join(t.TempDir(), "order.db"))
		t.Cleanup(func() { s.Close() })
		<-s.Done()
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		return s
	})
}
