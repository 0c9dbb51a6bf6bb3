package paymentdb_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/payment/internal/charge"
	"github.com/shopfn/shopfn/functions/payment/internal/paymentdb"
)

func open(t *testing.T) *paymentdb.Store {
	t.Helper()
	s := paymentdb.Open(context.Background(), filepath.Join(t.TempDir(), "payment.db"))
	t.Cleanup(func() { s.Close() })
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNextAttemptCountsEveryConcurrentCall(t *testing.T) {
	s := open(t)
	const n = 20
	var wg sync.WaitGroup
	seen := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.NextAttempt(context.Background(), "ord_1")
			if err != nil {
				t.Error(err)
			}
			seen <- got
		}()
	}
	wg.Wait()
	close(seen)
	counts := map[int]bool{}
	for c := range seen {
		counts[c] = true
	}
	for i := 1; i <= n; i++ {
		if !counts[i] {
			t.Errorf("no call got attempt %d (got %v)", i, counts)
		}
	}
	if got, _ := s.NextAttempt(context.Background(), "ord_2"); got != 1 {
		t.Errorf("NextAttempt(another order) = %d, want 1", got)
	}
}

func TestCreateGetUpdate(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := charge.Payment{
		ID: "pay_1", OrderID: "ord_1", State: charge.StateAuthorized, Token: "tok_visa",
		Amount: charge.Money{Currency: "EUR", Minor: 1000}, CardBrand: "visa", CardLast4: "4242",
		Created: now, Updated: now,
	}
	if err := s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, p); !errors.Is(err, charge.ErrExists) {
		t.Errorf("Create(same order) = %v, want ErrExists", err)
	}
	if got, err := s.Get(ctx, "ord_1"); err != nil || got != p {
		t.Errorf("Get(ord_1) = %+v, %v, want %+v", got, err, p)
	}
	if _, err := s.Get(ctx, "ord_2"); !errors.Is(err, charge.ErrNotFound) {
		t.Errorf("Get(ord_2) = %v, want ErrNotFound", err)
	}
	// A failing fn writes nothing.
	boom := errors.New("boom")
	if _, err := s.Update(ctx, "ord_1", func(p *charge.Payment) error { p.State = charge.StateVoided; return boom }); !errors.Is(err, boom) {
		t.Errorf("Update(failing fn) = %v, want boom", err)
	}
	if got, _ := s.Get(ctx, "ord_1"); got.State != charge.StateAuthorized {
		t.Errorf("state after a failed Update = %s, want authorized", got.State)
	}
	// The schema refuses amounts that break the invariants.
	if _, err := s.Update(ctx, "ord_1", func(p *charge.Payment) error { p.Captured = 1001; return nil }); err == nil {
		t.Errorf("Update(capture more than the amount) = nil, want a constraint error")
	}
	got, err := s.Update(ctx, "ord_1", func(p *charge.Payment) error { p.State, p.Captured = charge.StateCaptured, 600; return nil })
	if err != nil || got.State != charge.StateCaptured || got.Captured != 600 {
		t.Errorf("Update(capture 600) = %+v, %v", got, err)
	}
	if _, err := s.Update(ctx, "ord_2", func(*charge.Payment) error { return nil }); !errors.Is(err, charge.ErrNotFound) {
		t.Errorf("Update(ord_2) = %v, want ErrNotFound", err)
	}
}
