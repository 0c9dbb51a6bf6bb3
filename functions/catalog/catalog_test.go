package catalog_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/shopfn/shopfn/functions/catalog"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/servetest"
)

type env struct {
	client catalogv1.CatalogServiceClient
	dir    string
	cfg    catalog.Config
	// Contexts carrying tokens of each kind of caller.
	admin, customer, service context.Context
}

// start runs the catalog service on a loopback port with a fresh data dir.
func start(t testing.TB, mutate func(*catalog.Config)) *env {
	t.Helper()
	var cfg catalog.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.RateLimit, cfg.RateBurst = 1e9, 1e9 // tests make many calls quickly
	if mutate != nil {
		mutate(&cfg)
	}
	addr, _ := servetest.Serve(t, func(ctx context.Context, lis net.Listener) error {
		return catalog.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis)
	})
	cc := servetest.Conn(t, addr)
	e := &env{client: catalogv1.NewCatalogServiceClient(cc), dir: cfg.DataDir, cfg: cfg}
	keys, err := auth.LoadKeys(auth.Config{DevKey: true}, cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	signer := auth.NewSigner(keys.Private(), cfg.Issuer, cfg.Audience, time.Hour)
	token := func(p auth.Principal) context.Context {
		tok, _, err := signer.Issue(p)
		if err != nil {
			t.Fatal(err)
		}
		return auth.WithBearer(context.Background(), tok)
	}
	e.admin = token(auth.Principal{Subject: "usr_admin", Role: auth.RoleAdmin})
	e.customer = token(auth.Principal{Subject: "usr_ann", Role: auth.RoleCustomer})
	e.service = token(auth.Principal{Subject: "imaging", Role: auth.RoleService})
	// A call that reads the store returns once it is open and migrated, so
	// tests may inspect the file from here on.
	if _, err := e.client.GetProduct(context.Background(), &catalogv1.GetProductRequest{ProductId: "prd_none"}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetProduct(unknown) on start = %v, want NotFound", err)
	}
	return e
}

// db opens the service's SQLite file for inspection.
func (e *env) db(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "catalog.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func (e *env) rows(t testing.TB) int {
	t.Helper()
	var n int
	if err := e.db(t).QueryRow("SELECT count(*) FROM products").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) events(t testing.TB) []outbox.Row {
	t.Helper()
	rows, err := outbox.All(context.Background(), e.db(t))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func draft(sku, name string, minor int64) *catalogv1.ProductDraft {
	return &catalogv1.ProductDraft{
		Sku: sku, Name: name, Description: "A fine " + name, Category: "kitchen",
		Price: &commonv1.Money{CurrencyCode: "EUR", AmountMinor: minor}, Active: true,
	}
}

func (e *env) create(t testing.TB, d *catalogv1.ProductDraft) *catalogv1.Product {
	t.Helper()
	got, err := e.client.CreateProduct(e.admin, &catalogv1.CreateProductRequest{Product: d})
	if err != nil {
		t.Fatalf("CreateProduct(%v) = %v", d, err)
	}
	return got.GetProduct()
}

func (e *env) get(t testing.TB, id string) *catalogv1.Product {
	t.Helper()
	got, err := e.client.GetProduct(e.admin, &catalogv1.GetProductRequest{ProductId: id})
	if err != nil {
		t.Fatalf("GetProduct(%s) = %v", id, err)
	}
	return got.GetProduct()
}

func wantField(t testing.TB, err error, field string) {
	t.Helper()
	servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	for _, v := range apperr.FieldViolations(err) {
		if v.Field == field {
			return
		}
	}
	t.Fatalf("violations = %v, want one for %s", apperr.FieldViolations(err), field)
}

func TestPolicyCoversEveryMethod(t *testing.T) {
	if missing := catalog.Policy().Uncovered(&catalogv1.CatalogService_ServiceDesc); len(missing) > 0 {
		t.Errorf("methods without an access policy: %v", missing)
	}
}

func TestCreateAndGet(t *testing.T) {
	e := start(t, nil)
	p := e.create(t, draft("MUG-1", "Red mug", 1250))
	if p.GetId() == "" || p.GetEtag() == "" || p.GetSku() != "MUG-1" || p.GetPrice().GetAmountMinor() != 1250 || !p.GetActive() {
		t.Fatalf("CreateProduct = %v, want an id, an etag and the draft's fields", p)
	}
	for name, ctx := range map[string]context.Context{"anonymous": context.Background(), "customer": e.customer, "admin": e.admin} {
		got, err := e.client.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: p.GetId()})
		if err != nil || !proto.Equal(got.GetProduct(), p) {
			t.Errorf("GetProduct(%s) = %v, %v; want %v", name, got.GetProduct(), err, p)
		}
	}
	_, err := e.client.GetProduct(context.Background(), &catalogv1.GetProductRequest{ProductId: "prd_missing"})
	servetest.WantErr(t, err, codes.NotFound, "PRODUCT_NOT_FOUND")
}

