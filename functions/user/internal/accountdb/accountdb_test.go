package accountdb_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/user/internal/account"
	"github.com/shopfn/shopfn/functions/user/internal/account/storetest"
	"github.com/shopfn/shopfn/functions/user/internal/accountdb"
	"github.com/shopfn/shopfn/shared/auth"
)

func open(t *testing.T, cacheSize int) *accountdb.Store {
	t.Helper()
	s := accountdb.Open(context.Background(), filepath.Join(t.TempDir(), "user.db"), cacheSize)
	t.Cleanup(func() { s.Close() })
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCacheStaysCoherent races readers against writers of one account; after
// the writers stop, every read must see the last committed name, whatever
// the readers cached on the way.
func TestCacheStaysCoherent(t *testing.T) {
	for _, size := range []int{0, 10} {
		t.Run(fmt.Sprintf("cache=%d", size), func(t *testing.T) {
			s := open(t, size)
			ctx := context.Background()
			now := time.Now()
			if err := s.Create(ctx, account.Account{ID: "usr_1", Email: "a@b.c", DisplayName: "v0", Role: auth.RoleCustomer, PasswordHash: "x", Created: now, Updated: now}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := s.ByID(ctx, "usr_1"); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			var last string
			for i := range 50 {
				last = fmt.Sprintf("v%d", i+1)
				name := last
				if _, err := s.Update(ctx, "usr_1", func(a *account.Account) error { a.DisplayName = name; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			close(stop)
			wg.Wait()
			for range 3 {
				a, err := s.ByID(ctx, "usr_1")
				if err != nil || a.DisplayName != last {
					t.Fatalf("ByID after the writes = %q, %v; want %q", a.DisplayName, err, last)
				}
			}
		})
	}
}

// TestConformance runs the account.Store suite on SQLite, with the cache
// on (it must not change what the store answers).
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) account.Store { return open(t, 10) })
}
