// Package storetest is the conformance suite of product.Store: the SQLite
// store (catalogdb) and the Firestore one (catalogfs) run the same tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/catalog/internal/product"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	"github.com/shopfn/shopfn/shared/outbox"
)

// Store is a product.Store with the outbox its events go to.
type Store interface {
	product.Store
	Outbox(ctx context.Context) (outbox.Store, error)
}

// Run runs the suite; open returns a fresh, empty, open store each time.
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Run("CreateAndByID", func(t *testing.T) { testCreateAndByID(t, open(t)) })
	t.Run("CreateRejectsDuplicateSKU", func(t *testing.T) { testDuplicateSKU(t, open(t)) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, open(t)) })
	t.Run("UpdateWritesEventsWithTheChange", func(t *testing.T) { testEvents(t, open(t)) })
	t.Run("ListOrderAndPaging", func(t *testing.T) { testPaging(t, open(t)) })
	t.Run("ListFilters", func(t *testing.T) { testFilters(t, open(t)) })
	t.Run("SearchFollowsWrites", func(t *testing.T) { testSearchFollowsWrites(t, open(t)) })
	t.Run("Import", func(t *testing.T) { testImport(t, open(t)) })
	t.Run("ImportFailsItemsAlone", func(t *testing.T) { testImportFailsItemsAlone(t, open(t)) })
	t.Run("ConcurrentUpdatesOfOneProduct", func(t *testing.T) { testConcurrentUpdates(t, open(t)) })
	t.Run("ProcessingBefore", func(t *testing.T) { testProcessingBefore(t, open(t)) })
}

// stamp is a time as stores keep it.
func stamp() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// New returns an active kitchen product priced 1.00 EUR.
func New(id, sku, name string) product.Product {
	now := stamp()
	return product.Product{
		ID:       id,
		Draft:    product.Draft{SKU: sku, Name: name, Category: "kitchen", Price: product.Money{Currency: "EUR", Minor: 100}, Active: true},
		Revision: 1, Created: now, Updated: now,
	}
}

// Rename is an edit that renames a product.
func Rename(name string) product.Edit {
	return func(p *product.Product) (bool, []outbox.Event, error) {
		p.Name = name
		p.Revision++
		return true, nil, nil
	}
}

// equal compares products, their times by instant.
func equal(a, b product.Product) bool {
	if !a.Created.Equal(b.Created) || !a.Updated.Equal(b.Updated) {
		return false
	}
	a.Created, a.Updated, b.Created, b.Updated = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func mustCreate(t *testing.T, s product.Store, ps ...product.Product) {
	t.Helper()
	for _, p := range ps {
		if err := s.Create(context.Background(), p); err != nil {
			t.Fatalf("Create(%s) = %v", p.ID, err)
		}
	}
}

func wantProduct(t *testing.T, s product.Store, want product.Product) {
	t.Helper()
	got, err := s.ByID(context.Background(), want.ID)
	if err != nil || !equal(got, want) {
		t.Fatalf("ByID(%s) = %+v, %v; want %+v", want.ID, got, err, want)
	}
}

func testCreateAndByID(t *testing.T, s Store) {
	ctx := context.Background()
	p := New("prd_1", "SKU-1", "Red mug")
	p.Description = "A mug, red."
	mustCreate(t, s, p)
	wantProduct(t, s, p)
	for _, id := range []string{"prd_none", "a/b", ".", "__x__"} {
		if _, err := s.ByID(ctx, id); !errors.Is(err, product.ErrNotFound) {
			t.Errorf("ByID(%q) = %v, want ErrNotFound", id, err)
		}
	}
	// SKUs that are no valid document id in some stores.
	for i, sku := range []string{".", "..", "__x__", "a.b-c_D"} {
		if err := s.Create(ctx, New(fmt.Sprintf("prd_sku%d", i), sku, "Odd")); err != nil {
			t.Errorf("Create(sku %q) = %v", sku, err)
		}
	}
	if err := s.Create(ctx, New("prd_sku9", "..", "Odd")); !errors.Is(err, product.ErrSKUTaken) {
		t.Errorf("Create(sku .. again) = %v, want ErrSKUTaken", err)
	}
	if err := s.Create(ctx, New("prd_1", "SKU-OTHER", "Same id")); err == nil {
		t.Error("Create(an id that exists) = nil, want an error")
	}
	wantProduct(t, s, p)
}

func testDuplicateSKU(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, New("prd_1", "SKU-1", "One"))
	if err := s.Create(ctx, New("prd_2", "SKU-1", "Two")); !errors.Is(err, product.ErrSKUTaken) {
		t.Fatalf("Create(duplicate sku) = %v, want ErrSKUTaken", err)
	}
	if _, err := s.ByID(ctx, "prd_2"); !errors.Is(err, product.ErrNotFound) {
		t.Errorf("ByID(refused product) = %v, want ErrNotFound", err)
	}
	// SKUs are case-sensitive.
	if err := s.Create(ctx, New("prd_3", "sku-1", "Three")); err != nil {
		t.Errorf("Create(sku differing in case) = %v", err)
	}
}