func TestInactiveProductsAreForAdmins(t *testing.T) {
	e := start(t, nil)
	d := draft("HIDDEN-1", "Hidden", 100)
	d.Active = false
	p := e.create(t, d)
	for _, ctx := range []context.Context{context.Background(), e.customer} {
		_, err := e.client.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: p.GetId()})
		servetest.WantErr(t, err, codes.NotFound, "PRODUCT_NOT_FOUND")
	}
	for name, ctx := range map[string]context.Context{"admin": e.admin, "service": e.service} {
		if _, err := e.client.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: p.GetId()}); err != nil {
			t.Errorf("GetProduct(%s, inactive) = %v, want the product", name, err)
		}
	}
}

func TestCreateRejects(t *testing.T) {
	e := start(t, nil)
	e.create(t, draft("MUG-1", "Red mug", 1250))

	_, err := e.client.CreateProduct(e.admin, &catalogv1.CreateProductRequest{Product: draft("MUG-1", "Another mug", 999)})
	servetest.WantErr(t, err, codes.AlreadyExists, "SKU_TAKEN")

	_, err = e.client.CreateProduct(e.customer, &catalogv1.CreateProductRequest{Product: draft("MUG-2", "Mug", 1)})
	servetest.WantErr(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	_, err = e.client.CreateProduct(context.Background(), &catalogv1.CreateProductRequest{Product: draft("MUG-2", "Mug", 1)})
	servetest.WantErr(t, err, codes.Unauthenticated, "TOKEN_MISSING")

	bad := []struct {
		name  string
		edit  func(*catalogv1.ProductDraft)
		field string
	}{
		{"empty sku", func(d *catalogv1.ProductDraft) { d.Sku = "" }, "product.sku"},
		{"sku with space", func(d *catalogv1.ProductDraft) { d.Sku = "A B" }, "product.sku"},
		{"empty name", func(d *catalogv1.ProductDraft) { d.Name = "" }, "product.name"},
		{"upper-case category", func(d *catalogv1.ProductDraft) { d.Category = "Kitchen" }, "product.category"},
		{"no price", func(d *catalogv1.ProductDraft) { d.Price = nil }, "product.price"},
		{"negative price", func(d *catalogv1.ProductDraft) { d.Price.AmountMinor = -1 }, "product.price.amount_minor"},
		{"bad currency", func(d *catalogv1.ProductDraft) { d.Price.CurrencyCode = "euro" }, "product.price.currency_code"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			d := draft("NEW-1", "New", 100)
			tt.edit(d)
			_, err := e.client.CreateProduct(e.admin, &catalogv1.CreateProductRequest{Product: d})
			wantField(t, err, tt.field)
		})
	}
	if n := e.rows(t); n != 1 {
		t.Errorf("products after refused creates = %d, want 1", n)
	}
}

