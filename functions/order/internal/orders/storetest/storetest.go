// Package storetest is the conformance suite of orders.Store: the SQLite
// store (orderdb) and the Firestore one (orderfs) run the same tests, the
// Firestore one against the emulator.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shopfn/shopfn/functions/order/internal/orders"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	"github.com/shopfn/shopfn/shared/outbox"
)

// Store is an orders.Store with the outbox its updates write to.
type Store interface {
	orders.Store
	Outbox(ctx context.Context) (outbox.Store, error)
}

// t0 is the suite's clock; microseconds, as the stores keep times.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)

// Run runs the suite against the stores that open returns (a fresh, empty
// one each time).
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Run("CreateGet", func(t *testing.T) { testCreateGet(t, open(t)) })
	t.Run("IdempotencyKeys", func(t *testing.T) { testIdempotencyKeys(t, open(t)) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, open(t)) })
	t.Run("Events", func(t *testing.T) { testEvents(t, open(t)) })
	t.Run("List", func(t *testing.T) { testList(t, open(t)) })
	t.Run("Unfinished", func(t *testing.T) { testUnfinished(t, open(t)) })
	t.Run("EndedContext", func(t *testing.T) { testEndedContext(t, open(t)) })
	t.Run("HotOrder", func(t *testing.T) { testHotOrder(t, open(t)) })
	t.Run("ConcurrentCreateSameKey", func(t *testing.T) { testConcurrentCreate(t, open(t)) })
}

// order returns a pending order of user, created at created.
func order(id, user, key string, created time.Time) orders.Order {
	eur := func(m int64) orders.Money { return orders.Money{Currency: "EUR", Minor: m} }
	return orders.Order{
		ID: id, UserID: user, State: orders.Pending,
		Lines: []orders.Line{
			{ProductID: "prd_2", SKU: "SKU-2", Name: "Mug", Quantity: 2, UnitPrice: eur(1250)},
			{ProductID: "prd_1", SKU: "SKU-1", Name: "Tea", Quantity: 1, UnitPrice: eur(500)},
		},
		Subtotal: eur(3000), Tax: eur(600), Total: eur(3600),
		Address:        &commonv1.Address{Name: "Ann", Line1: "1 Main St", City: "Paris", CountryCode: "FR"},
		PaymentToken:   "tok_visa",
		IdempotencyKey: key, RequestHash: "hash-" + key,
		LeaseOwner: "runner-1", LeaseUntil: created.Add(time.Minute),
		Created: created, Updated: created,
	}
}

func create(t *testing.T, s orders.Store, o orders.Order) orders.Order {
	t.Helper()
	got, err := s.Create(context.Background(), o)
	if err != nil {
		t.Fatalf("Create(%s) = %v", o.ID, err)
	}
	return got
}

func update(t *testing.T, s orders.Store, id string, fn func(*orders.Order) error) orders.Order {
	t.Helper()
	got, err := s.Update(context.Background(), id, fn)
	if err != nil {
		t.Fatalf("Update(%s) = %v", id, err)
	}
	return got
}

// diff describes how got differs from want ("" if it does not).
func diff(got, want orders.Order) string {
	if !proto.Equal(got.Address, want.Address) {
		return fmt.Sprintf("address %v, want %v", got.Address, want.Address)
	}
	times := [][2]time.Time{{got.Created, want.Created}, {got.Updated, want.Updated}, {got.LeaseUntil, want.LeaseUntil}}
	for _, tt := range times {
		if !tt[0].Equal(tt[1]) {
			return fmt.Sprintf("time %v, want %v", tt[0], tt[1])
		}
	}
	if (got.Invoice == nil) != (want.Invoice == nil) || (got.Invoice != nil &&
		(got.Invoice.Number != want.Invoice.Number || got.Invoice.Object != want.Invoice.Object || !got.Invoice.Created.Equal(want.Invoice.Created))) {
		return fmt.Sprintf("invoice %+v, want %+v", got.Invoice, want.Invoice)
	}
	g, w := got, want
	g.Address, w.Address, g.Invoice, w.Invoice = nil, nil, nil, nil
	g.Created, g.Updated, g.LeaseUntil = time.Time{}, time.Time{}, time.Time{}
	w.Created, w.Updated, w.LeaseUntil = time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		return fmt.Sprintf("%+v, want %+v", g, w)
	}
	return ""
}

