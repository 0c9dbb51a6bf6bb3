package supportfs_test

import (
	"context"
	"os"
	"testing"

	"github.com/shopfn/shopfn/functions/support/internal/chat"
	"github.com/shopfn/shopfn/functions/support/internal/chat/storetest"
	"github.com/shopfn/shopfn/functions/support/internal/supportfs"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestStore runs the chat.Store conformance suite on the Firestore
// emulator, each case in a project of its own.
func TestStore(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	storetest.Run(t, func(t *testing.T) chat.Store {
		s := supportfs.Open(context.Background(), testenv.ProjectID(t), "shopfn-support")
		t.Cleanup(func() { s.Close() })
		<-s.Done()
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		return s
	})
}
