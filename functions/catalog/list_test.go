package catalog_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	"github.com/shopfn/shopfn/shared/servetest"
)

func skus(ps []*catalogv1.Product) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.GetSku()
	}
	return out
}

// listAll pages through a listing and returns every product in order.
func (e *env) listAll(t testing.TB, ctx context.Context, req *catalogv1.ListProductsRequest) []*catalogv1.Product {
	t.Helper()
	var all []*catalogv1.Product
	for range 1000 {
		got, err := e.client.ListProducts(ctx, req)
		if err != nil {
			t.Fatalf("ListProducts(%v) = %v", req, err)
		}
		all = append(all, got.GetProducts()...)
		if got.GetNextPageToken() == "" {
			return all
		}
		req = cloneList(req)
		req.PageToken = got.GetNextPageToken()
	}
	t.Fatal("ListProducts never ended")
	return nil
}

func cloneList(r *catalogv1.ListProductsRequest) *catalogv1.ListProductsRequest {
	return proto.Clone(r).(*catalogv1.ListProductsRequest)
}

func TestListFiltersAndSearch(t *testing.T) {
	e := start(t, nil)
	type item struct {
		sku, name, desc, category, currency string
		minor                               int64
		active                              bool
	}
	for _, it := range []item{
		{"A", "Red mug", "Ceramic, holds 300 ml", "kitchen", "EUR", 1200, true},
		{"B", "Blue mug", "Enamel camping mug", "outdoor", "EUR", 900, true},
		{"C", "Café au lait bowl", "Large ceramic bowl", "kitchen", "EUR", 2500, true},
		{"D", "Tea pot", "Cast iron, Japanese style", "kitchen", "USD", 4000, true},
		{"E", "Old mug", "Discontinued ceramic mug", "kitchen", "EUR", 500, false},
		{"F", "Zebra mug", "Striped porcelain", "kitchen", "GBP", 1100, true},
	} {
		e.create(t, &catalogv1.ProductDraft{Sku: it.sku, Name: it.name, Description: it.desc, Category: it.category,
			Price: &commonv1.Money{CurrencyCode: it.currency, AmountMinor: it.minor}, Active: it.active})
	}
	tests := []struct {
		name string
		ctx  context.Context
		req  *catalogv1.ListProductsRequest
		want []string
	}{
		{"everything active, by name", e.customer, &catalogv1.ListProductsRequest{}, []string{"B", "C", "A", "D", "F"}},
		{"anonymous", context.Background(), &catalogv1.ListProductsRequest{}, []string{"B", "C", "A", "D", "F"}},
		{"category", e.customer, &catalogv1.ListProductsRequest{Category: "kitchen"}, []string{"C", "A", "D", "F"}},
		{"unknown category", e.customer, &catalogv1.ListProductsRequest{Category: "garden"}, nil},
		{"min price", e.customer, &catalogv1.ListProductsRequest{CurrencyCode: "EUR", MinPriceMinor: 1000}, []string{"C", "A"}},
		{"max price", e.customer, &catalogv1.ListProductsRequest{CurrencyCode: "EUR", MaxPriceMinor: 1200}, []string{"B", "A"}},
		{"price range", e.customer, &catalogv1.ListProductsRequest{CurrencyCode: "EUR", MinPriceMinor: 1000, MaxPriceMinor: 1200}, []string{"A"}},
		{"currency alone", e.customer, &catalogv1.ListProductsRequest{CurrencyCode: "USD"}, []string{"D"}},
		{"other currency's prices do not match", e.customer, &catalogv1.ListProductsRequest{CurrencyCode: "GBP", MaxPriceMinor: 5000}, []string{"F"}},
		{"one word", e.customer, &catalogv1.ListProductsRequest{Query: "mug"}, []string{"B", "A", "F"}},
		{"every word must appear", e.customer, &catalogv1.ListProductsRequest{Query: "ceramic mug"}, []string{"A"}},
		{"words in name or description", e.customer, &catalogv1.ListProductsRequest{Query: "red ceramic"}, []string{"A"}},
		{"case and accents ignored", e.customer, &catalogv1.ListProductsRequest{Query: "CAFE"}, []string{"C"}},
		{"accented query", e.customer, &catalogv1.ListProductsRequest{Query: "café"}, []string{"C"}},
		{"punctuation and operators are words or nothing", e.customer, &catalogv1.ListProductsRequest{Query: `mug" OR NOT "tea*`}, nil},
		{"only punctuation", e.customer, &catalogv1.ListProductsRequest{Query: "!!!"}, []string{"B", "C", "A", "D", "F"}},
		{"no match", e.customer, &catalogv1.ListProductsRequest{Query: "spaceship"}, nil},
		{"search and category", e.customer, &catalogv1.ListProductsRequest{Query: "mug", Category: "outdoor"}, []string{"B"}},
		{"admin sees inactive on request", e.admin, &catalogv1.ListProductsRequest{Query: "mug", IncludeInactive: true}, []string{"B", "E", "A", "F"}},
		{"admin without the flag", e.admin, &catalogv1.ListProductsRequest{Query: "mug"}, []string{"B", "A", "F"}},
		{"customer's flag is ignored", e.customer, &catalogv1.ListProductsRequest{Query: "mug", IncludeInactive: true}, []string{"B", "A", "F"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int32{0, 1, 2} { // one page, and paged
				req := cloneList(tt.req)
				req.PageSize = size
				if got := skus(e.listAll(t, tt.ctx, req)); !slices.Equal(got, tt.want) {
					t.Errorf("ListProducts(%v) = %v, want %v", req, got, tt.want)
				}
			}
		})
	}

	bad := []struct {
		name   string
		req    *catalogv1.ListProductsRequest
		reason string
		field  string
	}{
		{"bound without currency", &catalogv1.ListProductsRequest{MinPriceMinor: 100}, "INVALID_ARGUMENT", "currency_code"},
		{"max bound without currency", &catalogv1.ListProductsRequest{MaxPriceMinor: 100}, "INVALID_ARGUMENT", "currency_code"},
		{"min above max", &catalogv1.ListProductsRequest{CurrencyCode: "EUR", MinPriceMinor: 500, MaxPriceMinor: 100}, "INVALID_ARGUMENT", "max_price_minor"},
		{"lower-case currency", &catalogv1.ListProductsRequest{CurrencyCode: "eur"}, "INVALID_ARGUMENT", "currency_code"},
		{"negative page size", &catalogv1.ListProductsRequest{PageSize: -1}, "INVALID_ARGUMENT", "page_size"},
		{"garbage token", &catalogv1.ListProductsRequest{PageToken: "not a token!"}, "INVALID_PAGE_TOKEN", ""},
		{"truncated token", &catalogv1.ListProductsRequest{PageToken: "AQ"}, "INVALID_PAGE_TOKEN", ""},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.ListProducts(e.customer, tt.req)
			if tt.field != "" {
				wantField(t, err, tt.field)
			} else {
				servetest.WantErr(t, err, codes.InvalidArgument, tt.reason)
			}
		})
	}
}