func testCreateGet(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "ord_404"); !errors.Is(err, orders.ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}
	want := order("ord_1", "usr_ann", "key-1", t0)
	got := create(t, s, want)
	want.Version = 1
	if d := diff(got, want); d != "" {
		t.Errorf("Create = %s", d)
	}
	got, err := s.Get(ctx, "ord_1")
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	if d := diff(got, want); d != "" {
		t.Errorf("Get after Create = %s", d)
	}
	// Every field survives an update.
	inv := &orders.Invoice{Number: "INV-1", Object: "invoices/INV-1.pdf", Created: t0.Add(time.Hour)}
	got = update(t, s, "ord_1", func(o *orders.Order) error {
		o.State, o.PaymentToken, o.Committed, o.Captured = orders.Confirmed, "", true, true
		o.CancelReason, o.CancelMessage, o.CancelRequested = errorsv1.ErrorReason_PAYMENT_DECLINED, "declined", true
		o.Invoice, o.Address = inv, nil
		o.LeaseOwner, o.LeaseUntil, o.Updated = "", time.Time{}, t0.Add(time.Hour)
		return nil
	})
	want.State, want.PaymentToken, want.Committed, want.Captured = orders.Confirmed, "", true, true
	want.CancelReason, want.CancelMessage, want.CancelRequested = errorsv1.ErrorReason_PAYMENT_DECLINED, "declined", true
	want.Invoice, want.Address = inv, nil
	want.LeaseOwner, want.LeaseUntil, want.Updated, want.Version = "", time.Time{}, t0.Add(time.Hour), 2
	if d := diff(got, want); d != "" {
		t.Errorf("Update = %s", d)
	}
	stored, err := s.Get(ctx, "ord_1")
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(stored, want); d != "" {
		t.Errorf("Get after Update = %s", d)
	}
	// Ids a database may not take as they are.
	for _, id := range []string{"ord/2", "__x__", "~a"} {
		create(t, s, order(id, "usr/odd", "key/"+id, t0))
		if got, err := s.Get(ctx, id); err != nil || got.ID != id {
			t.Errorf("Get(%q) = %+v, %v", id, got, err)
		}
		if got, err := s.ByIdempotencyKey(ctx, "usr/odd", "key/"+id); err != nil || got.ID != id {
			t.Errorf("ByIdempotencyKey(usr/odd, key/%s) = %+v, %v", id, got, err)
		}
	}
}

func testIdempotencyKeys(t *testing.T, s Store) {
	ctx := context.Background()
	first := create(t, s, order("ord_1", "usr_ann", "key-1", t0))
	if _, err := s.ByIdempotencyKey(ctx, "usr_ann", "key-2"); !errors.Is(err, orders.ErrNotFound) {
		t.Errorf("ByIdempotencyKey(unused) = %v, want ErrNotFound", err)
	}
	if got, err := s.ByIdempotencyKey(ctx, "usr_ann", "key-1"); err != nil || got.ID != "ord_1" {
		t.Errorf("ByIdempotencyKey(usr_ann, key-1) = %+v, %v; want ord_1", got, err)
	}
	if _, err := s.ByIdempotencyKey(ctx, "usr_bob", "key-1"); !errors.Is(err, orders.ErrNotFound) {
		t.Errorf("ByIdempotencyKey(another user's key) = %v, want ErrNotFound", err)
	}
	got, err := s.Create(ctx, order("ord_2", "usr_ann", "key-1", t0.Add(time.Second)))
	if !errors.Is(err, orders.ErrDuplicateKey) || got.ID != first.ID || got.RequestHash != first.RequestHash {
		t.Errorf("Create(reused key) = %+v, %v; want ord_1 and ErrDuplicateKey", got, err)
	}
	if _, err := s.Get(ctx, "ord_2"); !errors.Is(err, orders.ErrNotFound) {
		t.Errorf("Get(the refused order) = %v, want ErrNotFound", err)
	}
	// Keys are unique per user: another user may use the same one.
	if _, err := s.Create(ctx, order("ord_3", "usr_bob", "key-1", t0)); err != nil {
		t.Errorf("Create(another user's key) = %v", err)
	}
	if got, err := s.ByIdempotencyKey(ctx, "usr_bob", "key-1"); err != nil || got.ID != "ord_3" {
		t.Errorf("ByIdempotencyKey(usr_bob, key-1) = %+v, %v; want ord_3", got, err)
	}
	// A user's list shows only the stored order.
	if l, err := s.List(ctx, "usr_ann", orders.Cursor{}, 10); err != nil || len(l) != 1 {
		t.Errorf("List(usr_ann) = %d orders, %v; want 1", len(l), err)
	}
}

