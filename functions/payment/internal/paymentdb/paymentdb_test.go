package paymentdb_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shopfn/shopfn/functions/payment/internal/charge/storetest"
	"github.com/shopfn/shopfn/functions/payment/internal/paymentdb"
)

func open(t *testing.T) *paymentdb.Store {
	t.Helper()
	s := paymentdb.Open(context.Background(), filepath.Join(t.TempDir(), "payment.db"))
	t.Cleanup(func() { s.Close() })
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the payment store suite on SQLite.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t) })
}