func TestListPageTokenIsBoundToItsQuery(t *testing.T) {
	e := start(t, nil)
	if _, err := e.bulkImport(e.admin, items("P", 10)); err != nil {
		t.Fatal(err)
	}
	first, err := e.client.ListProducts(e.admin, &catalogv1.ListProductsRequest{PageSize: 3, Category: "kitchen"})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("ListProducts(page 1) = %v, %v; want a next page", first, err)
	}
	tok := first.GetNextPageToken()
	other := []struct {
		name string
		req  *catalogv1.ListProductsRequest
	}{
		{"no category", &catalogv1.ListProductsRequest{}},
		{"another category", &catalogv1.ListProductsRequest{Category: "garden"}},
		{"a search", &catalogv1.ListProductsRequest{Category: "kitchen", Query: "product"}},
		{"a price bound", &catalogv1.ListProductsRequest{Category: "kitchen", CurrencyCode: "EUR", MinPriceMinor: 1}},
		{"inactive included", &catalogv1.ListProductsRequest{Category: "kitchen", IncludeInactive: true}},
	}
	for _, tt := range other {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.PageToken = tok
			_, err := e.client.ListProducts(e.admin, tt.req)
			servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_PAGE_TOKEN")
		})
	}
	// The same query with another page size is fine.
	if _, err := e.client.ListProducts(e.admin, &catalogv1.ListProductsRequest{Category: "kitchen", PageSize: 5, PageToken: tok}); err != nil {
		t.Errorf("ListProducts(same filters, other page size) = %v", err)
	}
}

