package order_test

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/shopfn/shopfn/functions/order"
	"github.com/shopfn/shopfn/functions/order/internal/orderfs"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/serve"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestFirestoreStore runs the order service with SHOPFN_STORE=firestore on
// the emulator (the services it calls on SQLite) through its main flow:
// create and confirm, replay the key, list, cancel, with both events in
// the database's outbox.
func TestFirestoreStore(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	project := testenv.ProjectID(t)
	s := startSystem(t, func(c *order.Config) { c.Store, c.ProjectID = serve.StoreFirestore, project })
	mug := s.product(t, "MUG-1", 1000, "EUR", 10)
	alice := s.as(t, "usr_alice", auth.RoleCustomer)

	resp, err := s.orders.CreateOrder(alice, request("key-fs-1", "tok_visa", line(mug, 2)))
	if err != nil || resp.GetOrder().GetState() != confirmed {
		t.Fatalf("CreateOrder = %v, %v; want CONFIRMED", resp.GetOrder(), err)
	}
	id := resp.GetOrder().GetId()
	if again, err := s.orders.CreateOrder(alice, request("key-fs-1", "tok_visa", line(mug, 2))); err != nil || again.GetOrder().GetId() != id {
		t.Errorf("CreateOrder(same key) = %v, %v; want %s again", again.GetOrder(), err, id)
	}
	bob := s.as(t, "usr_bob", auth.RoleCustomer)
	if other, err := s.orders.CreateOrder(bob, request("key-fs-1", "tok_visa", line(mug, 1))); err != nil || other.GetOrder().GetId() == id {
		t.Errorf("CreateOrder(bob, alice's key) = %v, %v; want an order of bob's own", other.GetOrder(), err)
	}
	list, err := s.orders.ListOrders(alice, &orderv1.ListOrdersRequest{})
	if err != nil || len(list.GetOrders()) != 1 || list.GetOrders()[0].GetId() != id {
		t.Errorf("ListOrders(alice) = %v, %v; want only %s", list.GetOrders(), err, id)
	}
	got, err := s.orders.CancelOrder(alice, &orderv1.CancelOrderRequest{OrderId: id})
	if err != nil || got.GetOrder().GetState() != cancelled {
		t.Fatalf("CancelOrder = %v, %v; want CANCELLED", got.GetOrder(), err)
	}
	if st := s.stock(t, "MUG-1"); st.GetOnHand() != 9 {
		t.Errorf("MUG-1 stock = %v, want 9 (alice's restocked, bob's sold)", st)
	}
	if r, err := s.orders.Resume(s.as(t, "scheduler", auth.RoleService), &orderv1.ResumeRequest{}); err != nil || r.GetResumed() != 0 {
		t.Errorf("Resume = %v, %v; want nothing to resume", r, err)
	}

	st := orderfs.Open(context.Background(), project, s.orderCfg.FirestoreDatabaseName(order.Name))
	defer st.Close()
	ob, err := st.Outbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ob.Unsent(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, r := range rows {
		if r.OrderingKey == id {
			mine = append(mine, r.Type)
		}
	}
	slices.Sort(mine)
	if want := []string{outbox.TypeOrderCancelled, outbox.TypeOrderConfirmed}; len(rows) != 3 || !slices.Equal(mine, want) {
		t.Errorf("outbox = %+v; want %v keyed by %s, and bob's order.confirmed", rows, want, id)
	}
}
