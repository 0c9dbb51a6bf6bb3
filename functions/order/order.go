// Package order is the order deployable: orders and the saga that confirms
// them through inventory and payment.
//
// The same code runs as its own container (functions/order/cmd), in-process
// under `shopfn dev`, and in tests.
package order

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/shopfn/shopfn/functions/order/internal/clients"
	"github.com/shopfn/shopfn/functions/order/internal/orderapi"
	"github.com/shopfn/shopfn/functions/order/internal/orderdb"
	"github.com/shopfn/shopfn/functions/order/internal/orderfs"
	"github.com/shopfn/shopfn/functions/order/internal/orders"
	opsv1 "github.com/shopfn/shopfn/proto/shopfn/ops/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/events/relay"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/serve"
)

// Name is the deployable's name.
const Name = "order"

// Config is the order deployable's configuration, read from the environment.
type Config struct {
	serve.Platform
	relay.Outbox

	// Database is the SQLite file; empty means order.db in DataDir. With
	// SHOPFN_STORE=firestore the orders are in the Firestore database
	// FirestoreDatabaseName(Name) instead.
	Database string `envconfig:"SHOPFN_ORDER_DB"`
	// The services the saga calls: host:port (plaintext) or https://host.
	CatalogAddr   string `envconfig:"SHOPFN_CATALOG_ADDR" default:"localhost:9002"`
	InventoryAddr string `envconfig:"SHOPFN_INVENTORY_ADDR" default:"localhost:9003"`
	PaymentAddr   string `envconfig:"SHOPFN_PAYMENT_ADDR" default:"localhost:9004"`
	// TaxRateBPS is the tax on the subtotal in basis points (2000 = 20%).
	TaxRateBPS int64 `envconfig:"SHOPFN_TAX_RATE_BPS" default:"2000"`
	// StepTimeout bounds each saga call (with its retries).
	StepTimeout time.Duration `envconfig:"SHOPFN_ORDER_STEP_TIMEOUT" default:"5s"`
	// ResumeEvery runs Resume on a timer in this process (shopfn dev sets
	// it); 0 leaves it to an external scheduler. Resume runs once at
	// start-up either way.
	ResumeEvery time.Duration `envconfig:"SHOPFN_ORDER_RESUME_EVERY" default:"0"`
	// ResumeIdle is how long a saga must have been still before the timer's
	// Resume takes it over. Leases already keep Resume off running sagas.
	ResumeIdle time.Duration `envconfig:"SHOPFN_ORDER_RESUME_IDLE" default:"0s"`

	// AfterStep is a test hook (see orders.Options.AfterStep); not
	// configurable from the environment.
	AfterStep func(ctx context.Context, state string) `ignored:"true"`
}

// Policy is who may call which method.
func Policy() auth.Policy {
	return auth.Policy{
		orderv1.OrderService_CreateOrder_FullMethodName:   auth.Customer,
		orderv1.OrderService_GetOrder_FullMethodName:      auth.Customer,
		orderv1.OrderService_ListOrders_FullMethodName:    auth.Customer,
		orderv1.OrderService_CancelOrder_FullMethodName:   auth.Customer,
		orderv1.OrderService_WatchOrder_FullMethodName:    auth.Customer,
		orderv1.OrderService_AttachInvoice_FullMethodName: auth.Internal,
		orderv1.OrderService_Resume_FullMethodName:        auth.Internal,
		opsv1.OutboxService_Sweep_FullMethodName:          auth.Internal,
	}
}

// Main runs the deployable as a container.
func Main(ctx context.Context) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	return serve.Main(ctx, Name, cfg.Platform, cfg, func(ctx context.Context, log *slog.Logger, lis net.Listener) error {
		return Run(ctx, cfg, log, lis)
	})
}

// Run serves the order service on lis until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger, lis net.Listener) error {
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
	creds, err := d.ServiceCredentials()
	if err != nil {
		return err
	}
	catalogCC, err := d.Dial(cfg.CatalogAddr, clients.CatalogMethods(), creds)
	if err != nil {
		return err
	}
	inventoryCC, err := d.Dial(cfg.InventoryAddr, clients.InventoryMethods(), creds)
	if err != nil {
		return err
	}
	paymentCC, err := d.Dial(cfg.PaymentAddr, clients.PaymentMethods(), creds)
	if err != nil {
		return err
	}

	opts := orders.Options{TaxRateBPS: cfg.TaxRateBPS, StepTimeout: cfg.StepTimeout, Lease: orders.DefaultLease(cfg.StepTimeout)}
	if cfg.AfterStep != nil {
		opts.AfterStep = func(ctx context.Context, o orders.Order) { cfg.AfterStep(ctx, string(o.State)) }
	}
	svc := orders.NewService(db, clients.NewCatalog(catalogCC), clients.NewInventory(inventoryCC), clients.NewPayments(paymentCC), log, opts)

	orderv1.RegisterOrderServiceServer(d.Server, orderapi.New(svc))
	events := relay.Start(ctx, cfg.Outbox, log, db.Outbox)
	defer events.Close()
	opsv1.RegisterOutboxServiceServer(d.Server, events)
	go resumeLoop(ctx, svc, log, cfg.ResumeIdle, cfg.ResumeEvery)
	return d.Server.Serve(ctx, lis, db)
}

// store is what Run needs of either store: the domain's Store, opening in
// the background (serve.Dependency), the outbox for the relay, Close.
type store interface {
	orders.Store
	serve.Dependency
	Outbox(ctx context.Context) (outbox.Store, error)
	Close() error
}

var (
	_ store = (*orderdb.Store)(nil)
	_ store = (*orderfs.Store)(nil)
)

// openStore starts opening the store cfg selects: the SQLite file, or with
// SHOPFN_STORE=firestore the service's Firestore database.
func openStore(ctx context.Context, cfg Config) (store, error) {
	fs, err := cfg.UsesFirestore()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	if fs {
		return orderfs.Open(ctx, cfg.ProjectID, cfg.FirestoreDatabaseName(Name)), nil
	}
	return orderdb.Open(ctx, cfg.DataFile(cfg.Database, "order.db")), nil
}

// resumeBatch is how many sagas one Resume pass continues.
const resumeBatch = 100

// resumeLoop runs Resume once at start-up (sagas a crash interrupted), then
// every `every` if it is set, until ctx ends.
func resumeLoop(ctx context.Context, svc *orders.Service, log *slog.Logger, idle, every time.Duration) {
	for {
		r, err := svc.Resume(ctx, idle, resumeBatch)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.WarnContext(ctx, "resume failed", "error", err.Error())
		case r.Resumed > 0:
			log.InfoContext(ctx, "resumed sagas", "resumed", r.Resumed, "confirmed", r.Confirmed, "cancelled", r.Cancelled, "pending", r.Pending)
		}
		if every <= 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
