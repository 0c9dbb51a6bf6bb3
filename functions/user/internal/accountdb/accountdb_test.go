package accountdb_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/user/internal/account"
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

func TestCreateRejectsDuplicateEmail(t *testing.T) {
	s := open(t, 10)
	ctx := context.Background()
	a := account.Account{ID: "usr_1", Email: "a@b.c", DisplayName: "A", Role: auth.RoleCustomer, PasswordHash: "x"}
	if err := s.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	a.ID = "usr_2"
	if err := s.Create(ctx, a); !errors.Is(err, account.ErrEmailTaken) {
		t.Fatalf("Create(duplicate email) = %v, want ErrEmailTaken", err)
	}
	if _, err := s.ByID(ctx, "usr_2"); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("ByID(refused account) = %v, want ErrNotFound", err)
	}
}