var errRefused = errors.New("refused by the edit")

func testUpdate(t *testing.T, s Store) {
	ctx := context.Background()
	p := New("prd_1", "SKU-1", "v1")
	mustCreate(t, s, p)

	got, err := s.Update(ctx, "prd_1", Rename("v2"))
	want := p
	want.Name, want.Revision = "v2", 2
	if err != nil || !equal(got, want) {
		t.Fatalf("Update(rename) = %+v, %v; want %+v", got, err, want)
	}
	wantProduct(t, s, want)

	// An edit that changes nothing writes nothing.
	got, err = s.Update(ctx, "prd_1", func(p *product.Product) (bool, []outbox.Event, error) { return false, nil, nil })
	if err != nil || !equal(got, want) {
		t.Errorf("Update(no change) = %+v, %v; want %+v", got, err, want)
	}
	// A refusing edit writes nothing, even what it changed.
	_, err = s.Update(ctx, "prd_1", func(p *product.Product) (bool, []outbox.Event, error) {
		p.Name = "lost"
		return true, nil, product.ErrStaleETag
	})
	if !errors.Is(err, product.ErrStaleETag) {
		t.Errorf("Update(refusing edit) = %v, want its error", err)
	}
	wantProduct(t, s, want)

	for _, id := range []string{"prd_none", "a/b"} {
		if _, err := s.Update(ctx, id, Rename("x")); !errors.Is(err, product.ErrNotFound) {
			t.Errorf("Update(%q) = %v, want ErrNotFound", id, err)
		}
	}

	// Every field and the images round-trip.
	later := stamp().Add(time.Second)
	images := []product.Image{
		{ID: "img1", Object: "products/prd_1/images/img1/original.png", ContentType: "image/png", Size: 1234, State: product.ImageProcessing},
		{ID: "img2", Object: "o2", ContentType: "image/jpeg", Size: 99, State: product.ImageReady, Variants: []product.Variant{
			{Name: "thumb", Object: "o2/thumb.webp", Width: 200, Height: 150, ContentType: "image/webp"},
			{Name: "large", Object: "o2/large.webp", Width: 1600, Height: 1200, ContentType: "image/webp"},
		}},
		{ID: "img3", Object: "o3", ContentType: "image/webp", Size: 1, State: product.ImageFailed, Failure: "not an image"},
	}
	got, err = s.Update(ctx, "prd_1", func(p *product.Product) (bool, []outbox.Event, error) {
		p.Name, p.Description, p.Category = "Zoë’s mug 茶杯", "Long\ndescription", "garden"
		p.Price, p.Active, p.Images = product.Money{Currency: "USD", Minor: 0}, false, images
		p.Revision, p.Updated = p.Revision+1, later
		return true, nil, nil
	})
	if err != nil {
		t.Fatalf("Update(every field) = %v", err)
	}
	wantProduct(t, s, got)
	if !reflect.DeepEqual(got.Images, images) || got.Revision != 3 || !got.Updated.Equal(later) {
		t.Errorf("Update(every field) = %+v", got)
	}
}