func testUpdate(t *testing.T, s Store) {
	ctx := context.Background()
	create(t, s, order("ord_1", "usr_ann", "key-1", t0))
	if _, err := s.Update(ctx, "ord_404", func(*orders.Order) error { return nil }); !errors.Is(err, orders.ErrNotFound) {
		t.Errorf("Update(unknown) = %v, want ErrNotFound", err)
	}
	got := update(t, s, "ord_1", func(o *orders.Order) error {
		o.State, o.Updated = orders.Reserved, t0.Add(time.Second)
		return nil
	})
	if got.Version != 2 || got.State != orders.Reserved {
		t.Errorf("Update = version %d state %s, want 2 RESERVED", got.Version, got.State)
	}
	// ErrUnchanged: the stored order, no new version, even if fn touched it.
	got = update(t, s, "ord_1", func(o *orders.Order) error {
		o.State = orders.Cancelled
		return orders.ErrUnchanged
	})
	if got.Version != 2 || got.State != orders.Reserved {
		t.Errorf("Update(ErrUnchanged) = version %d state %s, want 2 RESERVED", got.Version, got.State)
	}
	// Another error: nothing stored, the error returned.
	errBoom := errors.New("boom")
	if _, err := s.Update(ctx, "ord_1", func(o *orders.Order) error {
		o.State = orders.Confirmed
		return errBoom
	}); !errors.Is(err, errBoom) {
		t.Errorf("Update(failing) = %v, want the function's error", err)
	}
	if got, err := s.Get(ctx, "ord_1"); err != nil || got.Version != 2 || got.State != orders.Reserved {
		t.Errorf("Get after failed updates = %+v, %v; want version 2 RESERVED", got, err)
	}
	if rows := unsent(t, s); len(rows) != 0 {
		t.Errorf("outbox after failed updates = %d rows, want 0", len(rows))
	}
}

func unsent(t *testing.T, s Store) []outbox.Row {
	t.Helper()
	ob, err := s.Outbox(context.Background())
	if err != nil {
		t.Fatalf("Outbox = %v", err)
	}
	rows, err := ob.Unsent(context.Background(), 100)
	if err != nil {
		t.Fatalf("Unsent = %v", err)
	}
	return rows
}

