package inventory_test

import (
	"context"
	"os"
	"testing"

	"github.com/shopfn/shopfn/functions/inventory"
	"github.com/shopfn/shopfn/functions/inventory/internal/inventoryfs"
	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/serve"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestFirestoreStore runs the service with SHOPFN_STORE=firestore on the
// emulator through its main flow; a second instance on the same database
// sees the first one's data (no instance caches).
func TestFirestoreStore(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	project := testenv.ProjectID(t)
	onFirestore := func(c *inventory.Config) {
		c.Store, c.ProjectID = serve.StoreFirestore, project
		c.LowStockThreshold = 5
	}
	e := start(t, onFirestore)
	e.setStock(t, "SKU-1", 10)
	e.reserve(t, "ord_1", line("SKU-1", 7))
	if again := e.reserve(t, "ord_1", line("SKU-1", 7)); again.GetState() != inventoryv1.ReservationState_RESERVATION_STATE_RESERVED {
		t.Errorf("Reserve(ord_1) again = %v, want the same reservation", again)
	}
	e.wantStock(t, "SKU-1", 10, 7)

	e2 := start(t, onFirestore)
	e2.wantStock(t, "SKU-1", 10, 7)
	if _, err := e2.client.Commit(e2.service, &inventoryv1.CommitRequest{OrderId: "ord_1"}); err != nil {
		t.Fatalf("Commit on the second instance = %v", err)
	}
	e.wantStock(t, "SKU-1", 3, 0)
	if _, err := e.client.Release(e.service, &inventoryv1.ReleaseRequest{OrderId: "ord_1"}); err != nil {
		t.Fatalf("Release = %v", err)
	}
	e2.wantStock(t, "SKU-1", 10, 0)

	// The low-stock event of the Reserve is in the database's outbox.
	s := inventoryfs.Open(context.Background(), project, e.cfg.FirestoreDatabaseName(inventory.Name))
	defer s.Close()
	ob, err := s.Outbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ob.Unsent(context.Background(), 10)
	if err != nil || len(rows) != 1 || rows[0].Type != outbox.TypeLowStock || rows[0].Subject != "SKU-1" {
		t.Errorf("outbox = %+v, %v; want one low-stock event of SKU-1", rows, err)
	}
}
