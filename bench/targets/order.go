package targets

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shopfn/shopfn/bench/benchkit"
	"github.com/shopfn/shopfn/functions/catalog"
	"github.com/shopfn/shopfn/functions/inventory"
	"github.com/shopfn/shopfn/functions/payment"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
)

// orderStock is the stock the order target starts with: more than any run
// sells.
const orderStock = 100_000_000

// OrderCreate is the order deployable placing orders to CONFIRMED: every
// call is a CreateOrder with a new idempotency key, through the whole saga
// (reserve, authorize, commit, capture) against real catalog, inventory and
// payment services, each step stored in SQLite with the outbox. Those three
// run inside the benchmark tool (started by Prepare), so the figures for
// server CPU are the order process's alone, while rps is the system's.
func OrderCreate() benchkit.Target {
	var (
		productID, token string
		seq              atomic.Int64
	)
	env := append([]string{}, catalogEnv...)
	return benchkit.Target{
		Name:    "order-create",
		Package: "./functions/order/cmd",
		Env:     env,
		Prepare: func(ctx context.Context, scratch string) (func(string) ([]string, error), error) {
			addrs, err := startOrderDeps(ctx, filepath.Join(scratch, "data"))
			if err != nil {
				return nil, err
			}
			if productID, token, err = seedOrderDeps(ctx, filepath.Join(scratch, "data"), addrs); err != nil {
				return nil, err
			}
			copyKey := copyData(scratch)
			return func(runDir string) ([]string, error) {
				env, err := copyKey(runDir)
				if err != nil {
					return nil, err
				}
				return append(env, "SHOPFN_CATALOG_ADDR="+addrs["catalog"], "SHOPFN_INVENTORY_ADDR="+addrs["inventory"], "SHOPFN_PAYMENT_ADDR="+addrs["payment"]), nil
			}, nil
		},
		Probe: func(ctx context.Context, cc *grpc.ClientConn) error {
			return placeOrder(ctx, orderv1.NewOrderServiceClient(cc), token, productID, seq.Add(1))
		},
		Call: func(_ context.Context, cc *grpc.ClientConn) (func(context.Context) error, error) {
			client := orderv1.NewOrderServiceClient(cc)
			return func(ctx context.Context) error {
				return placeOrder(ctx, client, token, productID, seq.Add(1))
			}, nil
		},
	}
}

func placeOrder(ctx context.Context, c orderv1.OrderServiceClient, token, productID string, n int64) error {
	resp, err := c.CreateOrder(auth.WithBearer(ctx, token), &orderv1.CreateOrderRequest{
		IdempotencyKey: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), n),
		Lines:          []*orderv1.LineItem{{ProductId: productID, Quantity: 1}},
		ShippingAddress: &commonv1.Address{
			Name: "Bench", Line1: "1 Main St", City: "Paris", CountryCode: "FR",
		},
		PaymentToken: "tok_visa",
	})
	if err != nil {
		return err
	}
	if s := resp.GetOrder().GetState(); s != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		return fmt.Errorf("order ended %v (%v)", s, resp.GetOrder().GetCancelReason())
	}
	return nil
}

// startOrderDeps runs catalog, inventory and payment in this process on
// dataDir until ctx ends, and returns their addresses.
func startOrderDeps(ctx context.Context, dataDir string) (map[string]string, error) {
	quiet := slog.New(slog.DiscardHandler)
	addrs := map[string]string{}
	start := func(name string, run func(net.Listener) error) error {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addrs[name] = lis.Addr().String()
		go run(lis)
		return nil
	}
	var cc catalog.Config
	var ic inventory.Config
	var pc payment.Config
	for _, c := range []any{&cc, &ic, &pc} {
		if err := config.Load(c); err != nil {
			return nil, err
		}
	}
	cc.DataDir, ic.DataDir, pc.DataDir = dataDir, dataDir, dataDir
	for _, c := range []*int{&cc.Platform.RateBurst, &ic.Platform.RateBurst, &pc.Platform.RateBurst} {
		*c = 1_000_000_000
	}
	cc.RateLimit, ic.RateLimit, pc.RateLimit = 1e9, 1e9, 1e9
	if err := start("catalog", func(l net.Listener) error { return catalog.Run(ctx, cc, quiet, l) }); err != nil {
		return nil, err
	}
	if err := start("inventory", func(l net.Listener) error { return inventory.Run(ctx, ic, quiet, l) }); err != nil {
		return nil, err
	}
	if err := start("payment", func(l net.Listener) error { return payment.Run(ctx, pc, quiet, l) }); err != nil {
		return nil, err
	}
	return addrs, nil
}

// seedOrderDeps creates the product and its stock as an admin and returns
// the product id and a customer's token, signed with the data dir's key
// (which the order process gets a copy of).
func seedOrderDeps(ctx context.Context, dataDir string, addrs map[string]string) (productID, token string, err error) {
	keys, err := auth.LoadKeys(auth.Config{DevKey: true}, dataDir)
	if err != nil {
		return "", "", err
	}
	var ac auth.Config
	if err := config.Load(&ac); err != nil {
		return "", "", err
	}
	signer := auth.NewSigner(keys.Private(), ac.Issuer, ac.Audience, 7*24*time.Hour)
	admin, _, err := signer.Issue(auth.Principal{Subject: "usr_bench_admin", Role: auth.RoleAdmin})
	if err != nil {
		return "", "", err
	}
	if token, _, err = signer.Issue(auth.Principal{Subject: "usr_bench", Role: auth.RoleCustomer}); err != nil {
		return "", "", err
	}
	dialFor := func(addr string) (*grpc.ClientConn, error) {
		return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	catCC, err := dialFor(addrs["catalog"])
	if err != nil {
		return "", "", err
	}
	defer catCC.Close()
	invCC, err := dialFor(addrs["inventory"])
	if err != nil {
		return "", "", err
	}
	defer invCC.Close()
	actx := auth.WithBearer(ctx, admin)
	p, err := catalogv1.NewCatalogServiceClient(catCC).CreateProduct(actx, &catalogv1.CreateProductRequest{Product: &catalogv1.ProductDraft{
		Sku: "BENCH-1", Name: "Bench mug", Category: "bench", Active: true,
		Price: &commonv1.Money{CurrencyCode: "EUR", AmountMinor: 1250},
	}})
	if err != nil {
		return "", "", fmt.Errorf("seed product: %w", err)
	}
	if _, err := inventoryv1.NewInventoryServiceClient(invCC).SetStock(actx, &inventoryv1.SetStockRequest{Sku: "BENCH-1", OnHand: orderStock}); err != nil {
		return "", "", fmt.Errorf("seed stock: %w", err)
	}
	return p.GetProduct().GetId(), token, nil
}
