// Package storetest is the conformance suite of stock.Store: the SQLite
// store (inventorydb) and the Firestore one (inventoryfs) run the same
// tests, the Firestore one against the emulator.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/inventory/internal/stock"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	"github.com/shopfn/shopfn/shared/outbox"
)

// Store is a stock.Store with the outbox its transactions write to.
type Store interface {
	stock.Store
	Outbox(ctx context.Context) (outbox.Store, error)
}

// t0 is the suite's clock; microseconds, as the stores keep times.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)

const ttl = 15 * time.Minute

// Run runs the suite against the stores that open returns (a fresh, empty
// one each time).
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Run("StockReadWrite", func(t *testing.T) { testStock(t, open(t)) })
	t.Run("RefusesOverselling", func(t *testing.T) { testRefusesOverselling(t, open(t)) })
	t.Run("Reservations", func(t *testing.T) { testReservations(t, open(t)) })
	t.Run("ReadYourWrites", func(t *testing.T) { testReadYourWrites(t, open(t)) })
	t.Run("RollBack", func(t *testing.T) { testRollBack(t, open(t)) })
	t.Run("Expired", func(t *testing.T) { testExpired(t, open(t)) })
	t.Run("LowStockOutbox", func(t *testing.T) { testLowStockOutbox(t, open(t)) })
	t.Run("ServiceFlow", func(t *testing.T) { testServiceFlow(t, open(t)) })
	t.Run("EndedContextDoesNothing", func(t *testing.T) { testEndedContext(t, open(t)) })
	t.Run("DeadlineMidTransactionRollsBack", func(t *testing.T) { testDeadlineMidTransaction(t, open(t)) })
	t.Run("HotSKU", func(t *testing.T) { testHotSKU(t, open(t)) })
}

func inTx(t *testing.T, s stock.Store, fn func(stock.Tx) error) {
	t.Helper()
	if err := s.InTx(context.Background(), fn); err != nil {
		t.Fatalf("InTx = %v", err)
	}
}

func wantStock(t *testing.T, s stock.Store, sku string, onHand, reserved int64) {
	t.Helper()
	got, err := s.Stock(context.Background(), sku)
	if err != nil || got.OnHand != onHand || got.Reserved != reserved {
		t.Errorf("Stock(%s) = %+v, %v; want on_hand %d reserved %d", sku, got, err, onHand, reserved)
	}
}

// unsent returns the outbox's unsent low-stock events.
func unsent(t *testing.T, s Store) []*eventsv1.LowStock {
	t.Helper()
	ob, err := s.Outbox(context.Background())
	if err != nil {
		t.Fatalf("Outbox = %v", err)
	}
	rows, err := ob.Unsent(context.Background(), 100)
	if err != nil {
		t.Fatalf("Unsent = %v", err)
	}
	var out []*eventsv1.LowStock
	for _, r := range rows {
		var ev eventsv1.LowStock
		if err := r.Decode(&ev); err != nil {
			t.Fatalf("Decode(%s) = %v", r.ID, err)
		}
		if r.Type != outbox.TypeLowStock || r.Source != "//shopfn/inventory" || r.Subject != ev.GetSku() || r.OrderingKey != ev.GetSku() {
			t.Errorf("outbox row %+v: want type %s from //shopfn/inventory keyed by the SKU %q", r, outbox.TypeLowStock, ev.GetSku())
		}
		out = append(out, &ev)
	}
	return out
}

