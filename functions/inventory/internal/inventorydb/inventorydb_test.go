package inventorydb_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/inventory/internal/inventorydb"
	"github.com/shopfn/shopfn/functions/inventory/internal/stock"
	"github.com/shopfn/shopfn/functions/inventory/internal/stock/storetest"
)

func open(t *testing.T, cacheSize int) *inventorydb.Store {
	t.Helper()
	s := inventorydb.Open(context.Background(), filepath.Join(t.TempDir(), "inventory.db"), cacheSize)
	t.Cleanup(func() { s.Close() })
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStore runs the stock.Store conformance suite on SQLite, with and
// without the read cache.
func TestStore(t *testing.T) {
	for _, size := range []int{0, 100} {
		t.Run(fmt.Sprintf("cache=%d", size), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) storetest.Store { return open(t, size) })
		})
	}
}

func put(ctx context.Context, s *inventorydb.Store, onHand int64) error {
	return s.InTx(ctx, func(tx stock.Tx) error {
		return tx.PutStock(stock.Stock{SKU: "SKU-1", OnHand: onHand, Updated: time.Now()})
	})
}

// TestCacheStaysCoherent races readers against writers of one SKU; after
// the writers stop, every read must see the last committed value, whatever
// the readers cached on the way. Rolled-back writes must never be seen.
func TestCacheStaysCoherent(t *testing.T) {
	const rolledBack = 1_000_000
	for _, size := range []int{0, 10} {
		t.Run(fmt.Sprintf("cache=%d", size), func(t *testing.T) {
			s := open(t, size)
			ctx := context.Background()
			if err := put(ctx, s, 0); err != nil {
				t.Fatal(err)
			}
			var wg, reading sync.WaitGroup
			stop := make(chan struct{})
			for range 4 {
				reading.Add(1)
				wg.Go(func() {
					for first := true; ; first = false {
						select {
						case <-stop:
							return
						default:
						}
						got, err := s.Stock(ctx, "SKU-1")
						if first {
							reading.Done()
						}
						if err != nil {
							t.Error(err)
							return
						}
						if got.OnHand == rolledBack {
							t.Errorf("Stock(SKU-1) = %+v: a rolled-back write was seen", got)
						}
					}
				})
			}
			reading.Wait() // every reader has read (and maybe cached) once
			errRollback := errors.New("roll back")
			for i := range 100 {
				if err := put(ctx, s, int64(i)); err != nil {
					t.Fatal(err)
				}
				err := s.InTx(ctx, func(tx stock.Tx) error {
					if err := tx.PutStock(stock.Stock{SKU: "SKU-1", OnHand: rolledBack, Updated: time.Now()}); err != nil {
						return err
					}
					return errRollback
				})
				if !errors.Is(err, errRollback) {
					t.Fatalf("InTx(rolled back) = %v", err)
				}
			}
			close(stop)
			wg.Wait()
			for range 3 {
				if got, err := s.Stock(ctx, "SKU-1"); err != nil || got.OnHand != 99 {
					t.Errorf("Stock(SKU-1) after the writes = %+v, %v; want on_hand 99", got, err)
				}
			}
		})
	}
}
