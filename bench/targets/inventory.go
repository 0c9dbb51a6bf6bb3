package targets

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shopfn/shopfn/bench/benchkit"
	"github.com/shopfn/shopfn/functions/inventory"
	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/store"
)

// inventorySKU is the SKU every inventory-service process starts with,
// stocked with the most units SetStock accepts so a Reserve load never runs
// out (nor crosses the low-stock threshold).
const (
	inventorySKU   = "BENCH-1"
	inventoryUnits = 1_000_000_000
)

// inventoryEnv keeps the per-caller rate limit on (anonymous GetStock calls
// are limited per address; services are not) but high enough that one load
// generator is never throttled.
var inventoryEnv = []string{"SHOPFN_RATE_LIMIT_RPS=1000000000", "SHOPFN_RATE_LIMIT_BURST=1000000000"}

// Inventory is the inventory deployable, started on a data directory that
// already holds one stocked SKU and the development key. The probe and the
// load are an anonymous GetStock: auth (public), validation, one SQLite
// point read and the full interceptor chain.
func Inventory() benchkit.Target {
	return benchkit.Target{
		Name:    "inventory",
		Package: "./functions/inventory/cmd",
		Env:     inventoryEnv,
		Prepare: func(ctx context.Context, scratch string) (func(string) ([]string, error), error) {
			if _, err := seedInventory(ctx, scratch); err != nil {
				return nil, err
			}
			return copyData(scratch), nil
		},
		Probe: func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := inventoryv1.NewInventoryServiceClient(cc).GetStock(ctx, &inventoryv1.GetStockRequest{Sku: inventorySKU})
			return err
		},
		Call: func(_ context.Context, cc *grpc.ClientConn) (func(context.Context) error, error) {
			client := inventoryv1.NewInventoryServiceClient(cc)
			req := &inventoryv1.GetStockRequest{Sku: inventorySKU}
			return func(ctx context.Context) error {
				_, err := client.GetStock(ctx, req)
				return err
			}, nil
		},
	}
}

// InventoryReserve is Inventory loaded with Reserve calls as the order
// service makes them: a service token, one line of one unit, a new order id
// each time, so every call is a write transaction (read the order, read and
// update the stock row, insert the reservation and its line). All calls
// hold the same SKU: the hottest row a sale can make. The probe is the same
// Reserve with a fixed order id (idempotent, so retrying it is harmless).
func InventoryReserve() benchkit.Target {
	var token string
	var seq atomic.Int64
	prefix := store.NewID("ord") // new ids whatever the process's data holds
	reserve := func(ctx context.Context, c inventoryv1.InventoryServiceClient, orderID string) error {
		_, err := c.Reserve(auth.WithBearer(ctx, token), &inventoryv1.ReserveRequest{
			OrderId: orderID, Lines: []*inventoryv1.Line{{Sku: inventorySKU, Quantity: 1}},
		})
		return err
	}
	return benchkit.Target{
		Name:    "inventory-reserve",
		Package: "./functions/inventory/cmd",
		Env:     inventoryEnv,
		Prepare: func(ctx context.Context, scratch string) (func(string) ([]string, error), error) {
			var err error
			if token, err = seedInventory(ctx, scratch); err != nil {
				return nil, err
			}
			return copyData(scratch), nil
		},
		Probe: func(ctx context.Context, cc *grpc.ClientConn) error {
			return reserve(ctx, inventoryv1.NewInventoryServiceClient(cc), "ord_probe")
		},
		Call: func(_ context.Context, cc *grpc.ClientConn) (func(context.Context) error, error) {
			client := inventoryv1.NewInventoryServiceClient(cc)
			return func(ctx context.Context) error {
				return reserve(ctx, client, prefix+"_"+strconv.FormatInt(seq.Add(1), 10))
			}, nil
		},
	}
}

// seedInventory runs the inventory service in this process on
// scratch/data, stocks the bench SKU with an admin token minted from the
// development key it created, and returns a service token for that key.
func seedInventory(ctx context.Context, scratch string) (serviceToken string, err error) {
	var cfg inventory.Config
	if err := config.Load(&cfg); err != nil {
		return "", err
	}
	cfg.DataDir = filepath.Join(scratch, "data")
	keys, err := auth.LoadKeys(auth.Config{DevKey: true}, cfg.DataDir)
	if err != nil {
		return "", err
	}
	// A week: longer than any benchmark run.
	signer := auth.NewSigner(keys.Private(), cfg.Issuer, cfg.Audience, 7*24*time.Hour)
	admin, _, err := signer.Issue(auth.Principal{Subject: "usr_bench_admin", Role: auth.RoleAdmin})
	if err != nil {
		return "", err
	}
	if serviceToken, _, err = auth.ServiceToken(signer, "order"); err != nil {
		return "", err
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- inventory.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis) }()
	defer func() {
		cancel()
		if runErr := <-done; err == nil {
			err = runErr
		}
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer cc.Close()
	_, err = inventoryv1.NewInventoryServiceClient(cc).SetStock(auth.WithBearer(ctx, admin),
		&inventoryv1.SetStockRequest{Sku: inventorySKU, OnHand: inventoryUnits})
	if err != nil {
		return "", fmt.Errorf("seed stock: %w", err)
	}
	return serviceToken, nil
}
