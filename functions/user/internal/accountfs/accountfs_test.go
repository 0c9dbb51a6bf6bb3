package accountfs_test

import (
	"context"
	"os"
	"testing"

	"github.com/shopfn/shopfn/functions/user/internal/account"
	"github.com/shopfn/shopfn/functions/user/internal/account/storetest"
	"github.com/shopfn/shopfn/functions/user/internal/accountfs"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestConformance runs the account.Store suite on the Firestore emulator,
// each case in a project of its own.
func TestConformance(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	storetest.Run(t, func(t *testing.T) account.Store {
		s := accountfs.Open(context.Background(), testenv.ProjectID(t), "shopfn-user")
		t.Cleanup(func() { s.Close() })
		<-s.Done()
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		return s
	})
}