func testStock(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.Stock(ctx, "SKU-1"); !errors.Is(err, stock.ErrSKUNotFound) {
		t.Errorf("Stock(unknown) = %v, want ErrSKUNotFound", err)
	}
	want := stock.Stock{SKU: "SKU-1", OnHand: 10, Reserved: 3, Updated: t0}
	inTx(t, s, func(tx stock.Tx) error { return tx.PutStock(want) })
	if got, err := s.Stock(ctx, "SKU-1"); err != nil || !equalStock(got, want) {
		t.Errorf("Stock after PutStock = %+v, %v; want %+v", got, err, want)
	}
	want = stock.Stock{SKU: "SKU-1", OnHand: 4, Reserved: 4, Updated: t0.Add(time.Second)}
	inTx(t, s, func(tx stock.Tx) error { return tx.PutStock(want) })
	inTx(t, s, func(tx stock.Tx) error {
		got, err := tx.Stock("SKU-1")
		if err != nil || !equalStock(got, want) {
			t.Errorf("Tx.Stock after a replacing PutStock = %+v, %v; want %+v", got, err, want)
		}
		if _, err := tx.Stock("SKU-2"); !errors.Is(err, stock.ErrSKUNotFound) {
			t.Errorf("Tx.Stock(unknown) = %v, want ErrSKUNotFound", err)
		}
		return nil
	})
	// Ids a database may not take as they are.
	for _, sku := range []string{".", "..", "__x__", "~a", "a.b-C_9"} {
		st := stock.Stock{SKU: sku, OnHand: 1, Updated: t0}
		inTx(t, s, func(tx stock.Tx) error { return tx.PutStock(st) })
		if got, err := s.Stock(ctx, sku); err != nil || !equalStock(got, st) {
			t.Errorf("Stock(%q) = %+v, %v; want %+v", sku, got, err, st)
		}
	}
}

// testRefusesOverselling checks the store's last line of defence: a stock
// record with more reserved than on hand is refused whatever the caller.
func testRefusesOverselling(t *testing.T, s Store) {
	tests := []struct {
		name             string
		onHand, reserved int64
	}{
		{"reserved above on hand", 3, 4},
		{"negative on hand", -1, 0},
		{"negative reserved", 3, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.InTx(context.Background(), func(tx stock.Tx) error {
				return tx.PutStock(stock.Stock{SKU: "SKU-1", OnHand: tt.onHand, Reserved: tt.reserved, Updated: t0})
			})
			if err == nil {
				t.Errorf("PutStock(on_hand %d, reserved %d) = nil, want an error", tt.onHand, tt.reserved)
			}
		})
	}
	if _, err := s.Stock(context.Background(), "SKU-1"); !errors.Is(err, stock.ErrSKUNotFound) {
		t.Errorf("Stock after refused writes = %v, want ErrSKUNotFound", err)
	}
}

func reservation(id string, expires time.Time, lines ...stock.Line) stock.Reservation {
	return stock.Reservation{OrderID: id, Lines: lines, State: stock.Reserved, Expires: expires, Created: t0, Updated: t0}
}

func putSKUs(t *testing.T, s stock.Store, skus ...string) {
	t.Helper()
	inTx(t, s, func(tx stock.Tx) error {
		for _, sku := range skus {
			if err := tx.PutStock(stock.Stock{SKU: sku, OnHand: 100, Updated: t0}); err != nil {
				return err
			}
		}
		return nil
	})
}

func equalStock(a, b stock.Stock) bool {
	return a.SKU == b.SKU && a.OnHand == b.OnHand && a.Reserved == b.Reserved && a.Updated.Equal(b.Updated)
}

func equalReservation(a, b stock.Reservation) bool {
	return a.OrderID == b.OrderID && a.State == b.State && slices.Equal(a.Lines, b.Lines) &&
		a.Expires.Equal(b.Expires) && a.Created.Equal(b.Created) && a.Updated.Equal(b.Updated)
}

func testReservations(t *testing.T, s Store) {
	putSKUs(t, s, "SKU-1", "SKU-2", "SKU-3")
	want := reservation("ord_1", t0.Add(ttl), stock.Line{SKU: "SKU-3", Quantity: 2}, stock.Line{SKU: "SKU-1", Quantity: 1}, stock.Line{SKU: "SKU-2", Quantity: 5})
	odd := reservation("ord/2 __x__", t0.Add(ttl), stock.Line{SKU: "SKU-1", Quantity: 1})
	inTx(t, s, func(tx stock.Tx) error {
		if _, err := tx.Reservation("ord_1"); !errors.Is(err, stock.ErrReservationNotFound) {
			t.Errorf("Reservation(unknown) = %v, want ErrReservationNotFound", err)
		}
		if err := tx.CreateReservation(want); err != nil {
			return err
		}
		return tx.CreateReservation(odd)
	})
	inTx(t, s, func(tx stock.Tx) error {
		for _, w := range []stock.Reservation{want, odd} {
			if got, err := tx.Reservation(w.OrderID); err != nil || !equalReservation(got, w) {
				t.Errorf("Reservation(%q) = %+v, %v; want %+v (lines in order)", w.OrderID, got, err, w)
			}
		}
		return nil
	})
	if err := s.InTx(context.Background(), func(tx stock.Tx) error { return tx.CreateReservation(want) }); err == nil {
		t.Error("CreateReservation of an existing order = nil, want an error")
	}
	later := t0.Add(time.Minute)
	for _, st := range []stock.State{stock.Committed, stock.Released, stock.Expired, stock.Reserved} {
		inTx(t, s, func(tx stock.Tx) error { return tx.SetState("ord_1", st, later) })
		inTx(t, s, func(tx stock.Tx) error {
			got, err := tx.Reservation("ord_1")
			if err != nil || got.State != st || !got.Updated.Equal(later) || !got.Created.Equal(t0) || !slices.Equal(got.Lines, want.Lines) {
				t.Errorf("Reservation after SetState(%v) = %+v, %v", st, got, err)
			}
			return nil
		})
	}
	err := s.InTx(context.Background(), func(tx stock.Tx) error { return tx.SetState("ord_9", stock.Released, later) })
	if !errors.Is(err, stock.ErrReservationNotFound) {
		t.Errorf("SetState(unknown) = %v, want ErrReservationNotFound", err)
	}
}