func TestUpdateProduct(t *testing.T) {
	e := start(t, nil)
	p := e.create(t, draft("MUG-1", "Red mug", 1250))
	mask := func(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

	got, err := e.client.UpdateProduct(e.admin, &catalogv1.UpdateProductRequest{
		ProductId: p.GetId(), Etag: p.GetEtag(), UpdateMask: mask("name", "price"),
		// Unmasked fields may be empty or wrong: they are not read.
		Product: &catalogv1.ProductDraft{Name: "Blue mug", Price: &commonv1.Money{CurrencyCode: "EUR", AmountMinor: 1500}, Category: "NOT READ"},
	})
	if err != nil {
		t.Fatalf("UpdateProduct = %v", err)
	}
	up := got.GetProduct()
	if up.GetName() != "Blue mug" || up.GetPrice().GetAmountMinor() != 1500 || up.GetCategory() != "kitchen" ||
		up.GetDescription() != p.GetDescription() || up.GetSku() != "MUG-1" || !up.GetActive() {
		t.Fatalf("UpdateProduct = %v, want only name and price changed", up)
	}
	if up.GetEtag() == p.GetEtag() {
		t.Errorf("etag after a change = %q, want a new one", up.GetEtag())
	}

	// The same values again: nothing changes, not even the etag.
	again, err := e.client.UpdateProduct(e.admin, &catalogv1.UpdateProductRequest{
		ProductId: p.GetId(), Etag: up.GetEtag(), UpdateMask: mask("name"), Product: &catalogv1.ProductDraft{Name: "Blue mug"},
	})
	if err != nil || again.GetProduct().GetEtag() != up.GetEtag() {
		t.Errorf("UpdateProduct(no change) = %v, %v; want etag %q kept", again.GetProduct(), err, up.GetEtag())
	}

	// The first etag is stale now.
	_, err = e.client.UpdateProduct(e.admin, &catalogv1.UpdateProductRequest{
		ProductId: p.GetId(), Etag: p.GetEtag(), UpdateMask: mask("name"), Product: &catalogv1.ProductDraft{Name: "Lost update"},
	})
	servetest.WantErr(t, err, codes.Aborted, "STALE_ETAG")

	bad := []struct {
		name   string
		req    *catalogv1.UpdateProductRequest
		field  string
		noEtag bool
	}{
		{"empty mask", &catalogv1.UpdateProductRequest{UpdateMask: mask(), Product: &catalogv1.ProductDraft{}}, "update_mask", false},
		{"unknown path", &catalogv1.UpdateProductRequest{UpdateMask: mask("colour"), Product: &catalogv1.ProductDraft{}}, "update_mask", false},
		{"sku path", &catalogv1.UpdateProductRequest{UpdateMask: mask("sku"), Product: &catalogv1.ProductDraft{Sku: "NEW"}}, "update_mask", false},
		{"nested path", &catalogv1.UpdateProductRequest{UpdateMask: mask("price.amount_minor"), Product: &catalogv1.ProductDraft{}}, "update_mask", false},
		{"empty name", &catalogv1.UpdateProductRequest{UpdateMask: mask("name"), Product: &catalogv1.ProductDraft{}}, "product.name", false},
		{"bad category", &catalogv1.UpdateProductRequest{UpdateMask: mask("category"), Product: &catalogv1.ProductDraft{Category: "Big Things"}}, "product.category", false},
		{"missing price", &catalogv1.UpdateProductRequest{UpdateMask: mask("price"), Product: &catalogv1.ProductDraft{}}, "product.price", false},
		{"bad currency", &catalogv1.UpdateProductRequest{UpdateMask: mask("price"), Product: &catalogv1.ProductDraft{Price: &commonv1.Money{CurrencyCode: "eur"}}}, "product.price.currency_code", false},
		{"no mask", &catalogv1.UpdateProductRequest{Product: &catalogv1.ProductDraft{}}, "update_mask", false},
		{"no etag", &catalogv1.UpdateProductRequest{UpdateMask: mask("name"), Product: &catalogv1.ProductDraft{Name: "x"}}, "etag", true},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.ProductId = p.GetId()
			if !tt.noEtag {
				tt.req.Etag = up.GetEtag()
			}
			_, err := e.client.UpdateProduct(e.admin, tt.req)
			wantField(t, err, tt.field)
		})
	}
	if after := e.get(t, p.GetId()); !proto.Equal(after, up) {
		t.Errorf("after refused updates GetProduct = %v, want %v", after, up)
	}

	_, err = e.client.UpdateProduct(e.admin, &catalogv1.UpdateProductRequest{
		ProductId: "prd_missing", Etag: "1", UpdateMask: mask("name"), Product: &catalogv1.ProductDraft{Name: "x"},
	})
	servetest.WantErr(t, err, codes.NotFound, "PRODUCT_NOT_FOUND")
	_, err = e.client.UpdateProduct(e.customer, &catalogv1.UpdateProductRequest{
		ProductId: p.GetId(), Etag: up.GetEtag(), UpdateMask: mask("name"), Product: &catalogv1.ProductDraft{Name: "x"},
	})
	servetest.WantErr(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
}

// TestConcurrentUpdatesOneWins sends updates based on the same etag at
// once: exactly one applies, the others fail with STALE_ETAG.
func TestConcurrentUpdatesOneWins(t *testing.T) {
	e := start(t, nil)
	p := e.create(t, draft("MUG-1", "Red mug", 1250))
	const n = 8
	var wg sync.WaitGroup
	won := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("Mug %d", i)
			_, err := e.client.UpdateProduct(e.admin, &catalogv1.UpdateProductRequest{
				ProductId: p.GetId(), Etag: p.GetEtag(), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}},
				Product: &catalogv1.ProductDraft{Name: name},
			})
			switch {
			case err == nil:
				won <- name
			case status.Code(err) != codes.Aborted || apperr.Reason(err) != "STALE_ETAG":
				t.Errorf("concurrent UpdateProduct = %v, want OK or Aborted/STALE_ETAG", err)
			}
		}()
	}
	wg.Wait()
	close(won)
	var winners []string
	for name := range won {
		winners = append(winners, name)
	}
	if len(winners) != 1 {
		t.Fatalf("%d concurrent updates with one etag succeeded, want 1", len(winners))
	}
	if got := e.get(t, p.GetId()); got.GetName() != winners[0] {
		t.Errorf("name after the race = %q, want the winner's %q", got.GetName(), winners[0])
	}
}

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e := start(t, func(c *catalog.Config) { c.DataDir = dir })
	p := e.create(t, draft("MUG-1", "Red mug", 1250))
	e2 := start(t, func(c *catalog.Config) { c.DataDir = dir })
	if got := e2.get(t, p.GetId()); !proto.Equal(got, p) {
		t.Errorf("GetProduct after restart = %v, want %v", got, p)
	}
}

func TestStopsWhenTheStoreCannotOpen(t *testing.T) {
	var cfg catalog.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Database = servetest.UnopenablePath(t, "catalog.db")
	servetest.ExpectRunFails(t, func(ctx context.Context, lis net.Listener) error {
		return catalog.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis)
	})
}

// sku returns the i-th SKU of a generated set.
func sku(prefix string, i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }
