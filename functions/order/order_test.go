package order_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/functions/order"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	paymentv1 "github.com/shopfn/shopfn/proto/shopfn/payment/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/servetest"
)

const (
	confirmed = orderv1.OrderState_ORDER_STATE_CONFIRMED
	cancelled = orderv1.OrderState_ORDER_STATE_CANCELLED
)

func TestPolicyCoversEveryMethod(t *testing.T) {
	if missing := order.Policy().Uncovered(&orderv1.OrderService_ServiceDesc); len(missing) > 0 {
		t.Errorf("methods without an access policy: %v", missing)
	}
}

func TestOrderConfirms(t *testing.T) {
	s := startSystem(t, nil)
	mug := s.product(t, "MUG-1", 1250, "EUR", 10)
	tea := s.product(t, "TEA-1", 499, "EUR", 10)
	alice := s.as(t, "usr_alice", auth.RoleCustomer)

	resp, err := s.orders.CreateOrder(alice, request("key-confirm-1", "tok_visa", line(mug, 2), line(tea, 1)))
	if err != nil {
		t.Fatalf("CreateOrder = %v", err)
	}
	o := resp.GetOrder()
	// 2×12.50 + 4.99 = 29.99; 20% tax = 6.00 (5.998 rounded); total 35.99.
	if o.GetState() != confirmed || o.GetSubtotal().GetAmountMinor() != 2999 || o.GetTax().GetAmountMinor() != 600 || o.GetTotal().GetAmountMinor() != 3599 {
		t.Fatalf("CreateOrder = %v, want CONFIRMED, subtotal 2999, tax 600, total 3599", o)
	}
	if o.GetUserId() != "usr_alice" || len(o.GetLines()) != 2 || o.GetLines()[0].GetLineTotal().GetAmountMinor() != 2500 {
		t.Errorf("order lines/user = %v", o)
	}
	if st := s.stock(t, "MUG-1"); st.GetOnHand() != 8 || st.GetReserved() != 0 {
		t.Errorf("MUG-1 stock = %v, want on hand 8, reserved 0", st)
	}
	p := s.paymentOf(t, o.GetId())
	if p.GetState() != paymentv1.PaymentState_PAYMENT_STATE_CAPTURED || p.GetCaptured().GetAmountMinor() != 3599 {
		t.Errorf("payment = %v, want captured 3599", p)
	}
	evs := s.events(t)
	if len(evs) != 1 || evs[0].Type != outbox.TypeOrderConfirmed || evs[0].OrderingKey != o.GetId() {
		t.Fatalf("outbox = %+v, want one order.confirmed keyed by the order", evs)
	}
	var ev eventsv1.OrderConfirmed
	if err := evs[0].Decode(&ev); err != nil || ev.GetOrderId() != o.GetId() || ev.GetTotal().GetAmountMinor() != 3599 {
		t.Errorf("event = %v, %v", &ev, err)
	}
}

func TestBadRequestsStoreNothing(t *testing.T) {
	s := startSystem(t, nil)
	eur := s.product(t, "EUR-1", 100, "EUR", 10)
	usd := s.product(t, "USD-1", 100, "USD", 10)
	alice := s.as(t, "usr_alice", auth.RoleCustomer)
	noAddr := request("key-bad-0001", "tok_visa", line(eur, 1))
	noAddr.ShippingAddress = nil
	tests := []struct {
		name   string
		req    *orderv1.CreateOrderRequest
		code   codes.Code
		reason string
	}{
		{"no address", noAddr, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"short key", request("k", "tok_visa", line(eur, 1)), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"zero quantity", request("key-bad-0002", "tok_visa", line(eur, 0)), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"product twice", request("key-bad-0003", "tok_visa", line(eur, 1), line(eur, 2)), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"unknown product", request("key-bad-0004", "tok_visa", line("prd_nope", 1)), codes.NotFound, "PRODUCT_NOT_FOUND"},
		{"two currencies", request("key-bad-0005", "tok_visa", line(eur, 1), line(usd, 1)), codes.InvalidArgument, "CURRENCY_MISMATCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.orders.CreateOrder(alice, tt.req)
			servetest.WantErr(t, err, tt.code, tt.reason)
		})
	}
	if _, err := s.orders.CreateOrder(context.Background(), request("key-bad-0006", "tok_visa", line(eur, 1))); status.Code(err) != codes.Unauthenticated {
		t.Errorf("CreateOrder without a token = %v, want Unauthenticated", err)
	}
	if n := s.orderCount(t); n != 0 {
		t.Errorf("orders stored after bad requests = %d, want 0", n)
	}
	if st := s.stock(t, "EUR-1"); st.GetReserved() != 0 || st.GetOnHand() != 10 {
		t.Errorf("stock after bad requests = %v", st)
	}
}

func TestIdempotencyKey(t *testing.T) {
	s := startSystem(t, nil)
	mug := s.product(t, "MUG-1", 1000, "EUR", 100)
	alice := s.as(t, "usr_alice", auth.RoleCustomer)
	req := request("key-same-0001", "tok_visa", line(mug, 1))

	const n = 20
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := s.orders.CreateOrder(alice, req)
			if err != nil {
				t.Errorf("concurrent CreateOrder = %v", err)
				return
			}
			ids <- resp.GetOrder().GetId()
		}()
	}
	wg.Wait()
	close(ids)
	var first string
	for id := range ids {
		if first == "" {
			first = id
		} else if id != first {
			t.Fatalf("one key gave orders %s and %s", first, id)
		}
	}
	if got := s.orderCount(t); got != 1 {
		t.Fatalf("orders stored = %d, want 1", got)
	}
	if st := s.stock(t, "MUG-1"); st.GetOnHand() != 99 {
		t.Errorf("stock after one order placed 20 times = %v, want on hand 99", st)
	}
	// The same key with another request is refused; another user's key is
	// their own.
	_, err := s.orders.CreateOrder(alice, request("key-same-0001", "tok_visa", line(mug, 2)))
	servetest.WantErr(t, err, codes.AlreadyExists, "IDEMPOTENCY_KEY_REUSED")
	if _, err := s.orders.CreateOrder(s.as(t, "usr_bob", auth.RoleCustomer), req); err != nil {
		t.Errorf("bob reusing alice's key = %v, want a new order", err)
	}
}

func TestFailuresCompensate(t *testing.T) {
	tests := []struct {
		name   string
		token  string
		qty    int32
		reason string
	}{
		{"declined", "tok_decline", 1, "PAYMENT_DECLINED"},
		{"not enough stock", "tok_visa", 50, "INSUFFICIENT_STOCK"},
		{"processor down beyond the retry budget", "tok_unavailable_9", 1, "PROCESSOR_UNAVAILABLE"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSystem(t, nil)
			mug := s.product(t, "MUG-1", 1000, "EUR", 10)
			resp, err := s.orders.CreateOrder(s.as(t, "usr_alice", auth.RoleCustomer), request(fmt.Sprintf("key-fail-%04d", i), tt.token, line(mug, tt.qty)))
			if err != nil {
				t.Fatalf("CreateOrder = %v", err)
			}
			o := resp.GetOrder()
			if o.GetState() != cancelled || o.GetCancelReason().String() != tt.reason {
				t.Fatalf("order = %v %v, want CANCELLED with %s", o.GetState(), o.GetCancelReason(), tt.reason)
			}
			if st := s.stock(t, "MUG-1"); st.GetReserved() != 0 || st.GetOnHand() != 10 {
				t.Errorf("stock after cancel = %v, want 10 on hand, none reserved", st)
			}
			if p := s.paymentOf(t, o.GetId()); p != nil && p.GetState() == paymentv1.PaymentState_PAYMENT_STATE_CAPTURED {
				t.Errorf("payment of a cancelled order = %v", p)
			}
			evs := s.events(t)
			if len(evs) != 1 || evs[0].Type != outbox.TypeOrderCancelled {
				t.Errorf("outbox = %+v, want one order.cancelled", evs)
			}
		})
	}
}

