package inventoryfs_test

import (
	"context"
	"os"
	"testing"

	"github.com/shopfn/shopfn/functions/inventory/internal/inventoryfs"
	"github.com/shopfn/shopfn/functions/inventory/internal/stock/storetest"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestStore runs the stock.Store conformance suite on the Firestore
// emulator, each case in a project of its own.
func TestStore(t *testing.T) {
	host := testenv.Firestore(t)
	testenv.SetFirestoreEnv(t, host)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s := inventoryfs.Open(context.Background(), testenv.ProjectID(t), "shopfn-inventory")
		t.Cleanup(func() { s.Close() })
		<-s.Done()
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		return s
	})
}