// testReadYourWrites checks that a transaction sees its own writes.
func testReadYourWrites(t *testing.T, s Store) {
	r := reservation("ord_1", t0.Add(ttl), stock.Line{SKU: "SKU-1", Quantity: 2})
	inTx(t, s, func(tx stock.Tx) error {
		if err := tx.PutStock(stock.Stock{SKU: "SKU-1", OnHand: 10, Updated: t0}); err != nil {
			return err
		}
		if got, err := tx.Stock("SKU-1"); err != nil || got.OnHand != 10 {
			t.Errorf("Tx.Stock after PutStock = %+v, %v; want on_hand 10", got, err)
		}
		if err := tx.PutStock(stock.Stock{SKU: "SKU-1", OnHand: 10, Reserved: 2, Updated: t0}); err != nil {
			return err
		}
		if err := tx.CreateReservation(r); err != nil {
			return err
		}
		if got, err := tx.Reservation("ord_1"); err != nil || got.State != stock.Reserved {
			t.Errorf("Tx.Reservation after CreateReservation = %+v, %v", got, err)
		}
		if err := tx.SetState("ord_1", stock.Committed, t0); err != nil {
			return err
		}
		if got, err := tx.Reservation("ord_1"); err != nil || got.State != stock.Committed {
			t.Errorf("Tx.Reservation after SetState = %+v, %v; want committed", got, err)
		}
		return nil
	})
	wantStock(t, s, "SKU-1", 10, 2)
	inTx(t, s, func(tx stock.Tx) error {
		if got, err := tx.Reservation("ord_1"); err != nil || got.State != stock.Committed {
			t.Errorf("Reservation after commit = %+v, %v; want committed", got, err)
		}
		return nil
	})
}

