package orderfs_test

import (
	"context"
	"os"
	"testing"

	"github.com/shopfn/shopfn/functions/order/internal/orderfs"
	"github.com/shopfn/shopfn/functions/order/internal/orders/storetest"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestStore runs the orders.Store conformance suite on the Firestore
// emulator, each case in a project of its own.
func TestStore(t *testing.T) {
	host := testenv.Firestore(t)
	testenv.SetFirestoreEnv(t, host)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s := orderfs.Open(context.Background(), testenv.ProjectID(t), "shopfn-order")
		t.Cleanup(func() { s.Close() })
		<-s.Done()
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		return s
	})
}