func testEvents(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, New("prd_1", "SKU-1", "Mug"))
	ob, err := s.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	event := func(id string) outbox.Event {
		return outbox.Event{ID: id, Type: outbox.TypeImageUploaded, Source: product.Source, Subject: "prd_1", OrderingKey: "prd_1",
			Time: stamp(), Data: &eventsv1.ImageUploaded{ProductId: "prd_1", ImageId: "img1", SizeBytes: 5}}
	}
	emit := func(id string, changed bool, err error) product.Edit {
		return func(p *product.Product) (bool, []outbox.Event, error) {
			p.Revision++
			return changed, []outbox.Event{event(id)}, err
		}
	}
	// Neither a refused edit nor an unchanged one records its events.
	if _, err := s.Update(ctx, "prd_1", emit("evt_refused", true, errRefused)); !errors.Is(err, errRefused) {
		t.Fatalf("Update(refused) = %v", err)
	}
	if _, err := s.Update(ctx, "prd_1", emit("evt_unchanged", false, nil)); err != nil {
		t.Fatalf("Update(unchanged) = %v", err)
	}
	if rows, err := ob.Unsent(ctx, 10); err != nil || len(rows) != 0 {
		t.Fatalf("Unsent after no change = %+v, %v; want none", rows, err)
	}

	p, err := s.Update(ctx, "prd_1", emit("evt_1", true, nil))
	if err != nil || p.Revision != 2 {
		t.Fatalf("Update(with an event) = %+v, %v", p, err)
	}
	rows, err := ob.Unsent(ctx, 10)
	if err != nil || len(rows) != 1 {
		t.Fatalf("Unsent = %+v, %v; want 1 row", rows, err)
	}
	var data eventsv1.ImageUploaded
	if r := rows[0]; r.ID != "evt_1" || r.Type != outbox.TypeImageUploaded || r.Subject != "prd_1" || r.OrderingKey != "prd_1" ||
		r.Decode(&data) != nil || data.GetImageId() != "img1" || data.GetSizeBytes() != 5 {
		t.Errorf("Unsent[0] = %+v (%v), want evt_1 back", r, &data)
	}

	// An event id already recorded fails the whole change.
	if _, err := s.Update(ctx, "prd_1", emit("evt_1", true, nil)); err == nil {
		t.Error("Update(recording evt_1 again) = nil, want an error")
	}
	if got, err := s.ByID(ctx, "prd_1"); err != nil || got.Revision != 2 {
		t.Errorf("ByID after the failed change = revision %d, %v; want 2", got.Revision, err)
	}
	if rows, _ := ob.Unsent(ctx, 10); len(rows) != 1 {
		t.Errorf("Unsent after the failed change = %d rows, want 1", len(rows))
	}
}

func ids(ps []product.Product) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func testPaging(t *testing.T, s Store) {
	ctx := context.Background()
	// Names tie, so ids order them.
	for _, x := range []struct{ id, name string }{
		{"prd_5", "b"}, {"prd_4", "a"}, {"prd_3", "b"}, {"prd_2", "c"}, {"prd_1", "a"}, {"prd_6", "b"}, {"prd_0", "A"},
	} {
		mustCreate(t, s, New(x.id, "SKU"+x.id, x.name))
	}
	want := []string{"prd_0", "prd_1", "prd_4", "prd_3", "prd_5", "prd_6", "prd_2"}
	all, err := s.List(ctx, product.Query{Limit: 100})
	if err != nil || !slices.Equal(ids(all), want) {
		t.Fatalf("List = %v, %v; want %v", ids(all), err, want)
	}
	for _, limit := range []int{1, 2, 3} {
		var got []string
		q := product.Query{Limit: limit}
		for range 10 {
			page, err := s.List(ctx, q)
			if err != nil {
				t.Fatalf("List(%+v) = %v", q, err)
			}
			if len(page) > limit {
				t.Fatalf("List(%+v) = %d products, more than the limit", q, len(page))
			}
			got = append(got, ids(page)...)
			if len(page) < limit {
				break
			}
			last := page[len(page)-1]
			q.After, q.AfterName, q.AfterID = true, last.Name, last.ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of %d = %v, want %v", limit, got, want)
		}
	}
	// A page starting after a product that is gone starts where it was.
	page, err := s.List(ctx, product.Query{Limit: 2, After: true, AfterName: "b", AfterID: "prd_4"})
	if err != nil || !slices.Equal(ids(page), []string{"prd_5", "prd_6"}) {
		t.Errorf("List(after b/prd_4) = %v, %v; want [prd_5 prd_6]", ids(page), err)
	}
}