// testRollBack checks that nothing a failed transaction wrote is kept:
// stock, reservations, state changes or events.
func testRollBack(t *testing.T, s Store) {
	putSKUs(t, s, "SKU-1")
	inTx(t, s, func(tx stock.Tx) error {
		return tx.CreateReservation(reservation("ord_1", t0.Add(ttl), stock.Line{SKU: "SKU-1", Quantity: 1}))
	})
	errBoom := errors.New("boom")
	err := s.InTx(context.Background(), func(tx stock.Tx) error {
		if err := tx.PutStock(stock.Stock{SKU: "SKU-1", OnHand: 7, Updated: t0}); err != nil {
			return err
		}
		if err := tx.PutStock(stock.Stock{SKU: "SKU-2", OnHand: 7, Updated: t0}); err != nil {
			return err
		}
		if err := tx.CreateReservation(reservation("ord_2", t0.Add(ttl), stock.Line{SKU: "SKU-1", Quantity: 1})); err != nil {
			return err
		}
		if err := tx.SetState("ord_1", stock.Released, t0); err != nil {
			return err
		}
		if err := tx.RecordLowStock(stock.LowStock{SKU: "SKU-1", Available: 1, Threshold: 5, Time: t0}); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx(failing) = %v, want the function's error", err)
	}
	wantStock(t, s, "SKU-1", 100, 0)
	if _, err := s.Stock(context.Background(), "SKU-2"); !errors.Is(err, stock.ErrSKUNotFound) {
		t.Errorf("Stock(SKU-2) after roll back = %v, want ErrSKUNotFound", err)
	}
	inTx(t, s, func(tx stock.Tx) error {
		if _, err := tx.Reservation("ord_2"); !errors.Is(err, stock.ErrReservationNotFound) {
			t.Errorf("Reservation(ord_2) after roll back = %v, want ErrReservationNotFound", err)
		}
		if got, err := tx.Reservation("ord_1"); err != nil || got.State != stock.Reserved {
			t.Errorf("Reservation(ord_1) after roll back = %+v, %v; want still reserved", got, err)
		}
		return nil
	})
	if evs := unsent(t, s); len(evs) != 0 {
		t.Errorf("outbox after roll back = %v, want empty", evs)
	}
}

func testExpired(t *testing.T, s Store) {
	putSKUs(t, s, "SKU-1", "SKU-2")
	l1, l2 := stock.Line{SKU: "SKU-1", Quantity: 1}, stock.Line{SKU: "SKU-2", Quantity: 1}
	rs := []stock.Reservation{
		reservation("ord_a", t0.Add(3*time.Second), l1),
		reservation("ord_b", t0.Add(1*time.Second), l2),
		reservation("ord_c", t0.Add(2*time.Second), l2, l1),
		reservation("ord_d", t0.Add(10*time.Second), l1),       // not yet expired
		reservation("ord_e", t0.Add(5*time.Second), l1),        // expires exactly at now: not expired
		reservation("ord_f", t0.Add(500*time.Millisecond), l1), // committed: never expires
		reservation("ord_g", t0.Add(400*time.Millisecond), l1), // expired earlier
	}
	inTx(t, s, func(tx stock.Tx) error {
		for _, r := range rs {
			if err := tx.CreateReservation(r); err != nil {
				return err
			}
		}
		return nil
	})
	inTx(t, s, func(tx stock.Tx) error {
		if err := tx.SetState("ord_f", stock.Committed, t0); err != nil {
			return err
		}
		return tx.SetState("ord_g", stock.Expired, t0)
	})
	now := t0.Add(5 * time.Second)
	tests := []struct {
		sku   string
		limit int
		want  []string
	}{
		{"", 10, []string{"ord_b", "ord_c", "ord_a"}},
		{"", 2, []string{"ord_b", "ord_c"}},
		{"SKU-1", 10, []string{"ord_c", "ord_a"}},
		{"SKU-1", 1, []string{"ord_c"}},
		{"SKU-2", 10, []string{"ord_b", "ord_c"}},
		{"SKU-3", 10, nil},
	}
	for _, tt := range tests {
		inTx(t, s, func(tx stock.Tx) error {
			got, err := tx.Expired(now, tt.sku, tt.limit)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Expired(now, %q, %d) = %v, %v; want %v", tt.sku, tt.limit, got, err, tt.want)
			}
			return nil
		})
	}
	// A reservation released in this transaction is no longer expired in it.
	inTx(t, s, func(tx stock.Tx) error {
		if err := tx.SetState("ord_b", stock.Expired, now); err != nil {
			return err
		}
		got, err := tx.Expired(now, "", 10)
		if want := []string{"ord_c", "ord_a"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("Expired after SetState(ord_b) in the same transaction = %v, %v; want %v", got, err, want)
		}
		return nil
	})
}