func TestListPageSizes(t *testing.T) {
	e := start(t, nil)
	if _, err := e.bulkImport(e.admin, items("P", 130)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ size, want int32 }{{0, 20}, {1, 1}, {100, 100}, {150, 100}} {
		got, err := e.client.ListProducts(e.customer, &catalogv1.ListProductsRequest{PageSize: tt.size})
		if err != nil || int32(len(got.GetProducts())) != tt.want || got.GetNextPageToken() == "" {
			t.Errorf("ListProducts(page_size %d) = %d products, %v; want %d and a next page", tt.size, len(got.GetProducts()), err, tt.want)
		}
	}
}

// TestListPagingWhileAdding pages through the catalog while products are
// being created: every product that existed before the first page appears
// exactly once, in order, whatever is added meanwhile.
func TestListPagingWhileAdding(t *testing.T) {
	e := start(t, nil)
	const before = 150
	if _, err := e.bulkImport(e.admin, items("P", before)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Names that sort before, between and after the existing ones.
			name := []string{"A new", "Product 5x", "Zz new"}[i%3] + fmt.Sprint(i)
			if _, err := e.client.CreateProduct(e.admin, &catalogv1.CreateProductRequest{Product: draft(sku("NEW", i), name, 1)}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	all := e.listAll(t, e.customer, &catalogv1.ListProductsRequest{PageSize: 7})
	close(stop)
	wg.Wait()

	seen := map[string]int{}
	for _, p := range all {
		seen[p.GetSku()]++
	}
	for sku, n := range seen {
		if n != 1 {
			t.Errorf("product %s listed %d times, want once", sku, n)
		}
	}
	for i := range before {
		if seen[sku("P", i)] != 1 {
			t.Errorf("product %s missing from the listing", sku("P", i))
		}
	}
	if !sort.SliceIsSorted(all, func(i, j int) bool {
		a, b := all[i], all[j]
		return a.GetName() < b.GetName() || a.GetName() == b.GetName() && a.GetId() < b.GetId()
	}) {
		t.Errorf("listing is not ordered by name, then id")
	}
}

// A listing served after a change shows the change: the encodings kept for
// listings (of products and of whole pages) are used only for the products
// and revisions the store lists now.
func TestListShowsChangesToListedProducts(t *testing.T) {
	e := start(t, nil)
	p := e.create(t, draft("MUG-1", "Red mug", 1250))
	list := func() *catalogv1.Product {
		t.Helper()
		got, err := e.client.ListProducts(context.Background(), &catalogv1.ListProductsRequest{})
		if err != nil || len(got.GetProducts()) != 1 {
			t.Fatalf("ListProducts = %v, %v; want the one product", got, err)
		}
		return got.GetProducts()[0]
	}
	if first := list(); !proto.Equal(first, p) {
		t.Fatalf("listed %v, want %v", first, p)
	}
	for i, name := range []string{"Blue mug", "Green mug"} {
		up, err := e.client.UpdateProduct(e.admin, &catalogv1.UpdateProductRequest{
			ProductId: p.GetId(), Etag: p.GetEtag(), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}},
			Product: &catalogv1.ProductDraft{Name: name},
		})
		if err != nil {
			t.Fatalf("UpdateProduct %d = %v", i, err)
		}
		p = up.GetProduct()
		if got := list(); !proto.Equal(got, p) {
			t.Errorf("listed after update %d: %v, want %v", i, got, p)
		}
	}
	// The same request, now answered with other products: a new one, then
	// none (both deactivated).
	q := e.create(t, draft("MUG-2", "Another mug", 900))
	got, err := e.client.ListProducts(context.Background(), &catalogv1.ListProductsRequest{})
	if err != nil || len(got.GetProducts()) != 2 || !proto.Equal(got.GetProducts()[0], q) || !proto.Equal(got.GetProducts()[1], p) {
		t.Errorf("ListProducts after a create = %v, %v; want %v and %v", got, err, q, p)
	}
	for _, prod := range []*catalogv1.Product{p, q} {
		if _, err := e.client.UpdateProduct(e.admin, &catalogv1.UpdateProductRequest{
			ProductId: prod.GetId(), Etag: prod.GetEtag(), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"active"}},
			Product: &catalogv1.ProductDraft{Active: false},
		}); err != nil {
			t.Fatalf("deactivate %s = %v", prod.GetId(), err)
		}
	}
	if got, err := e.client.ListProducts(context.Background(), &catalogv1.ListProductsRequest{}); err != nil || len(got.GetProducts()) != 0 {
		t.Errorf("ListProducts after deactivating both = %v, %v; want none", got, err)
	}
}