func testFilters(t *testing.T, s Store) {
	ctx := context.Background()
	mk := func(id, name, desc, category, currency string, minor int64, active bool) product.Product {
		p := New(id, "SKU-"+id, name)
		p.Description, p.Category, p.Price, p.Active = desc, category, product.Money{Currency: currency, Minor: minor}, active
		return p
	}
	mustCreate(t, s,
		mk("prd_a", "Blue mug", "Café au lait, 300ml", "kitchen", "EUR", 500, true),
		mk("prd_b", "Red mug", "A tall mug", "kitchen", "EUR", 1500, true),
		mk("prd_c", "Tea pot", "Porcelain", "kitchen", "USD", 3000, true),
		mk("prd_d", "Apron", "Green cotton", "garden", "EUR", 800, false),
		mk("prd_e", "Zebra mug", "Striped MUG", "toys", "EUR", 1000, true),
	)
	tests := []struct {
		name string
		in   product.Filter
		want []string
	}{
		{"active", product.Filter{}, []string{"prd_a", "prd_b", "prd_c", "prd_e"}},
		{"inactive too", product.Filter{IncludeInactive: true}, []string{"prd_d", "prd_a", "prd_b", "prd_c", "prd_e"}},
		{"category", product.Filter{Category: "kitchen"}, []string{"prd_a", "prd_b", "prd_c"}},
		{"inactive category", product.Filter{Category: "garden"}, nil},
		{"currency", product.Filter{Currency: "EUR"}, []string{"prd_a", "prd_b", "prd_e"}},
		{"min price", product.Filter{Currency: "EUR", MinPrice: 600}, []string{"prd_b", "prd_e"}},
		{"max price", product.Filter{Currency: "EUR", MaxPrice: 1000}, []string{"prd_a", "prd_e"}},
		{"price range", product.Filter{Currency: "EUR", MinPrice: 600, MaxPrice: 1000, IncludeInactive: true}, []string{"prd_d", "prd_e"}},
		{"word", product.Filter{Words: []string{"mug"}}, []string{"prd_a", "prd_b", "prd_e"}},
		{"words", product.Filter{Words: []string{"mug", "striped"}}, []string{"prd_e"}},
		{"accented word", product.Filter{Words: []string{"café"}}, []string{"prd_a"}},
		{"word without accent", product.Filter{Words: []string{"cafe"}}, []string{"prd_a"}},
		{"word with digits", product.Filter{Words: []string{"300ml"}}, []string{"prd_a"}},
		{"part of a word", product.Filter{Words: []string{"mu"}}, nil},
		{"absent word", product.Filter{Words: []string{"mug", "green"}}, nil},
		{"inactive word", product.Filter{Words: []string{"green"}, IncludeInactive: true}, []string{"prd_d"}},
		{"everything", product.Filter{Category: "kitchen", Currency: "EUR", MaxPrice: 1000, Words: []string{"mug", "blue"}}, []string{"prd_a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(ctx, product.Query{Filter: tt.in, Limit: 10})
			if err != nil || !slices.Equal(ids(got), tt.want) {
				t.Errorf("List(%+v) = %v, %v; want %v", tt.in, ids(got), err, tt.want)
			}
		})
	}
	// Filtered pages page too.
	q := product.Query{Filter: product.Filter{Words: []string{"mug"}}, Limit: 2}
	page, err := s.List(ctx, q)
	if err != nil || !slices.Equal(ids(page), []string{"prd_a", "prd_b"}) {
		t.Fatalf("List(mug, 2) = %v, %v", ids(page), err)
	}
	q.After, q.AfterName, q.AfterID = true, page[1].Name, page[1].ID
	if page, err = s.List(ctx, q); err != nil || !slices.Equal(ids(page), []string{"prd_e"}) {
		t.Errorf("List(mug, 2, page 2) = %v, %v; want [prd_e]", ids(page), err)
	}
}

// SearchWrites changes texts every way a store can (create, update, an
// import batch that changes one SKU several times and creates then changes
// another), for stores to check their own index afterwards too.
func SearchWrites(t testing.TB, s product.Store) {
	t.Helper()
	ctx := context.Background()
	if err := s.Create(ctx, New("prd_1", "SKU-1", "red mug")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, "prd_1", Rename("green mug")); err != nil {
		t.Fatal(err)
	}
	draft := func(sku, name string, minor int64) product.Draft {
		return product.Draft{SKU: sku, Name: name, Category: "kitchen", Price: product.Money{Currency: "EUR", Minor: minor}, Active: true}
	}
	_, err := s.Import(ctx, []product.Draft{
		draft("SKU-1", "green mug", 200),   // price only: text untouched
		draft("SKU-1", "blue mug", 200),    // text changed
		draft("SKU-1", "yellow mug", 200),  // changed again in the same batch
		draft("SKU-2", "purple bowl", 100), // created
		draft("SKU-2", "orange bowl", 100), // created, then changed
	}, Merge("new"))
	if err != nil {
		t.Fatal(err)
	}
}

// Merge is the import rule of the service with ids made of prefix and the
// SKU (deterministic: a store may run it more than once).
func Merge(prefix string) product.Merge {
	return func(existing *product.Product, d product.Draft) (product.Product, product.Outcome) {
		if existing == nil {
			p := New("prd_"+prefix+"_"+d.SKU, d.SKU, d.Name)
			p.Draft = d
			return p, product.Created
		}
		p := *existing
		if p.Draft == d {
			return p, product.Unchanged
		}
		p.Draft, p.Revision = d, p.Revision+1
		return p, product.Updated
	}
}

func testSearchFollowsWrites(t *testing.T, s Store) {
	SearchWrites(t, s)
	for _, tt := range []struct {
		word string
		want int
	}{{"red", 0}, {"green", 0}, {"blue", 0}, {"yellow", 1}, {"purple", 0}, {"orange", 1}, {"mug", 1}, {"bowl", 1}} {
		ps, err := s.List(context.Background(), product.Query{Filter: product.Filter{Words: []string{tt.word}}, Limit: 10})
		if err != nil || len(ps) != tt.want {
			t.Errorf("List(%q) = %d products, %v; want %d", tt.word, len(ps), err, tt.want)
		}
	}
}

