package catalog_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/servetest"
)

// bulkImport sends items as one import stream.
func (e *env) bulkImport(ctx context.Context, items []*catalogv1.ProductDraft) (*catalogv1.BulkImportProductsResponse, error) {
	stream, err := e.client.BulkImportProducts(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range items {
		if err := stream.Send(&catalogv1.BulkImportProductsRequest{Product: d}); err != nil {
			break // the server ended the stream; CloseAndRecv says why
		}
	}
	return stream.CloseAndRecv()
}

// etags returns the etag of every product by SKU.
func (e *env) etags(t testing.TB) map[string]string {
	t.Helper()
	rows, err := e.db(t).Query("SELECT sku, revision FROM products")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var sku string
		var rev int64
		if err := rows.Scan(&sku, &rev); err != nil {
			t.Fatal(err)
		}
		out[sku] = strconv.FormatInt(rev, 10)
	}
	return out
}

func TestBulkImportMixedItems(t *testing.T) {
	e := start(t, nil)
	existing := e.create(t, draft("OLD-1", "Old name", 100))

	noName := draft("BAD-NAME", "", 100)
	badSKU := draft("has space", "Bad SKU", 100)
	badPrice := draft("BAD-PRICE", "Bad price", 100)
	badPrice.Price.CurrencyCode = "eur"
	items := []*catalogv1.ProductDraft{
		draft("NEW-1", "New one", 100),  // 0 created
		noName,                          // 1 refused
		draft("OLD-1", "New name", 100), // 2 updated
		nil,                             // 3 refused: no product
		draft("NEW-2", "New two", 200),  // 4 created
		badSKU,                          // 5 refused
		badPrice,                        // 6 refused
		draft("NEW-2", "New two", 200),  // 7 unchanged: same as item 4
	}
	got, err := e.bulkImport(e.admin, items)
	if err != nil {
		t.Fatalf("BulkImportProducts = %v", err)
	}
	want := &catalogv1.BulkImportProductsResponse{Received: 8, Created: 2, Updated: 1, Unchanged: 1}
	if got.GetReceived() != want.Received || got.GetCreated() != want.Created || got.GetUpdated() != want.Updated || got.GetUnchanged() != want.Unchanged {
		t.Errorf("BulkImportProducts counts = %v, want %v", got, want)
	}
	wantErrors := []struct {
		index int32
		sku   string
	}{{1, "BAD-NAME"}, {3, ""}, {5, "has space"}, {6, "BAD-PRICE"}}
	if len(got.GetErrors()) != len(wantErrors) {
		t.Fatalf("BulkImportProducts errors = %v, want %v", got.GetErrors(), wantErrors)
	}
	for i, w := range wantErrors {
		g := got.GetErrors()[i]
		if g.GetIndex() != w.index || g.GetSku() != w.sku || g.GetReason() != "INVALID_ARGUMENT" || g.GetMessage() == "" {
			t.Errorf("error %d = %v, want index %d, sku %q, INVALID_ARGUMENT and a message", i, g, w.index, w.sku)
		}
	}
	if n := e.rows(t); n != 3 {
		t.Errorf("products = %d, want 3 (OLD-1, NEW-1, NEW-2)", n)
	}
	if p := e.get(t, existing.GetId()); p.GetName() != "New name" || p.GetEtag() == existing.GetEtag() {
		t.Errorf("OLD-1 after import = %v, want renamed with a new etag", p)
	}

	// The same stream again changes nothing.
	before := e.etags(t)
	again, err := e.bulkImport(e.admin, items)
	if err != nil {
		t.Fatalf("BulkImportProducts(again) = %v", err)
	}
	if again.GetReceived() != 8 || again.GetCreated() != 0 || again.GetUpdated() != 0 || again.GetUnchanged() != 4 || len(again.GetErrors()) != 4 {
		t.Errorf("BulkImportProducts(again) = %v, want 4 unchanged and the same 4 errors", again)
	}
	if after := e.etags(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("etags after re-import = %v, want %v", after, before)
	}
}

func TestBulkImportNeedsAdmin(t *testing.T) {
	e := start(t, nil)
	_, err := e.bulkImport(e.customer, []*catalogv1.ProductDraft{draft("NEW-1", "New", 1)})
	servetest.WantErr(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	if n := e.rows(t); n != 0 {
		t.Errorf("products after a refused import = %d, want 0", n)
	}
}

func TestBulkImportEmptyStream(t *testing.T) {
	e := start(t, nil)
	got, err := e.bulkImport(e.admin, nil)
	if err != nil || !proto.Equal(got, &catalogv1.BulkImportProductsResponse{}) {
		t.Errorf("BulkImportProducts(nothing) = %v, %v; want all zero", got, err)
	}
}

func items(prefix string, n int) []*catalogv1.ProductDraft {
	out := make([]*catalogv1.ProductDraft, n)
	for i := range out {
		out[i] = draft(sku(prefix, i), fmt.Sprintf("Product %d", i), int64(100+i))
	}
	return out
}

func TestBulkImportTenThousand(t *testing.T) {
	e := start(t, nil)
	got, err := e.bulkImport(e.admin, items("BULK", 10_000))
	if err != nil {
		t.Fatalf("BulkImportProducts(10,000) = %v", err)
	}
	if got.GetReceived() != 10_000 || got.GetCreated() != 10_000 || len(got.GetErrors()) != 0 {
		t.Errorf("BulkImportProducts(10,000) = received %d, created %d, %d errors; want 10,000 created", got.GetReceived(), got.GetCreated(), len(got.GetErrors()))
	}
	if n := e.rows(t); n != 10_000 {
		t.Errorf("products = %d, want 10,000", n)
	}
}

func TestBulkImportTooLong(t *testing.T) {
	e := start(t, nil)
	_, err := e.bulkImport(e.admin, items("BULK", 10_001))
	servetest.WantErr(t, err, codes.ResourceExhausted, "IMPORT_TOO_LARGE")
	if n := e.rows(t); n != 10_000 {
		t.Errorf("products after an overlong import = %d, want the first 10,000", n)
	}
	if md := apperr.Metadata(err); md["created"] != "10000" || md["received"] != "10000" {
		t.Errorf("overlong import metadata = %v, want received and created 10000", md)
	}
}