// testEvents checks that moves to CONFIRMED and CANCELLED record their
// event with the state change, keyed by the order id, and that no other
// update does.
func testEvents(t *testing.T, s Store) {
	for _, id := range []string{"ord_1", "ord_2"} {
		create(t, s, order(id, "usr_ann", "key-"+id, t0))
		update(t, s, id, func(o *orders.Order) error { o.State = orders.Authorized; return nil })
	}
	if rows := unsent(t, s); len(rows) != 0 {
		t.Fatalf("outbox after non-terminal moves = %d rows, want 0", len(rows))
	}
	update(t, s, "ord_1", func(o *orders.Order) error { o.State, o.Updated = orders.Confirmed, t0.Add(time.Minute); return nil })
	update(t, s, "ord_1", func(o *orders.Order) error { o.Invoice = &orders.Invoice{Number: "INV-1"}; return nil })
	update(t, s, "ord_2", func(o *orders.Order) error {
		o.State, o.CancelReason, o.Updated = orders.Cancelled, errorsv1.ErrorReason_PAYMENT_DECLINED, t0.Add(time.Minute)
		return nil
	})
	rows := unsent(t, s)
	if len(rows) != 2 {
		t.Fatalf("outbox = %d rows, want 2", len(rows))
	}
	slices.SortFunc(rows, func(a, b outbox.Row) int { return cmpString(a.Subject, b.Subject) })
	var confirmed eventsv1.OrderConfirmed
	if r := rows[0]; r.Type != outbox.TypeOrderConfirmed || r.Subject != "ord_1" || r.OrderingKey != "ord_1" || r.Source != "//shopfn/order" ||
		r.Decode(&confirmed) != nil || confirmed.GetOrderId() != "ord_1" || confirmed.GetUserId() != "usr_ann" || confirmed.GetTotal().GetAmountMinor() != 3600 {
		t.Errorf("outbox[0] = %+v (%v), want order.confirmed of ord_1 keyed by it", r, &confirmed)
	}
	var cancelled eventsv1.OrderCancelled
	if r := rows[1]; r.Type != outbox.TypeOrderCancelled || r.Subject != "ord_2" || r.OrderingKey != "ord_2" ||
		r.Decode(&cancelled) != nil || cancelled.GetOrderId() != "ord_2" || cancelled.GetReason() != errorsv1.ErrorReason_PAYMENT_DECLINED {
		t.Errorf("outbox[1] = %+v (%v), want order.cancelled of ord_2 keyed by it", r, &cancelled)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testList(t *testing.T, s Store) {
	ctx := context.Background()
	// ord_a, ord_b and ord_c share a creation time: ids break the tie.
	for _, o := range []orders.Order{
		order("ord_a", "usr_ann", "k1", t0.Add(time.Second)),
		order("ord_b", "usr_bob", "k2", t0.Add(time.Second)),
		order("ord_c", "usr_ann", "k3", t0.Add(time.Second)),
		order("ord_d", "usr_ann", "k4", t0.Add(2*time.Second)),
		order("ord_e", "usr_bob", "k5", t0),
		order("ord_f", "usr_ann", "k6", t0.Add(-time.Second)),
	} {
		create(t, s, o)
	}
	tests := []struct {
		user string
		want []string
	}{
		{"", []string{"ord_d", "ord_c", "ord_b", "ord_a", "ord_e", "ord_f"}},
		{"usr_ann", []string{"ord_d", "ord_c", "ord_a", "ord_f"}},
		{"usr_bob", []string{"ord_b", "ord_e"}},
		{"usr_nobody", nil},
	}
	for _, tt := range tests {
		for _, page := range []int{1, 2, 10} {
			var got []string
			var after orders.Cursor
			for range 10 {
				l, err := s.List(ctx, tt.user, after, page)
				if err != nil {
					t.Fatalf("List(%q, %+v, %d) = %v", tt.user, after, page, err)
				}
				if len(l) > page {
					t.Fatalf("List(%q, %+v, %d) = %d orders", tt.user, after, page, len(l))
				}
				for _, o := range l {
					got = append(got, o.ID)
					if tt.user != "" && o.UserID != tt.user {
						t.Errorf("List(%q) returned %s of %s", tt.user, o.ID, o.UserID)
					}
				}
				if len(l) < page {
					break
				}
				after = orders.Cursor{Created: l[len(l)-1].Created, ID: l[len(l)-1].ID}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("List(%q) in pages of %d = %v, want %v", tt.user, page, got, tt.want)
			}
		}
	}
}

func testUnfinished(t *testing.T, s Store) {
	ctx := context.Background()
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	mk := func(id string, updated time.Time, state orders.State, leased bool) {
		o := order(id, "usr_ann", "key-"+id, updated)
		o.LeaseOwner, o.LeaseUntil = "", time.Time{}
		if leased {
			o.LeaseOwner, o.LeaseUntil = "runner-1", time.Now().Add(time.Hour)
		}
		create(t, s, o)
		if state != orders.Pending {
			update(t, s, id, func(o *orders.Order) error { o.State = state; return nil })
		}
	}
	mk("ord_a", past.Add(3*time.Second), orders.Pending, false)
	mk("ord_b", past.Add(1*time.Second), orders.Reserved, false)
	mk("ord_c", past.Add(2*time.Second), orders.Cancelling, false)
	mk("ord_d", past, orders.Confirmed, false)                // terminal
	mk("ord_e", past, orders.Cancelled, false)                // terminal
	mk("ord_f", past, orders.Authorized, true)                // leased now
	mk("ord_g", past.Add(time.Minute), orders.Pending, false) // updated too recently
	before := past.Add(10 * time.Second)
	tests := []struct {
		limit int
		want  []string
	}{
		{10, []string{"ord_b", "ord_c", "ord_a"}},
		{2, []string{"ord_b", "ord_c"}},
	}
	for _, tt := range tests {
		got, err := s.Unfinished(ctx, before, tt.limit)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Unfinished(%v, %d) = %v, %v; want %v", before, tt.limit, got, err, tt.want)
		}
	}
	// An order is unfinished again once its state is; terminal ones leave.
	update(t, s, "ord_b", func(o *orders.Order) error { o.State = orders.Confirmed; return nil })
	if got, err := s.Unfinished(ctx, before, 10); err != nil || !slices.Equal(got, []string{"ord_c", "ord_a"}) {
		t.Errorf("Unfinished after confirming ord_b = %v, %v; want [ord_c ord_a]", got, err)
	}
}

// testEndedContext: a call whose context has ended changes nothing.
func testEndedContext(t *testing.T, s Store) {
	create(t, s, order("ord_1", "usr_ann", "key-1", t0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Update(ctx, "ord_1", func(o *orders.Order) error { o.State = orders.Cancelled; return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Update(ended ctx) = %v, want context.Canceled", err)
	}
	if _, err := s.Create(ctx, order("ord_2", "usr_ann", "key-2", t0)); err == nil {
		t.Error("Create(ended ctx) = nil, want an error")
	}
	if got, err := s.Get(context.Background(), "ord_1"); err != nil || got.State != orders.Pending || got.Version != 1 {
		t.Errorf("Get after the ended Update = %+v, %v; want unchanged", got, err)
	}
	if _, err := s.Get(context.Background(), "ord_2"); !errors.Is(err, orders.ErrNotFound) {
		t.Errorf("Get(ord_2) after the ended Create = %v, want ErrNotFound", err)
	}
}

// Hot-order concurrency: small, because the Firestore emulator serialises
// transactions on one document slowly.
const (
	hotWorkers = 5
	hotUpdates = 3
)

// testHotOrder races read-modify-write updates of one order: none is lost,
// and the version counts them all.
func testHotOrder(t *testing.T, s Store) {
	create(t, s, order("ord_1", "usr_ann", "key-1", t0))
	var wg sync.WaitGroup
	for range hotWorkers {
		wg.Go(func() {
			for range hotUpdates {
				_, err := s.Update(context.Background(), "ord_1", func(o *orders.Order) error {
					n, _ := strconv.Atoi(o.CancelMessage)
					o.CancelMessage = strconv.Itoa(n + 1)
					return nil
				})
				if err != nil {
					t.Errorf("Update = %v", err)
				}
			}
		})
	}
	wg.Wait()
	got, err := s.Get(context.Background(), "ord_1")
	const n = hotWorkers * hotUpdates
	if err != nil || got.CancelMessage != strconv.Itoa(n) || got.Version != n+1 {
		t.Errorf("Get after %d concurrent updates = counter %q version %d, %v; want %d and %d", n, got.CancelMessage, got.Version, err, n, n+1)
	}
}

// testConcurrentCreate races Creates of different orders with one user's
// key: one is stored, every other call gets it back with ErrDuplicateKey.
func testConcurrentCreate(t *testing.T, s Store) {
	const n = 5
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			o, err := s.Create(context.Background(), order(fmt.Sprintf("ord_%d", i), "usr_ann", "key-1", t0))
			ids[i], errs[i] = o.ID, err
		})
	}
	wg.Wait()
	winner, err := s.ByIdempotencyKey(context.Background(), "usr_ann", "key-1")
	if err != nil {
		t.Fatalf("ByIdempotencyKey = %v", err)
	}
	created := 0
	for i := range n {
		switch {
		case errs[i] == nil:
			created++
			if ids[i] != winner.ID {
				t.Errorf("Create #%d stored %s, but the key names %s", i, ids[i], winner.ID)
			}
		case errors.Is(errs[i], orders.ErrDuplicateKey):
			if ids[i] != winner.ID {
				t.Errorf("Create #%d = %s, ErrDuplicateKey; want %s", i, ids[i], winner.ID)
			}
		default:
			t.Errorf("Create #%d = %v", i, errs[i])
		}
	}
	if created != 1 {
		t.Errorf("%d Creates succeeded, want 1", created)
	}
	if l, err := s.List(context.Background(), "usr_ann", orders.Cursor{}, 10); err != nil || len(l) != 1 {
		t.Errorf("List after the race = %d orders, %v; want 1", len(l), err)
	}
}