func testImport(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, New("prd_old", "OLD", "Old"))
	old, _ := s.ByID(ctx, "prd_old")
	d := func(sku, name string) product.Draft {
		return product.Draft{SKU: sku, Name: name, Category: "kitchen", Price: product.Money{Currency: "EUR", Minor: 100}, Active: true}
	}
	got, err := s.Import(ctx, []product.Draft{d("A", "A"), d("B", "B"), d("A", "A"), d("A", "A2"), old.Draft, d("OLD", "Old2")}, Merge("imp"))
	if err != nil {
		t.Fatalf("Import = %v", err)
	}
	want := []product.Outcome{product.Created, product.Created, product.Unchanged, product.Updated, product.Unchanged, product.Updated}
	for i, r := range got {
		if r.Outcome != want[i] || r.Err != nil {
			t.Errorf("Import item %d = %+v, want %v", i, r, want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("Import = %d results, want %d", len(got), len(want))
	}
	for id, w := range map[string]struct {
		name string
		rev  int64
	}{"prd_imp_A": {"A2", 2}, "prd_imp_B": {"B", 1}, "prd_old": {"Old2", 2}} {
		p, err := s.ByID(ctx, id)
		if err != nil || p.Name != w.name || p.Revision != w.rev {
			t.Errorf("ByID(%s) = %q rev %d, %v; want %q rev %d", id, p.Name, p.Revision, err, w.name, w.rev)
		}
	}
	// The imported SKUs are taken.
	if err := s.Create(ctx, New("prd_x", "A", "x")); !errors.Is(err, product.ErrSKUTaken) {
		t.Errorf("Create(imported sku) = %v, want ErrSKUTaken", err)
	}
	// Importing the same again changes nothing.
	got, err = s.Import(ctx, []product.Draft{d("A", "A2"), d("B", "B")}, Merge("imp"))
	if err != nil || len(got) != 2 || got[0].Outcome != product.Unchanged || got[1].Outcome != product.Unchanged {
		t.Errorf("Import(again) = %+v, %v; want unchanged", got, err)
	}
	if ps, err := s.List(ctx, product.Query{Limit: 10}); err != nil || len(ps) != 3 {
		t.Errorf("List after imports = %v, %v; want 3 products", ids(ps), err)
	}
}

// testImportFailsItemsAlone makes one item of a batch fail in the store (a
// merge that writes an id already taken): only that item fails.
func testImportFailsItemsAlone(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, New("prd_taken", "OLD", "Old"))
	drafts := []product.Draft{{SKU: "A", Name: "A"}, {SKU: "BAD", Name: "Bad"}, {SKU: "C", Name: "C"}}
	merge := func(existing *product.Product, d product.Draft) (product.Product, product.Outcome) {
		p := New("prd_"+d.SKU, d.SKU, d.Name)
		if d.SKU == "BAD" {
			p.ID = "prd_taken"
		}
		return p, product.Created
	}
	got, err := s.Import(ctx, drafts, merge)
	if err != nil {
		t.Fatalf("Import = %v", err)
	}
	want := []product.Outcome{product.Created, product.Failed, product.Created}
	for i, r := range got {
		if r.Outcome != want[i] || (r.Err != nil) != (want[i] == product.Failed) {
			t.Errorf("Import item %d = %+v, want outcome %v", i, r, want[i])
		}
	}
	for _, id := range []string{"prd_A", "prd_C"} {
		if _, err := s.ByID(ctx, id); err != nil {
			t.Errorf("ByID(%s) after import = %v", id, err)
		}
	}
	if p, err := s.ByID(ctx, "prd_taken"); err != nil || p.Name != "Old" {
		t.Errorf("ByID(prd_taken) = %q, %v; want it untouched", p.Name, err)
	}
	// The failed item's SKU stays free.
	if err := s.Create(ctx, New("prd_bad", "BAD", "Bad")); err != nil {
		t.Errorf("Create(the failed item's sku) = %v", err)
	}
}

// Concurrency of the hot-record case: small, since the Firestore emulator
// serialises transactions on one document slowly.
const (
	writers          = 5
	updatesPerWriter = 3
)

