// Package storetest is the conformance suite every account.Store passes:
// the SQLite store (accountdb) and the Firestore one (accountfs) run the
// same tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shopfn/shopfn/functions/user/internal/account"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	"github.com/shopfn/shopfn/shared/auth"
)

// Concurrency of the hot-record cases: small, because transactions on one
// document are slow in the Firestore emulator (RECIPES.md), yet enough for
// lost updates and double registrations to show.
const (
	writers         = 5
	updatesPerWrite = 3
)

// Run runs the suite against the store that open returns (a fresh, empty
// one each time).
func Run(t *testing.T, open func(t *testing.T) account.Store) {
	t.Run("CreateAndRead", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		a := ann()
		a.DefaultAddress = &commonv1.Address{Name: "Zoë Ñandú", Line1: "1 Rue de la Paix", City: "Paris", PostalCode: "75002", CountryCode: "FR"}
		if err := s.Create(ctx, a); err != nil {
			t.Fatalf("Create = %v", err)
		}
		got, err := s.ByID(ctx, a.ID)
		if err != nil || !equal(got, a) {
			t.Errorf("ByID(%s) = %+v, %v; want %+v", a.ID, got, err, a)
		}
		got, err = s.ByEmail(ctx, a.Email)
		if err != nil || !equal(got, a) {
			t.Errorf("ByEmail(%s) = %+v, %v; want %+v", a.Email, got, err, a)
		}
		b := bob()
		if err := s.Create(ctx, b); err != nil {
			t.Fatalf("Create(second account) = %v", err)
		}
		if got, err := s.ByEmail(ctx, b.Email); err != nil || !equal(got, b) {
			t.Errorf("ByEmail(%s) = %+v, %v; want %+v", b.Email, got, err, b)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		if err := s.Create(ctx, ann()); err != nil {
			t.Fatal(err)
		}
		// Ids come from requests: ones no store could hold are not found.
		for _, id := range []string{"usr_missing", "usr/ann", ".", "..", "__usr__", "usr ann"} {
			if _, err := s.ByID(ctx, id); !errors.Is(err, account.ErrNotFound) {
				t.Errorf("ByID(%q) = %v, want ErrNotFound", id, err)
			}
		}
		if _, err := s.ByEmail(ctx, "nobody@example.com"); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("ByEmail(nobody) = %v, want ErrNotFound", err)
		}
		called := false
		if _, err := s.Update(ctx, "usr_missing", func(*account.Account) error { called = true; return nil }); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("Update(usr_missing) = %v, want ErrNotFound", err)
		}
		if called {
			t.Error("Update(usr_missing) called fn")
		}
	})

	t.Run("DuplicateEmail", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		a := ann()
		if err := s.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		dup := bob()
		dup.Email = a.Email
		if err := s.Create(ctx, dup); !errors.Is(err, account.ErrEmailTaken) {
			t.Fatalf("Create(duplicate email) = %v, want ErrEmailTaken", err)
		}
		if _, err := s.ByID(ctx, dup.ID); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("ByID(refused account) = %v, want ErrNotFound", err)
		}
		if got, err := s.ByEmail(ctx, a.Email); err != nil || got.ID != a.ID {
			t.Errorf("ByEmail after a refused duplicate = %+v, %v; want the first account", got, err)
		}
	})

	t.Run("Update", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		a := ann()
		if err := s.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		later := a.Updated.Add(time.Minute)
		addr := &commonv1.Address{Name: "Ann", Line1: "2 Main St", City: "Lyon", CountryCode: "FR"}
		want := a
		want.DisplayName, want.Role, want.PasswordHash, want.DefaultAddress, want.Updated = "Annie", auth.RoleAdmin, "hash2", addr, later
		got, err := s.Update(ctx, a.ID, func(x *account.Account) error {
			x.DisplayName, x.Role, x.PasswordHash, x.DefaultAddress, x.Updated = "Annie", auth.RoleAdmin, "hash2", addr, later
			// Not changeable: the store keeps them.
			x.ID, x.Email, x.Created = "usr_other", "other@example.com", later
			return nil
		})
		if err != nil || !equal(got, want) {
			t.Errorf("Update = %+v, %v; want %+v", got, err, want)
		}
		if got, err := s.ByID(ctx, a.ID); err != nil || !equal(got, want) {
			t.Errorf("ByID after Update = %+v, %v; want %+v", got, err, want)
		}
		if got, err := s.ByEmail(ctx, a.Email); err != nil || !equal(got, want) {
			t.Errorf("ByEmail after Update = %+v, %v; want %+v", got, err, want)
		}
		if _, err := s.ByEmail(ctx, "other@example.com"); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("ByEmail(email set by fn) = %v, want ErrNotFound", err)
		}

		// Clearing the address.
		want.DefaultAddress = nil
		if got, err := s.Update(ctx, a.ID, func(x *account.Account) error { x.DefaultAddress = nil; return nil }); err != nil || !equal(got, want) {
			t.Errorf("Update(clear address) = %+v, %v; want %+v", got, err, want)
		}

		// A failing fn writes nothing and its error comes back.
		boom := errors.New("boom")
		if _, err := s.Update(ctx, a.ID, func(x *account.Account) error { x.DisplayName = "changed"; return boom }); !errors.Is(err, boom) {
			t.Errorf("Update(failing fn) = %v, want boom", err)
		}
		if _, err := s.Update(ctx, a.ID, func(*account.Account) error { return account.ErrNotFound }); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("Update(fn failing with a domain error) = %v, want it back", err)
		}
		if got, err := s.ByID(ctx, a.ID); err != nil || !equal(got, want) {
			t.Errorf("ByID after failed Updates = %+v, %v; want %+v", got, err, want)
		}
	})

	t.Run("ConcurrentUpdatesOfOneAccount", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		a := ann()
		a.DisplayName = "0"
		if err := s.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				for range updatesPerWrite {
					_, err := s.Update(ctx, a.ID, func(x *account.Account) error {
						n, err := strconv.Atoi(x.DisplayName)
						if err != nil {
							return err
						}
						x.DisplayName = strconv.Itoa(n + 1)
						return nil
					})
					if err != nil {
						t.Errorf("Update = %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		want := strconv.Itoa(writers * updatesPerWrite)
		if got, err := s.ByID(ctx, a.ID); err != nil || got.DisplayName != want {
			t.Errorf("ByID after %d concurrent increments = %q, %v; want %q (no lost update)", writers*updatesPerWrite, got.DisplayName, err, want)
		}
	})

	t.Run("ConcurrentRegistrationsOfOneEmail", func(t *testing.T) {
		s, ctx := open(t), context.Background()
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				a := ann()
				a.ID = fmt.Sprintf("usr_race_%d", i)
				errs[i] = s.Create(ctx, a)
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
				winner = fmt.Sprintf("usr_race_%d", i)
			case !errors.Is(err, account.ErrEmailTaken):
				t.Errorf("concurrent Create #%d = %v, want nil or ErrEmailTaken", i, err)
			}
		}
		if winner == "" {
			t.Fatal("no concurrent Create succeeded")
		}
		if got, err := s.ByEmail(ctx, ann().Email); err != nil || got.ID != winner {
			t.Errorf("ByEmail = %s, %v; want the winner %s", got.ID, err, winner)
		}
		for i := range writers {
			id := fmt.Sprintf("usr_race_%d", i)
			if _, err := s.ByID(ctx, id); id != winner && !errors.Is(err, account.ErrNotFound) {
				t.Errorf("ByID(loser %s) = %v, want ErrNotFound", id, err)
			}
		}
	})
}

// stamp is a time as the stores keep it (microseconds, UTC).
func stamp() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func ann() account.Account {
	now := stamp()
	return account.Account{ID: "usr_ann", Email: "ann@example.com", DisplayName: "Ann", Role: auth.RoleCustomer, PasswordHash: "hash1", Created: now, Updated: now}
}

func bob() account.Account {
	now := stamp()
	return account.Account{ID: "usr_bob", Email: "bob@example.com", DisplayName: "Bob", Role: auth.RoleCustomer, PasswordHash: "hash3", Created: now, Updated: now}
}

// equal compares accounts field by field (the address is a message).
func equal(a, b account.Account) bool {
	ap, bp := a.DefaultAddress, b.DefaultAddress
	a.DefaultAddress, b.DefaultAddress = nil, nil
	return a.ID == b.ID && a.Email == b.Email && a.DisplayName == b.DisplayName && a.Role == b.Role &&
		a.PasswordHash == b.PasswordHash && a.Created.Equal(b.Created) && a.Updated.Equal(b.Updated) &&
		(ap == nil) == (bp == nil) && proto.Equal(ap, bp)
}
