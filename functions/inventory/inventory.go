// Package inventory is the inventory deployable: stock per SKU and the
// reservations orders hold on it, without ever selling a unit twice.
//
// The same code runs as its own container (functions/inventory/cmd),
// in-process under `shopfn dev`, and in tests: Run takes a listener and
// stops when its context ends.
//
// Reservations expire after SHOPFN_RESERVATION_TTL. Something outside the
// service must call ReleaseExpired on a schedule (Cloud Scheduler in the
// cloud, a timer under `shopfn dev`: see Sweep), because a scaled-to-zero
// instance runs no timers of its own.
package inventory

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/shopfn/shopfn/functions/inventory/internal/inventoryapi"
	"github.com/shopfn/shopfn/functions/inventory/internal/inventorydb"
	"github.com/shopfn/shopfn/functions/inventory/internal/inventoryfs"
	"github.com/shopfn/shopfn/functions/inventory/internal/stock"
	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
	opsv1 "github.com/shopfn/shopfn/proto/shopfn/ops/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/events/relay"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/serve"
)

// Name is the deployable's name.
const Name = "inventory"

// Config is the inventory deployable's configuration, read from the
// environment.
type Config struct {
	serve.Platform
	relay.Outbox

	// Database is the SQLite file; empty means inventory.db in DataDir.
	// With SHOPFN_STORE=firestore the data is in the Firestore database
	// FirestoreDatabaseName(Name) instead.
	Database string `envconfig:"SHOPFN_INVENTORY_DB"`
	// ReservationTTL is how long a reservation holds its units before it
	// expires. 15 minutes covers a checkout's payment step with room for
	// retries, and bounds how long an abandoned order keeps stock from
	// other shoppers.
	ReservationTTL time.Duration `envconfig:"SHOPFN_RESERVATION_TTL" default:"15m"`
	// LowStockThreshold is the available level at or below which a SKU is
	// low on stock: crossing it downwards records an inventory.low_stock
	// event. Negative turns the events off.
	LowStockThreshold int64 `envconfig:"SHOPFN_LOW_STOCK_THRESHOLD" default:"5"`
	// CacheSize is how many SKUs read by GetStock are kept in memory (0:
	// none). An entry is about a hundred bytes; a write to a SKU drops it.
	// SQLite only: on Firestore several instances write, so nothing is
	// cached.
	CacheSize int `envconfig:"SHOPFN_INVENTORY_CACHE_SIZE" default:"10000"`
}

// Policy is who may call which method.
func Policy() auth.Policy {
	return auth.Policy{
		inventoryv1.InventoryService_SetStock_FullMethodName:       auth.Admin,
		inventoryv1.InventoryService_GetStock_FullMethodName:       auth.Public,
		inventoryv1.InventoryService_Reserve_FullMethodName:        auth.Internal,
		inventoryv1.InventoryService_Commit_FullMethodName:         auth.Internal,
		inventoryv1.InventoryService_Release_FullMethodName:        auth.Internal,
		inventoryv1.InventoryService_ReleaseExpired_FullMethodName: auth.Internal,
		opsv1.OutboxService_Sweep_FullMethodName:                   auth.Internal,
	}
}

// Main runs the deployable as a container: configuration from the
// environment, logs on stdout, the listener on $PORT.
func Main(ctx context.Context) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	return serve.Main(ctx, Name, cfg.Platform, cfg, func(ctx context.Context, log *slog.Logger, lis net.Listener) error {
		return Run(ctx, cfg, log, lis)
	})
}

// Run serves the inventory service on lis until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger, lis net.Listener) error {
	if cfg.ReservationTTL <= 0 {
		return fmt.Errorf("%s: SHOPFN_RESERVATION_TTL must be positive, not %v", Name, cfg.ReservationTTL)
	}
	// The database opens while the rest starts; calls wait for it.
	db, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()

	d, err := serve.Start(ctx, Name, cfg.Platform, log, Policy())
	if err != nil {
		return err
	}
	defer d.Close()
	svc := stock.NewService(db, stock.Settings{TTL: cfg.ReservationTTL, LowStockThreshold: cfg.LowStockThreshold})
	inventoryv1.RegisterInventoryServiceServer(d.Server, inventoryapi.New(svc))
	events := relay.Start(ctx, cfg.Outbox, log, db.Outbox)
	defer events.Close()
	opsv1.RegisterOutboxServiceServer(d.Server, events)
	return d.Server.Serve(ctx, lis, db)
}

// store is what Run needs of either store: the domain's Store, opening in
// the background (serve.Dependency), the outbox for the relay, Close.
type store interface {
	stock.Store
	serve.Dependency
	Outbox(ctx context.Context) (outbox.Store, error)
	Close() error
}

var (
	_ store = (*inventorydb.Store)(nil)
	_ store = (*inventoryfs.Store)(nil)
)

// openStore starts opening the store cfg selects: the SQLite file, or with
// SHOPFN_STORE=firestore the service's Firestore database.
func openStore(ctx context.Context, cfg Config) (store, error) {
	fs, err := cfg.UsesFirestore()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	if fs {
		return inventoryfs.Open(ctx, cfg.ProjectID, cfg.FirestoreDatabaseName(Name)), nil
	}
	return inventorydb.Open(ctx, cfg.DataFile(cfg.Database, "inventory.db"), cfg.CacheSize), nil
}
