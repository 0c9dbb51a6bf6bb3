// Package storetest is the conformance suite every payment store passes:
// charge.Store and the simulator's cardsim.Attempts, on SQLite (paymentdb)
// and on Firestore (paymentfs).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/payment/internal/cardsim"
	"github.com/shopfn/shopfn/functions/payment/internal/charge"
)

// Store is what a payment store implements.
type Store interface {
	charge.Store
	cardsim.Attempts
}

// Concurrency of the hot-record cases: small, because transactions on one
// document are slow in the Firestore emulator (RECIPES.md), yet enough for
// lost updates and double creations to show.
const (
	writers         = 5
	updatesPerWrite = 3
)

// Run runs the suite against the store that open returns (a fresh, empty
// one each time).
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Run("CreateGet", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		p := authorized("ord_1")
		if err := s.Create(ctx, p); err != nil {
			t.Fatalf("Create = %v", err)
		}
		if got, err := s.Get(ctx, "ord_1"); err != nil || got != p {
			t.Errorf("Get(ord_1) = %+v, %v; want %+v", got, err, p)
		}
		d := authorized("ord_2")
		d.ID, d.State, d.DeclineCode, d.CardLast4 = "pay_2", charge.StateDeclined, "insufficient_funds", "9995"
		if err := s.Create(ctx, d); err != nil {
			t.Fatalf("Create(declined) = %v", err)
		}
		if got, err := s.Get(ctx, "ord_2"); err != nil || got != d {
			t.Errorf("Get(ord_2) = %+v, %v; want %+v", got, err, d)
		}
	})

	t.Run("OrderIDsOfAnyShape", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		// Order ids come from callers: 1 to 64 characters of anything.
		for i, id := range []string{"ord/1", ".", "..", "__ord__", "ord 1 ü", "~b3Jk", "ord_1"} {
			p := authorized(id)
			p.ID = fmt.Sprintf("pay_%d", i)
			if err := s.Create(ctx, p); err != nil {
				t.Fatalf("Create(%q) = %v", id, err)
			}
			if got, err := s.Get(ctx, id); err != nil || got != p {
				t.Errorf("Get(%q) = %+v, %v; want %+v", id, got, err, p)
			}
			if n, err := s.NextAttempt(ctx, id); err != nil || n != 1 {
				t.Errorf("NextAttempt(%q) = %d, %v; want 1", id, n, err)
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		if err := s.Create(ctx, authorized("ord_1")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "ord_2"); !errors.Is(err, charge.ErrNotFound) {
			t.Errorf("Get(ord_2) = %v, want ErrNotFound", err)
		}
		called := false
		if _, err := s.Update(ctx, "ord_2", func(*charge.Payment) error { called = true; return nil }); !errors.Is(err, charge.ErrNotFound) {
			t.Errorf("Update(ord_2) = %v, want ErrNotFound", err)
		}
		if called {
			t.Error("Update(ord_2) called fn")
		}
		if _, err := s.Get(ctx, "ord_2"); !errors.Is(err, charge.ErrNotFound) {
			t.Errorf("Get(ord_2) after Update = %v, want ErrNotFound (Update creates nothing)", err)
		}
	})

	t.Run("OnePaymentPerOrder", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		p := authorized("ord_1")
		if err := s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		again := p
		again.ID, again.Amount.Minor, again.Token = "pay_other", 5, "tok_mastercard"
		if err := s.Create(ctx, again); !errors.Is(err, charge.ErrExists) {
			t.Errorf("Create(same order) = %v, want ErrExists", err)
		}
		if got, err := s.Get(ctx, "ord_1"); err != nil || got != p {
			t.Errorf("Get after a refused Create = %+v, %v; want the first %+v", got, err, p)
		}
	})

	t.Run("Update", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		p := authorized("ord_1")
		if err := s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		later := p.Updated.Add(time.Minute)
		want := p
		want.State, want.Captured, want.Updated = charge.StateCaptured, 600, later
		got, err := s.Update(ctx, "ord_1", func(x *charge.Payment) error {
			x.State, x.Captured, x.Updated = charge.StateCaptured, 600, later
			// Not changeable: the store keeps them.
			x.ID, x.Token, x.Amount, x.CardBrand, x.Created = "pay_other", "tok_other", charge.Money{Currency: "USD", Minor: 9999}, "amex", later
			return nil
		})
		if err != nil || got != want {
			t.Errorf("Update(capture 600) = %+v, %v; want %+v", got, err, want)
		}
		if got, err := s.Get(ctx, "ord_1"); err != nil || got != want {
			t.Errorf("Get after Update = %+v, %v; want %+v", got, err, want)
		}

		// A failing fn writes nothing and its error comes back.
		boom := errors.New("boom")
		if _, err := s.Update(ctx, "ord_1", func(x *charge.Payment) error { x.State = charge.StateVoided; return boom }); !errors.Is(err, boom) {
			t.Errorf("Update(failing fn) = %v, want boom", err)
		}
		if _, err := s.Update(ctx, "ord_1", func(*charge.Payment) error { return charge.ErrStateConflict }); !errors.Is(err, charge.ErrStateConflict) {
			t.Errorf("Update(fn failing with a domain error) = %v, want it back", err)
		}
		// The store refuses amounts that break the invariants.
		for name, bad := range map[string]func(*charge.Payment){
			"capture more than the amount": func(x *charge.Payment) { x.Captured = x.Amount.Minor + 1 },
			"refund more than captured":    func(x *charge.Payment) { x.Refunded = x.Captured + 1 },
			"negative capture":             func(x *charge.Payment) { x.Captured = -1 },
			"unknown state":                func(x *charge.Payment) { x.State = "lost" },
		} {
			if _, err := s.Update(ctx, "ord_1", func(x *charge.Payment) error { bad(x); return nil }); err == nil {
				t.Errorf("Update(%s) = nil, want an error", name)
			}
		}
		if got, err := s.Get(ctx, "ord_1"); err != nil || got != want {
			t.Errorf("Get after refused Updates = %+v, %v; want %+v", got, err, want)
		}

		want.State, want.Refunded = charge.StateRefunded, 600
		if got, err := s.Update(ctx, "ord_1", func(x *charge.Payment) error { x.State, x.Refunded = charge.StateRefunded, x.Captured; return nil }); err != nil || got != want {
			t.Errorf("Update(refund) = %+v, %v; want %+v", got, err, want)
		}
	})

	t.Run("RefusesInvalidPayments", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		for name, bad := range map[string]func(*charge.Payment){
			"zero amount":                   func(x *charge.Payment) { x.Amount.Minor = 0 },
			"captured more than the amount": func(x *charge.Payment) { x.Captured = x.Amount.Minor + 1 },
			"unknown state":                 func(x *charge.Payment) { x.State = "lost" },
		} {
			p := authorized("ord_1")
			bad(&p)
			if err := s.Create(ctx, p); err == nil || errors.Is(err, charge.ErrExists) {
				t.Errorf("Create(%s) = %v, want an error other than ErrExists", name, err)
			}
		}
		if _, err := s.Get(ctx, "ord_1"); !errors.Is(err, charge.ErrNotFound) {
			t.Errorf("Get after refused Creates = %v, want ErrNotFound", err)
		}
	})

	t.Run("ConcurrentUpdatesOfOnePayment", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		if err := s.Create(ctx, authorized("ord_hot")); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				for range updatesPerWrite {
					if _, err := s.Update(ctx, "ord_hot", func(x *charge.Payment) error { x.Captured++; return nil }); err != nil {
						t.Errorf("Update = %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		if got, err := s.Get(ctx, "ord_hot"); err != nil || got.Captured != writers*updatesPerWrite {
			t.Errorf("Get after %d concurrent increments = %d, %v; want %d (no lost update)", writers*updatesPerWrite, got.Captured, err, writers*updatesPerWrite)
		}
	})

	t.Run("ConcurrentCreatesOfOneOrder", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				p := authorized("ord_race")
				p.ID = fmt.Sprintf("pay_%d", i)
				errs[i] = s.Create(ctx, p)
			})
		}
		wg.Wait()
		winner := ""
		for i, err := range errs {
			switch {
			case err == nil:
				if winner != "" {
					t.Errorf("Create #%d succeeded after %s did; want one winner", i, winner)
				}
				winner = fmt.Sprintf("pay_%d", i)
			case !errors.Is(err, charge.ErrExists):
				t.Errorf("concurrent Create #%d = %v, want nil or ErrExists", i, err)
			}
		}
		if got, err := s.Get(ctx, "ord_race"); err != nil || got.ID != winner {
			t.Errorf("Get = %s, %v; want the winner %s", got.ID, err, winner)
		}
	})

	t.Run("NextAttemptCountsEveryConcurrentCall", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		const n = writers * updatesPerWrite
		seen := make(chan int, n)
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				for range updatesPerWrite {
					got, err := s.NextAttempt(ctx, "ord_1")
					if err != nil {
						t.Errorf("NextAttempt = %v", err)
						return
					}
					seen <- got
				}
			})
		}
		wg.Wait()
		close(seen)
		counts := map[int]int{}
		for c := range seen {
			counts[c]++
		}
		for i := 1; i <= n; i++ {
			if counts[i] != 1 {
				t.Errorf("attempt %d was returned %d times, want once (all: %v)", i, counts[i], counts)
			}
		}
		if got, err := s.NextAttempt(ctx, "ord_2"); err != nil || got != 1 {
			t.Errorf("NextAttempt(another order) = %d, %v; want 1", got, err)
		}
		if got, err := s.NextAttempt(ctx, "ord_1"); err != nil || got != n+1 {
			t.Errorf("NextAttempt(ord_1) after %d = %d, %v; want %d", n, got, err, n+1)
		}
	})
}

// authorized is an authorized payment of 10.00 EUR for the order.
func authorized(orderID string) charge.Payment {
	now := time.Now().UTC().Truncate(time.Microsecond) // what the stores keep
	return charge.Payment{
		ID: "pay_1", OrderID: orderID, State: charge.StateAuthorized, Token: "tok_visa",
		Amount: charge.Money{Currency: "EUR", Minor: 1000}, CardBrand: "visa", CardLast4: "4242",
		Created: now, Updated: now,
	}
}
