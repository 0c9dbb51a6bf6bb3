package order_test

import (
	"context"
	"database/sql"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/functions/catalog"
	"github.com/shopfn/shopfn/functions/inventory"
	"github.com/shopfn/shopfn/functions/order"
	"github.com/shopfn/shopfn/functions/payment"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	paymentv1 "github.com/shopfn/shopfn/proto/shopfn/payment/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/servetest"
)

// system is the order service with the real catalog, inventory and payment
// services on loopback, sharing one data directory (and so one dev key).
type system struct {
	dir       string
	signer    *auth.Signer
	addrs     map[string]string
	stops     map[string]func()
	orderCfg  order.Config
	orders    orderv1.OrderServiceClient
	catalog   catalogv1.CatalogServiceClient
	inventory inventoryv1.InventoryServiceClient
	payment   paymentv1.PaymentServiceClient
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func startSystem(t testing.TB, tune func(*order.Config)) *system {
	t.Helper()
	s := &system{dir: t.TempDir(), addrs: map[string]string{}, stops: map[string]func(){}}
	load := func(spec any) {
		if err := config.Load(spec); err != nil {
			t.Fatal(err)
		}
	}
	var cc catalog.Config
	load(&cc)
	cc.DataDir = s.dir
	s.addrs["catalog"], s.stops["catalog"] = servetest.Serve(t, func(ctx context.Context, l net.Listener) error { return catalog.Run(ctx, cc, quiet(), l) })
	var ic inventory.Config
	load(&ic)
	ic.DataDir = s.dir
	s.addrs["inventory"], s.stops["inventory"] = servetest.Serve(t, func(ctx context.Context, l net.Listener) error { return inventory.Run(ctx, ic, quiet(), l) })
	var pc payment.Config
	load(&pc)
	pc.DataDir = s.dir
	s.addrs["payment"], s.stops["payment"] = servetest.Serve(t, func(ctx context.Context, l net.Listener) error { return payment.Run(ctx, pc, quiet(), l) })

	load(&s.orderCfg)
	s.orderCfg.DataDir = s.dir
	s.orderCfg.CatalogAddr, s.orderCfg.InventoryAddr, s.orderCfg.PaymentAddr = s.addrs["catalog"], s.addrs["inventory"], s.addrs["payment"]
	s.orderCfg.StepTimeout = 2 * time.Second
	if tune != nil {
		tune(&s.orderCfg)
	}
	s.startOrder(t)

	keys, err := auth.LoadKeys(auth.Config{DevKey: true}, s.dir)
	if err != nil {
		t.Fatal(err)
	}
	s.signer = auth.NewSigner(keys.Private(), s.orderCfg.Issuer, s.orderCfg.Audience, time.Hour)
	s.catalog = catalogv1.NewCatalogServiceClient(servetest.Conn(t, s.addrs["catalog"]))
	s.inventory = inventoryv1.NewInventoryServiceClient(servetest.Conn(t, s.addrs["inventory"]))
	s.payment = paymentv1.NewPaymentServiceClient(servetest.Conn(t, s.addrs["payment"]))
	return s
}

// startOrder (re)starts the order service on the system's data directory.
func (s *system) startOrder(t testing.TB) {
	t.Helper()
	cfg := s.orderCfg
	s.addrs["order"], s.stops["order"] = servetest.Serve(t, func(ctx context.Context, l net.Listener) error { return order.Run(ctx, cfg, quiet(), l) })
	s.orders = orderv1.NewOrderServiceClient(servetest.Conn(t, s.addrs["order"]))
}

func (s *system) as(t testing.TB, subject string, role auth.Role) context.Context {
	t.Helper()
	tok, _, err := s.signer.Issue(auth.Principal{Subject: subject, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return auth.WithBearer(context.Background(), tok)
}

func (s *system) admin(t testing.TB) context.Context { return s.as(t, "usr_admin", auth.RoleAdmin) }

// product creates an active product with stock and returns its id.
func (s *system) product(t testing.TB, sku string, price int64, currency string, stock int64) string {
	t.Helper()
	resp, err := s.catalog.CreateProduct(s.admin(t), &catalogv1.CreateProductRequest{Product: &catalogv1.ProductDraft{
		Sku: sku, Name: "Product " + sku, Category: "test", Active: true,
		Price: &commonv1.Money{CurrencyCode: currency, AmountMinor: price},
	}})
	if err != nil {
		t.Fatalf("CreateProduct(%s) = %v", sku, err)
	}
	if _, err := s.inventory.SetStock(s.admin(t), &inventoryv1.SetStockRequest{Sku: sku, OnHand: stock}); err != nil {
		t.Fatalf("SetStock(%s) = %v", sku, err)
	}
	return resp.GetProduct().GetId()
}

func (s *system) stock(t testing.TB, sku string) *inventoryv1.Stock {
	t.Helper()
	resp, err := s.inventory.GetStock(context.Background(), &inventoryv1.GetStockRequest{Sku: sku})
	if err != nil {
		t.Fatalf("GetStock(%s) = %v", sku, err)
	}
	return resp.GetStock()
}

// paymentOf returns the order's payment, or nil if none was recorded.
func (s *system) paymentOf(t testing.TB, orderID string) *paymentv1.Payment {
	t.Helper()
	resp, err := s.payment.GetPayment(s.admin(t), &paymentv1.GetPaymentRequest{OrderId: orderID})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		t.Fatalf("GetPayment(%s) = %v", orderID, err)
	}
	return resp.GetPayment()
}

// events returns the order service's outbox rows.
func (s *system) events(t testing.TB) []outbox.Row {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(s.dir, "order.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := outbox.All(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func (s *system) orderCount(t testing.TB) int {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(s.dir, "order.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM orders").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func address() *commonv1.Address {
	return &commonv1.Address{Name: "Zoë Ñandú", Line1: "1 Rue de la Paix", City: "Paris", PostalCode: "75002", CountryCode: "FR"}
}

func request(key, token string, lines ...*orderv1.LineItem) *orderv1.CreateOrderRequest {
	return &orderv1.CreateOrderRequest{IdempotencyKey: key, Lines: lines, ShippingAddress: address(), PaymentToken: token}
}

func line(productID string, qty int32) *orderv1.LineItem {
	return &orderv1.LineItem{ProductId: productID, Quantity: qty}
}