func testLowStockOutbox(t *testing.T, s Store) {
	inTx(t, s, func(tx stock.Tx) error {
		if err := tx.PutStock(stock.Stock{SKU: "SKU-1", OnHand: 3, Updated: t0}); err != nil {
			return err
		}
		if err := tx.RecordLowStock(stock.LowStock{SKU: "SKU-1", Available: 3, Threshold: 5, Time: t0}); err != nil {
			return err
		}
		return tx.RecordLowStock(stock.LowStock{SKU: "SKU-2", Available: 0, Threshold: 5, Time: t0})
	})
	evs := unsent(t, s)
	slices.SortFunc(evs, func(a, b *eventsv1.LowStock) int { return cmpString(a.GetSku(), b.GetSku()) })
	got := make([]string, len(evs))
	for i, ev := range evs {
		got[i] = fmt.Sprintf("%s/%d/%d", ev.GetSku(), ev.GetAvailable(), ev.GetThreshold())
	}
	if want := []string{"SKU-1/3/5", "SKU-2/0/5"}; !slices.Equal(got, want) {
		t.Errorf("outbox = %v, want %v", got, want)
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

// clock is a settable time for the service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newService(t *testing.T, s stock.Store, onHand int64) (*stock.Service, *clock) {
	t.Helper()
	c := &clock{t: t0}
	svc := stock.NewService(s, stock.Settings{TTL: ttl, LowStockThreshold: 5})
	svc.SetClock(c.now)
	if _, err := svc.SetStock(context.Background(), "SKU-1", onHand); err != nil {
		t.Fatal(err)
	}
	return svc, c
}

// testServiceFlow drives the rules through the store: idempotent Reserve,
// Commit, Release, the on-demand and the scheduled release of expired
// reservations, and the low-stock event each crossing records.
func testServiceFlow(t *testing.T, s Store) {
	ctx := context.Background()
	svc, c := newService(t, s, 10)
	one := []stock.Line{{SKU: "SKU-1", Quantity: 4}}
	r, err := svc.Reserve(ctx, "ord_1", one)
	if err != nil || r.State != stock.Reserved {
		t.Fatalf("Reserve(ord_1) = %+v, %v", r, err)
	}
	if again, err := svc.Reserve(ctx, "ord_1", one); err != nil || !equalReservation(again, r) {
		t.Errorf("Reserve(ord_1) again = %+v, %v; want %+v", again, err, r)
	}
	if _, err := svc.Reserve(ctx, "ord_1", []stock.Line{{SKU: "SKU-1", Quantity: 1}}); !errors.Is(err, stock.ErrOrderReused) {
		t.Errorf("Reserve(ord_1, other lines) = %v, want ErrOrderReused", err)
	}
	if _, err := svc.Reserve(ctx, "ord_x", []stock.Line{{SKU: "SKU-404", Quantity: 1}}); !errors.Is(err, stock.ErrSKUNotFound) {
		t.Errorf("Reserve(unknown SKU) = %v, want ErrSKUNotFound", err)
	}
	wantStock(t, s, "SKU-1", 10, 4) // available 6: above the threshold
	if _, err := svc.Reserve(ctx, "ord_2", []stock.Line{{SKU: "SKU-1", Quantity: 3}}); err != nil {
		t.Fatal(err)
	} // available 3: one low-stock event
	if _, err := svc.Reserve(ctx, "ord_3", []stock.Line{{SKU: "SKU-1", Quantity: 4}}); !errors.Is(err, stock.ErrInsufficientStock) {
		t.Errorf("Reserve(more than available) = %v, want ErrInsufficientStock", err)
	}
	if r, err := svc.Commit(ctx, "ord_1"); err != nil || r.State != stock.Committed {
		t.Errorf("Commit(ord_1) = %+v, %v", r, err)
	}
	wantStock(t, s, "SKU-1", 6, 3)
	if r, found, err := svc.Release(ctx, "ord_1"); err != nil || !found || r.State != stock.Released {
		t.Errorf("Release(ord_1) = %+v, %v, %v", r, found, err)
	}
	wantStock(t, s, "SKU-1", 10, 3)
	if _, found, err := svc.Release(ctx, "ord_404"); err != nil || found {
		t.Errorf("Release(unknown) = %v, %v; want not found, no error", found, err)
	}
	// The release is recorded: a Reserve arriving after it holds nothing.
	if _, err := svc.Reserve(ctx, "ord_404", []stock.Line{{SKU: "SKU-1", Quantity: 1}}); !errors.Is(err, stock.ErrReservationReleased) {
		t.Errorf("Reserve(after its release) = %v, want ErrReservationReleased", err)
	}
	if _, found, err := svc.Release(ctx, "ord_404"); err != nil || found {
		t.Errorf("Release(unknown) again = %v, %v; want not found, no error", found, err)
	}
	// ord_2's 3 units expire; a Reserve that needs them releases them.
	c.add(ttl + time.Second)
	if _, err := svc.Reserve(ctx, "ord_4", []stock.Line{{SKU: "SKU-1", Quantity: 9}}); err != nil {
		t.Errorf("Reserve(needing expired units) = %v", err)
	}
	if _, err := svc.Commit(ctx, "ord_2"); !errors.Is(err, stock.ErrReservationExpired) {
		t.Errorf("Commit(expired) = %v, want ErrReservationExpired", err)
	}
	c.add(ttl + time.Second)
	if n, err := svc.ReleaseExpired(ctx, 0); err != nil || n != 1 {
		t.Errorf("ReleaseExpired = %d, %v; want 1 (ord_4)", n, err)
	}
	wantStock(t, s, "SKU-1", 10, 0)
	if evs := unsent(t, s); len(evs) != 2 {
		t.Errorf("low-stock events = %v, want 2 (ord_2 and ord_4 crossed the threshold)", evs)
	}
}

// testEndedContext calls the service with a context that has already
// ended: the store must not begin the transaction.
func testEndedContext(t *testing.T, s Store) {
	svc, _ := newService(t, s, 10)
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := svc.Reserve(expired, "ord_1", []stock.Line{{SKU: "SKU-1", Quantity: 2}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Reserve(expired ctx) = %v, want DeadlineExceeded", err)
	}
	if _, err := svc.SetStock(expired, "SKU-1", 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SetStock(expired ctx) = %v, want DeadlineExceeded", err)
	}
	wantStock(t, s, "SKU-1", 10, 0)
	if _, err := svc.Commit(context.Background(), "ord_1"); !errors.Is(err, stock.ErrReservationNotFound) {
		t.Errorf("Commit after the ended Reserve = %v, want ErrReservationNotFound", err)
	}
}

// cancelling is a store whose transactions cancel their context right
// after their first stock write, as a client deadline passing mid-call.
type cancelling struct{ stock.Store }

func (c cancelling) InTx(ctx context.Context, fn func(stock.Tx) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	return c.Store.InTx(ctx, func(tx stock.Tx) error { return fn(cancelTx{Tx: tx, cancel: cancel}) })
}

type cancelTx struct {
	stock.Tx
	cancel context.CancelFunc
}

func (t cancelTx) PutStock(s stock.Stock) error {
	err := t.Tx.PutStock(s)
	t.cancel()
	return err
}

// testDeadlineMidTransaction ends the call's context after the first write
// of a Reserve: the rest fails and the write is rolled back.
func testDeadlineMidTransaction(t *testing.T, s Store) {
	plain, _ := newService(t, s, 10)
	svc := stock.NewService(cancelling{s}, stock.Settings{TTL: ttl, LowStockThreshold: 5})
	_, err := svc.Reserve(context.Background(), "ord_1", []stock.Line{{SKU: "SKU-1", Quantity: 2}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Reserve cancelled mid-transaction = %v, want context.Canceled", err)
	}
	wantStock(t, s, "SKU-1", 10, 0)
	if _, err := plain.Commit(context.Background(), "ord_1"); !errors.Is(err, stock.ErrReservationNotFound) {
		t.Errorf("Commit after the rolled-back Reserve = %v, want ErrReservationNotFound", err)
	}
}

// Hot-SKU concurrency: small, because the Firestore emulator serialises
// transactions on one document slowly.
const (
	hotWorkers  = 5
	hotReserves = 3
	hotOnHand   = 12
)

// testHotSKU races Reserves of one unit each on one SKU: exactly on_hand of
// them succeed, the rest fail for lack of stock, reserved adds up, and the
// one threshold crossing records exactly one event.
func testHotSKU(t *testing.T, s Store) {
	ctx := context.Background()
	svc, _ := newService(t, s, hotOnHand)
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		ok, short  int
		unexpected []error
	)
	for w := range hotWorkers {
		wg.Go(func() {
			for i := range hotReserves {
				_, err := svc.Reserve(ctx, fmt.Sprintf("ord_%d_%d", w, i), []stock.Line{{SKU: "SKU-1", Quantity: 1}})
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, stock.ErrInsufficientStock):
					short++
				default:
					unexpected = append(unexpected, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range unexpected {
		t.Errorf("Reserve = %v", err)
	}
	if ok != hotOnHand || short != hotWorkers*hotReserves-hotOnHand {
		t.Errorf("%d Reserves succeeded and %d fell short, want %d and %d", ok, short, hotOnHand, hotWorkers*hotReserves-hotOnHand)
	}
	wantStock(t, s, "SKU-1", hotOnHand, hotOnHand)
	if evs := unsent(t, s); len(evs) != 1 || evs[0].GetAvailable() != 5 {
		t.Errorf("low-stock events = %v, want one at available 5", evs)
	}
}
