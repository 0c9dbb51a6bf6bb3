package stock_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/inventory/internal/inventorydb"
	"github.com/shopfn/shopfn/functions/inventory/internal/stock"
)

const ttl = 15 * time.Minute

func open(t *testing.T) *inventorydb.Store {
	t.Helper()
	s := inventorydb.Open(context.Background(), filepath.Join(t.TempDir(), "inventory.db"), 100)
	t.Cleanup(func() { s.Close() })
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// clock is a settable time for the service.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T, s stock.Store) (*stock.Service, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	svc := stock.NewService(s, stock.Settings{TTL: ttl, LowStockThreshold: 5})
	svc.SetClock(c.now)
	if _, err := svc.SetStock(context.Background(), "SKU-1", 10); err != nil {
		t.Fatal(err)
	}
	return svc, c
}

func wantStock(t *testing.T, s stock.Store, onHand, reserved int64) {
	t.Helper()
	got, err := s.Stock(context.Background(), "SKU-1")
	if err != nil || got.OnHand != onHand || got.Reserved != reserved {
		t.Errorf("Stock(SKU-1) = %+v, %v; want on_hand %d reserved %d", got, err, onHand, reserved)
	}
}

// TestExpiryIsStrictlyAfterExpireTime pins the definition: a reservation
// can be committed at its expire time and not a microsecond later.
func TestExpiryIsStrictlyAfterExpireTime(t *testing.T) {
	tests := []struct {
		name  string
		after time.Duration
		want  error
	}{
		{"just before", ttl - time.Microsecond, nil},
		{"at expire_time", ttl, nil},
		{"just after", ttl + time.Microsecond, stock.ErrReservationExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			svc, c := newService(t, s)
			ctx := context.Background()
			start := c.t
			r, err := svc.Reserve(ctx, "ord_1", []stock.Line{{SKU: "SKU-1", Quantity: 2}})
			if err != nil || !r.Expires.Equal(start.Add(ttl)) {
				t.Fatalf("Reserve = %+v, %v; want expiry at %v", r, err, start.Add(ttl))
			}
			c.t = start.Add(tt.after)
			if _, err := svc.Commit(ctx, "ord_1"); !errors.Is(err, tt.want) {
				t.Errorf("Commit(%v after) = %v, want %v", tt.after, err, tt.want)
			}
		})
	}
}

func TestReleaseExpiredInBatches(t *testing.T) {
	s := open(t)
	svc, c := newService(t, s)
	ctx := context.Background()
	if _, err := svc.SetStock(ctx, "SKU-1", 1000); err != nil {
		t.Fatal(err)
	}
	const n = 250 // more than one batch
	for i := range n {
		if _, err := svc.Reserve(ctx, fmt.Sprintf("ord_%d", i), []stock.Line{{SKU: "SKU-1", Quantity: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	c.t = c.t.Add(ttl + time.Second)
	tests := []struct {
		limit, want int
	}{
		{120, 120},
		{0, n - 120},
		{0, 0},
	}
	for _, tt := range tests {
		if got, err := svc.ReleaseExpired(ctx, tt.limit); err != nil || got != tt.want {
			t.Errorf("ReleaseExpired(%d) = %d, %v; want %d", tt.limit, got, err, tt.want)
		}
	}
	wantStock(t, s, 1000, 0)
}