// testConcurrentUpdates races writers on one product: no update is lost,
// and each sees the revision the previous one left.
func testConcurrentUpdates(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, New("prd_hot", "HOT", "hot"))
	var (
		mu   sync.Mutex
		revs []int64
		wg   sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for i := range updatesPerWriter {
				p, err := s.Update(ctx, "prd_hot", func(p *product.Product) (bool, []outbox.Event, error) {
					p.Revision++
					p.Description = fmt.Sprintf("%s w%d.%d", p.Description, w, i)
					return true, nil, nil
				})
				if err != nil {
					t.Errorf("Update(writer %d, #%d) = %v", w, i, err)
					return
				}
				mu.Lock()
				revs = append(revs, p.Revision)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(revs)
	want := make([]int64, 0, writers*updatesPerWriter)
	for r := range int64(writers * updatesPerWriter) {
		want = append(want, r+2)
	}
	if !slices.Equal(revs, want) {
		t.Errorf("revisions returned = %v, want each of %v once", revs, want)
	}
	p, err := s.ByID(ctx, "prd_hot")
	if err != nil || p.Revision != 1+writers*updatesPerWriter || len(strings.Fields(p.Description)) != writers*updatesPerWriter {
		t.Errorf("ByID after the race = revision %d, %q, %v", p.Revision, p.Description, err)
	}
}

// withImages returns p holding one image per state, each in that state
// since the time given (a zero time: since p's update).
func withImages(p product.Product, states map[product.ImageState]time.Time) product.Product {
	for _, st := range []product.ImageState{product.ImageProcessing, product.ImageReady, product.ImageFailed} {
		since, ok := states[st]
		if !ok {
			continue
		}
		p.Images = append(p.Images, product.Image{
			ID: fmt.Sprintf("img%d", st), Object: fmt.Sprintf("products/%s/images/img%d/original.jpg", p.ID, st),
			ContentType: "image/jpeg", Size: 10, State: st, Since: since,
		})
	}
	return p
}

func testProcessingBefore(t *testing.T, s Store) {
	ctx := context.Background()
	t0 := stamp().Add(-time.Hour)
	old := withImages(New("prd_old", "SKU-OLD", "Old"), map[product.ImageState]time.Time{
		product.ImageProcessing: t0, product.ImageReady: t0.Add(-time.Minute)})
	recent := withImages(New("prd_recent", "SKU-RECENT", "Recent"), map[product.ImageState]time.Time{
		product.ImageProcessing: t0.Add(40 * time.Minute)})
	// An image recorded before images kept their time: the product's
	// update time stands in.
	legacy := withImages(New("prd_legacy", "SKU-LEGACY", "Legacy"), map[product.ImageState]time.Time{
		product.ImageProcessing: {}})
	legacy.Updated = t0.Add(5 * time.Minute)
	done := withImages(New("prd_done", "SKU-DONE", "Done"), map[product.ImageState]time.Time{
		product.ImageReady: t0, product.ImageFailed: t0})
	mustCreate(t, s, old, recent, legacy, done, New("prd_plain", "SKU-PLAIN", "Plain"))
	wantProduct(t, s, old)
	wantProduct(t, s, legacy)

	want := func(before time.Time, limit int, ids ...string) {
		t.Helper()
		got, err := s.ProcessingBefore(ctx, before, limit)
		if err != nil || !slices.Equal(got, ids) {
			t.Errorf("ProcessingBefore(t0%+v, %d) = %v, %v; want %v", before.Sub(t0), limit, got, err, ids)
		}
	}
	want(t0.Add(-time.Second), 10)
	want(t0, 10, "prd_old")
	want(t0.Add(30*time.Minute), 10, "prd_old", "prd_legacy")
	want(t0.Add(30*time.Minute), 1, "prd_old")
	want(t0.Add(50*time.Minute), 10, "prd_old", "prd_legacy", "prd_recent")

	// Once its image has failed, a product is no longer found.
	if _, err := s.Update(ctx, "prd_old", func(p *product.Product) (bool, []outbox.Event, error) {
		p.Images = slices.Clone(p.Images)
		p.Images[0].State, p.Images[0].Failure, p.Images[0].Since = product.ImageFailed, "timed out", t0.Add(time.Hour)
		p.Revision++
		return true, nil, nil
	}); err != nil {
		t.Fatalf("Update(fail the image) = %v", err)
	}
	want(t0.Add(50*time.Minute), 10, "prd_legacy", "prd_recent")
}
