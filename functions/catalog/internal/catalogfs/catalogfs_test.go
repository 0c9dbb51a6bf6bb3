package catalogfs_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/shopfn/shopfn/functions/catalog/internal/catalogfs"
	"github.com/shopfn/shopfn/functions/catalog/internal/product"
	"github.com/shopfn/shopfn/functions/catalog/internal/product/storetest"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func open(t *testing.T) *catalogfs.Store {
	t.Helper()
	s := catalogfs.Open(context.Background(), testenv.ProjectID(t), "shopfn-catalog")
	t.Cleanup(func() { s.Close() })
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStore runs the product.Store conformance suite on the Firestore
// emulator, each case in a project of its own.
func TestStore(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t) })
}

// TestListFailsWhenTooBroad lists with a filter Firestore cannot apply
// (a price bound) over more products than a listing reads (lowered to 100
// here): it fails rather than end the listing early.
func TestListFailsWhenTooBroad(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	s := open(t)
	ctx := context.Background()
	catalogfs.SetMaxScan(s, 100)
	drafts := make([]product.Draft, 120)
	for i := range drafts {
		drafts[i] = product.Draft{SKU: "S" + strconv.Itoa(i), Name: "cheap " + strconv.Itoa(i), Category: "kitchen",
			Price: product.Money{Currency: "EUR", Minor: 100}, Active: true}
	}
	drafts[len(drafts)-1].Price.Minor = 5000
	drafts[len(drafts)-1].Name = "zz expensive" // listed last
	if _, err := s.Import(ctx, drafts, storetest.Merge("x")); err != nil {
		t.Fatal(err)
	}
	q := product.Query{Filter: product.Filter{Currency: "EUR", MinPrice: 1000}, Limit: 21}
	if _, err := s.List(ctx, q); !errors.Is(err, product.ErrQueryTooBroad) {
		t.Errorf("List(%+v) = %v, want ErrQueryTooBroad", q, err)
	}
	// Below the bound, the same filter finds the product.
	q.After, q.AfterName, q.AfterID = true, "cheap 50", "prd_x_S50"
	if ps, err := s.List(ctx, q); err != nil || len(ps) != 1 || ps[0].Price.Minor != 5000 {
		t.Errorf("List(%+v) = %d products, %v; want the one", q, len(ps), err)
	}
}
