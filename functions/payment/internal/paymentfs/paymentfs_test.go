package paymentfs_test

import (
	"context"
	"os"
	"testing"

	"github.com/shopfn/shopfn/functions/payment/internal/charge/storetest"
	"github.com/shopfn/shopfn/functions/payment/internal/paymentfs"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestConformance runs the payment store suite on the Firestore emulator,
// each case in a project of its own.
func TestConformance(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s := paymentfs.Open(context.Background(), testenv.ProjectID(t), "shopfn-payment")
		t.Cleanup(func() { s.Close() })
		<-s.Done()
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		return s
	})
}