func TestTransientPaymentFailuresAreRetried(t *testing.T) {
	s := startSystem(t, nil)
	mug := s.product(t, "MUG-1", 1000, "EUR", 10)
	resp, err := s.orders.CreateOrder(s.as(t, "usr_alice", auth.RoleCustomer), request("key-transient-1", "tok_unavailable_2", line(mug, 1)))
	if err != nil || resp.GetOrder().GetState() != confirmed {
		t.Fatalf("CreateOrder with a processor failing twice = %v, %v; want CONFIRMED", resp.GetOrder(), err)
	}
}

// TestCrashBetweenSteps stops the saga right after each step is stored (a
// panic in the step hook: the handler dies, the order service is then
// stopped and started again), and checks that Resume finishes the order
// with no unit reserved twice and no payment captured twice.
func TestCrashBetweenSteps(t *testing.T) {
	for _, at := range []string{"RESERVED", "AUTHORIZED", "CANCELLING"} {
		t.Run("after "+at, func(t *testing.T) {
			var once sync.Once
			token, want := "tok_visa", confirmed
			if at == "CANCELLING" {
				token, want = "tok_decline", cancelled
			}
			s := startSystem(t, func(c *order.Config) {
				c.StepTimeout = time.Second // lease 3 s
				c.ResumeIdle = 0
				c.AfterStep = func(_ context.Context, state string) {
					if state == at {
						once.Do(func() { panic("simulated crash after " + at) })
					}
				}
			})
			mug := s.product(t, "MUG-1", 1000, "EUR", 10)
			alice := s.as(t, "usr_alice", auth.RoleCustomer)
			_, err := s.orders.CreateOrder(alice, request("key-crash-0001", token, line(mug, 3)))
			if status.Code(err) != codes.Internal {
				t.Fatalf("CreateOrder during the crash = %v, want Internal", err)
			}
			s.stops["order"]()
			s.orderCfg.AfterStep = nil
			s.startOrder(t)

			internal := s.as(t, "scheduler", auth.RoleService)
			var list *orderv1.ListOrdersResponse
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				// The crashed runner's lease must run out before Resume takes over.
				if _, err := s.orders.Resume(internal, &orderv1.ResumeRequest{}); err != nil {
					t.Fatalf("Resume = %v", err)
				}
				list, err = s.orders.ListOrders(alice, &orderv1.ListOrdersRequest{})
				if err != nil {
					t.Fatal(err)
				}
				if len(list.GetOrders()) == 1 && list.GetOrders()[0].GetState() == want {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if len(list.GetOrders()) != 1 || list.GetOrders()[0].GetState() != want {
				t.Fatalf("orders after Resume = %v, want one %v", list.GetOrders(), want)
			}
			o := list.GetOrders()[0]
			st := s.stock(t, "MUG-1")
			p := s.paymentOf(t, o.GetId())
			if want == confirmed {
				if st.GetOnHand() != 7 || st.GetReserved() != 0 {
					t.Errorf("stock = %v, want 7 on hand (3 sold once), none reserved", st)
				}
				if p.GetCaptured().GetAmountMinor() != o.GetTotal().GetAmountMinor() {
					t.Errorf("captured %v of total %v: captured twice or not at all", p.GetCaptured(), o.GetTotal())
				}
			} else if st.GetOnHand() != 10 || st.GetReserved() != 0 {
				t.Errorf("stock after a resumed cancellation = %v, want 10 on hand", st)
			}
			if evs := s.events(t); len(evs) != 1 {
				t.Errorf("outbox = %d events, want exactly 1", len(evs))
			}
		})
	}
}

func TestCancelConfirmedOrder(t *testing.T) {
	s := startSystem(t, nil)
	mug := s.product(t, "MUG-1", 1000, "EUR", 10)
	alice := s.as(t, "usr_alice", auth.RoleCustomer)
	resp, err := s.orders.CreateOrder(alice, request("key-cancel-001", "tok_visa", line(mug, 2)))
	if err != nil || resp.GetOrder().GetState() != confirmed {
		t.Fatalf("CreateOrder = %v, %v", resp, err)
	}
	id := resp.GetOrder().GetId()
	_, err = s.orders.CancelOrder(s.as(t, "usr_bob", auth.RoleCustomer), &orderv1.CancelOrderRequest{OrderId: id})
	servetest.WantErr(t, err, codes.NotFound, "ORDER_NOT_FOUND")

	for range 2 { // idempotent
		got, err := s.orders.CancelOrder(alice, &orderv1.CancelOrderRequest{OrderId: id})
		if err != nil || got.GetOrder().GetState() != cancelled {
			t.Fatalf("CancelOrder = %v, %v; want CANCELLED", got, err)
		}
	}
	if st := s.stock(t, "MUG-1"); st.GetOnHand() != 10 {
		t.Errorf("stock after cancelling a confirmed order = %v, want restocked to 10", st)
	}
	if p := s.paymentOf(t, id); p.GetState() != paymentv1.PaymentState_PAYMENT_STATE_REFUNDED {
		t.Errorf("payment = %v, want REFUNDED", p)
	}
	types := []string{}
	for _, e := range s.events(t) {
		types = append(types, e.Type)
	}
	if len(types) != 2 || types[0] != outbox.TypeOrderConfirmed || types[1] != outbox.TypeOrderCancelled {
		t.Errorf("events = %v, want confirmed then cancelled", types)
	}
}

func TestCustomersSeeOnlyTheirOrders(t *testing.T) {
	s := startSystem(t, nil)
	mug := s.product(t, "MUG-1", 1000, "EUR", 100)
	alice, bob := s.as(t, "usr_alice", auth.RoleCustomer), s.as(t, "usr_bob", auth.RoleCustomer)
	var aliceIDs []string
	for i := range 5 {
		resp, err := s.orders.CreateOrder(alice, request(fmt.Sprintf("key-alice-%04d", i), "tok_visa", line(mug, 1)))
		if err != nil {
			t.Fatal(err)
		}
		aliceIDs = append(aliceIDs, resp.GetOrder().GetId())
	}
	if _, err := s.orders.CreateOrder(bob, request("key-bob-00001", "tok_visa", line(mug, 1))); err != nil {
		t.Fatal(err)
	}
	_, err := s.orders.GetOrder(bob, &orderv1.GetOrderRequest{OrderId: aliceIDs[0]})
	servetest.WantErr(t, err, codes.NotFound, "ORDER_NOT_FOUND")
	if _, err := s.orders.GetOrder(s.admin(t), &orderv1.GetOrderRequest{OrderId: aliceIDs[0]}); err != nil {
		t.Errorf("admin GetOrder = %v", err)
	}

	// Alice pages through her own orders, newest first, 2 at a time.
	var seen []string
	token := ""
	for {
		page, err := s.orders.ListOrders(alice, &orderv1.ListOrdersRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.GetOrders() {
			seen = append(seen, o.GetId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(seen) != 5 {
		t.Fatalf("alice listed %d orders, want her 5", len(seen))
	}
	for i, id := range seen {
		if id != aliceIDs[4-i] {
			t.Errorf("page order = %v, want newest first %v", seen, aliceIDs)
			break
		}
	}
	all, err := s.orders.ListOrders(s.admin(t), &orderv1.ListOrdersRequest{PageSize: 100})
	if err != nil || len(all.GetOrders()) != 6 {
		t.Errorf("admin ListOrders = %d orders, %v; want 6", len(all.GetOrders()), err)
	}
	// A token of alice's listing means nothing in bob's.
	page, _ := s.orders.ListOrders(alice, &orderv1.ListOrdersRequest{PageSize: 2})
	_, err = s.orders.ListOrders(bob, &orderv1.ListOrdersRequest{PageSize: 2, PageToken: page.GetNextPageToken()})
	servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_PAGE_TOKEN")
}

func TestWatchOrderFollowsTheSaga(t *testing.T) {
	s := startSystem(t, nil)
	mug := s.product(t, "MUG-1", 1000, "EUR", 10)
	alice := s.as(t, "usr_alice", auth.RoleCustomer)

	// A slow processor keeps the saga in RESERVED long enough to watch it.
	created := make(chan *orderv1.Order, 1)
	go func() {
		resp, err := s.orders.CreateOrder(alice, request("key-watch-0001", "tok_slow_700ms", line(mug, 1)))
		if err != nil {
			t.Errorf("CreateOrder = %v", err)
		}
		created <- resp.GetOrder()
	}()
	var id string
	for id == "" {
		list, err := s.orders.ListOrders(alice, &orderv1.ListOrdersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.GetOrders()) == 1 {
			id = list.GetOrders()[0].GetId()
		}
		time.Sleep(5 * time.Millisecond)
	}
	stream, err := s.orders.WatchOrder(alice, &orderv1.WatchOrderRequest{OrderId: id})
	if err != nil {
		t.Fatal(err)
	}
	var states []orderv1.OrderState
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Recv = %v", err)
		}
		states = append(states, resp.GetOrder().GetState())
	}
	if len(states) < 2 || states[len(states)-1] != confirmed {
		t.Fatalf("watched states %v, want several ending in CONFIRMED", states)
	}
	for i := 1; i < len(states); i++ {
		if states[i] < states[i-1] {
			t.Errorf("states went backwards: %v", states)
		}
	}
	<-created

	_, err = recvFirst(s.orders.WatchOrder(s.as(t, "usr_bob", auth.RoleCustomer), &orderv1.WatchOrderRequest{OrderId: id}))
	servetest.WantErr(t, err, codes.NotFound, "ORDER_NOT_FOUND")
}

func recvFirst(stream orderv1.OrderService_WatchOrderClient, err error) (*orderv1.WatchOrderResponse, error) {
	if err != nil {
		return nil, err
	}
	return stream.Recv()
}

// TestClientDeadlineReachesPayment: a client deadline ends the call while
// the payment is being authorized (the slow token takes 1.5 s); the
// deadline travels to the payment service, which authorizes nothing, and
// the interrupted order is not cancelled: Resume finishes it. On a loaded
// machine the deadline can pass before the order is even stored; then the
// next attempt gives the call more time.
func TestClientDeadlineReachesPayment(t *testing.T) {
	s := startSystem(t, func(c *order.Config) { c.StepTimeout = 3 * time.Second })
	mug := s.product(t, "MUG-1", 1000, "EUR", 10)
	alice := s.as(t, "usr_alice", auth.RoleCustomer)
	const slow = 1500 * time.Millisecond
	var o *orderv1.Order
	for i, deadline := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, time.Second} {
		ctx, cancel := context.WithTimeout(alice, deadline)
		got, err := s.orders.CreateOrder(ctx, request(fmt.Sprintf("key-deadline-%02d", i), "tok_slow_1500ms", line(mug, 1)))
		cancel()
		switch {
		case status.Code(err) == codes.DeadlineExceeded:
		case err == nil && !terminal(got.GetOrder().GetState()):
			// The payment service may refuse at once a call it cannot finish
			// in time, so the response can beat the deadline.
		default:
			t.Fatalf("CreateOrder with a %v deadline = %v, %v; want DeadlineExceeded or an unfinished order", deadline, got, err)
		}
		time.Sleep(slow + 100*time.Millisecond) // longer than the slow token takes
		list, err := s.orders.ListOrders(alice, &orderv1.ListOrdersRequest{})
		if err != nil {
			t.Fatalf("ListOrders = %v", err)
		}
		if len(list.GetOrders()) > 0 {
			o = list.GetOrders()[0]
			break
		}
	}
	if o == nil {
		t.Fatal("no order was stored before the deadline, even with 1 s")
	}
	if terminal(o.GetState()) {
		t.Fatalf("interrupted order = %v (%v), want it left for Resume", o.GetState(), o.GetCancelReason())
	}
	if p := s.paymentOf(t, o.GetId()); p != nil {
		t.Fatalf("payment after a cancelled authorize = %v, want none: the deadline did not reach payment", p)
	}
	r, err := s.orders.Resume(s.as(t, "scheduler", auth.RoleService), &orderv1.ResumeRequest{})
	if err != nil || r.GetConfirmed() != 1 {
		t.Fatalf("Resume = %v, %v; want the order confirmed", r, err)
	}
}

func terminal(s orderv1.OrderState) bool { return s == confirmed || s == cancelled }

// TestBreakerFailsFast: with inventory down, orders cancel with
// DEPENDENCY_UNAVAILABLE until the breaker opens; then they fail fast with
// CIRCUIT_OPEN.
func TestBreakerFailsFast(t *testing.T) {
	s := startSystem(t, nil)
	mug := s.product(t, "MUG-1", 1000, "EUR", 10)
	s.stops["inventory"]()
	alice := s.as(t, "usr_alice", auth.RoleCustomer)
	var reasons []string
	for i := range 8 {
		resp, err := s.orders.CreateOrder(alice, request(fmt.Sprintf("key-breaker-%03d", i), "tok_visa", line(mug, 1)))
		if err != nil {
			t.Fatalf("CreateOrder = %v", err)
		}
		if resp.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CANCELLING && resp.GetOrder().GetState() != cancelled {
			t.Fatalf("order with inventory down = %v", resp.GetOrder().GetState())
		}
		reasons = append(reasons, resp.GetOrder().GetCancelReason().String())
	}
	if reasons[0] != "DEPENDENCY_UNAVAILABLE" || reasons[len(reasons)-1] != "CIRCUIT_OPEN" {
		t.Errorf("cancel reasons = %v, want DEPENDENCY_UNAVAILABLE first and CIRCUIT_OPEN once the breaker opened", reasons)
	}
}

func TestAttachInvoice(t *testing.T) {
	s := startSystem(t, nil)
	mug := s.product(t, "MUG-1", 1000, "EUR", 10)
	resp, err := s.orders.CreateOrder(s.as(t, "usr_alice", auth.RoleCustomer), request("key-invoice-01", "tok_visa", line(mug, 1)))
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetOrder().GetId()
	inv := &orderv1.Invoice{Number: "INV-1", Object: "invoices/" + id + ".pdf"}
	_, err = s.orders.AttachInvoice(s.as(t, "usr_alice", auth.RoleCustomer), &orderv1.AttachInvoiceRequest{OrderId: id, Invoice: inv})
	servetest.WantErr(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	svc := s.as(t, "invoicing", auth.RoleService)
	first, err := s.orders.AttachInvoice(svc, &orderv1.AttachInvoiceRequest{OrderId: id, Invoice: inv})
	if err != nil || first.GetOrder().GetInvoice().GetNumber() != "INV-1" {
		t.Fatalf("AttachInvoice = %v, %v", first, err)
	}
	again, err := s.orders.AttachInvoice(svc, &orderv1.AttachInvoiceRequest{OrderId: id, Invoice: inv})
	if err != nil || again.GetOrder().GetVersion() != first.GetOrder().GetVersion() {
		t.Errorf("AttachInvoice again = %v, %v; want no change (idempotent)", again.GetOrder().GetVersion(), err)
	}
}
