// Package payment is the payment deployable: one payment per order,
// authorized, captured and refunded through a card processor. The processor
// is simulated (internal/cardsim); its test tokens are listed in README.md.
//
// The same code runs as its own container (functions/payment/cmd),
// in-process under `shopfn dev`, and in tests: Run takes a listener and
// stops when its context ends.
package payment

import (
	"context"
	"log/slog"
	"net"

	"github.com/shopfn/shopfn/functions/payment/internal/cardsim"
	"github.com/shopfn/shopfn/functions/payment/internal/charge"
	"github.com/shopfn/shopfn/functions/payment/internal/paymentapi"
	"github.com/shopfn/shopfn/functions/payment/internal/paymentdb"
	"github.com/shopfn/shopfn/functions/payment/internal/paymentfs"
	paymentv1 "github.com/shopfn/shopfn/proto/shopfn/payment/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/serve"
)

// Name is the deployable's name.
const Name = "payment"

// Config is the payment deployable's configuration, read from the
// environment.
type Config struct {
	serve.Platform

	// Database is the SQLite file; empty means payment.db in DataDir.
	// Unused with SHOPFN_STORE=firestore.
	Database string `envconfig:"SHOPFN_PAYMENT_DB"`
}

// Policy is who may call which method: the order saga moves money, admins
// look at it.
func Policy() auth.Policy {
	return auth.Policy{
		paymentv1.PaymentService_Authorize_FullMethodName:  auth.Internal,
		paymentv1.PaymentService_Capture_FullMethodName:    auth.Internal,
		paymentv1.PaymentService_Refund_FullMethodName:     auth.Internal,
		paymentv1.PaymentService_GetPayment_FullMethodName: auth.Admin,
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

// Run serves the payment service on lis until ctx ends. Payments are kept
// in SQLite, or in Firestore with SHOPFN_STORE=firestore.
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
	// The simulator keeps its attempt counts in the payment database (on
	// Firestore every instance shares them); a real processor's adapter
	// would take its place here.
	svc := charge.NewService(db, cardsim.New(db))
	paymentv1.RegisterPaymentServiceServer(d.Server, paymentapi.New(svc))
	return d.Server.Serve(ctx, lis, db)
}

// paymentStore is what Run needs of a store: the payments, the simulator's
// attempt counts, the readiness Serve waits on, and Close.
type paymentStore interface {
	charge.Store
	cardsim.Attempts
	serve.Dependency
	Close() error
}

// openStore starts opening the configured store: Firestore when
// SHOPFN_STORE=firestore, else the SQLite file.
func openStore(ctx context.Context, cfg Config) (paymentStore, error) {
	fs, err := cfg.UsesFirestore()
	if err != nil {
		return nil, err
	}
	if fs {
		return paymentfs.Open(ctx, cfg.ProjectID, cfg.FirestoreDatabaseName(Name)), nil
	}
	return paymentdb.Open(ctx, cfg.DataFile(cfg.Database, "payment.db")), nil
}
