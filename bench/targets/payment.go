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
	"github.com/shopfn/shopfn/functions/payment"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	paymentv1 "github.com/shopfn/shopfn/proto/shopfn/payment/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/store"
)

// benchOrder is the order whose payment every payment-service process
// starts with.
const benchOrder = "ord_bench"

// paymentEnv keeps the per-principal rate limit on (admins are limited;
// services are not) but high enough that one load generator is never
// throttled.
var paymentEnv = []string{"SHOPFN_RATE_LIMIT_RPS=1000000000", "SHOPFN_RATE_LIMIT_BURST=1000000000"}

// Payment is the payment deployable, started on a data directory that
// already holds one authorized payment and the development key. The probe
// and the load are GetPayment with an admin token: auth, validation, one
// SQLite point read and the full interceptor chain.
func Payment() benchkit.Target {
	var admin string
	return benchkit.Target{
		Name:    "payment",
		Package: "./functions/payment/cmd",
		Env:     paymentEnv,
		Prepare: func(ctx context.Context, scratch string) (func(string) ([]string, error), error) {
			var err error
			admin, _, err = seedPayment(ctx, scratch)
			if err != nil {
				return nil, err
			}
			return copyData(scratch), nil
		},
		Probe: func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := paymentv1.NewPaymentServiceClient(cc).GetPayment(auth.WithBearer(ctx, admin), &paymentv1.GetPaymentRequest{OrderId: benchOrder})
			return err
		},
		Call: func(ctx context.Context, cc *grpc.ClientConn) (func(context.Context) error, error) {
			client := paymentv1.NewPaymentServiceClient(cc)
			req := &paymentv1.GetPaymentRequest{OrderId: benchOrder}
			return func(ctx context.Context) error {
				_, err := client.GetPayment(auth.WithBearer(ctx, admin), req)
				return err
			}, nil
		},
	}
}

// PaymentAuthorize is the payment deployable loaded with Authorize calls
// for new orders (a unique order id each, tok_visa), as the order saga
// makes them: a service token, the per-order lock, the simulator's durable
// attempt count and the insert of the payment — two SQLite writes per call.
// The probe is one such Authorize.
func PaymentAuthorize() benchkit.Target {
	var svc string
	var seq atomic.Int64
	// run tells the orders of different connections and processes apart.
	authorize := func(ctx context.Context, client paymentv1.PaymentServiceClient, run string) error {
		_, err := client.Authorize(auth.WithBearer(ctx, svc), &paymentv1.AuthorizeRequest{
			OrderId:      run + "_" + strconv.FormatInt(seq.Add(1), 10),
			Amount:       &commonv1.Money{CurrencyCode: "EUR", AmountMinor: 4999},
			PaymentToken: "tok_visa",
		})
		return err
	}
	return benchkit.Target{
		Name:    "payment-authorize",
		Package: "./functions/payment/cmd",
		Env:     paymentEnv,
		Prepare: func(ctx context.Context, scratch string) (func(string) ([]string, error), error) {
			var err error
			_, svc, err = seedPayment(ctx, scratch)
			if err != nil {
				return nil, err
			}
			return copyData(scratch), nil
		},
		Probe: func(ctx context.Context, cc *grpc.ClientConn) error {
			return authorize(ctx, paymentv1.NewPaymentServiceClient(cc), store.NewID("probe"))
		},
		Call: func(ctx context.Context, cc *grpc.ClientConn) (func(context.Context) error, error) {
			client := paymentv1.NewPaymentServiceClient(cc)
			run := store.NewID("ord")
			return func(ctx context.Context) error { return authorize(ctx, client, run) }, nil
		},
	}
}

// seedPayment runs the payment service in this process on scratch/data,
// authorizes benchOrder, and returns an admin and a service token signed
// with the development key it created there.
func seedPayment(ctx context.Context, scratch string) (admin, svc string, err error) {
	var cfg payment.Config
	if err := config.Load(&cfg); err != nil {
		return "", "", err
	}
	cfg.DataDir = filepath.Join(scratch, "data")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- payment.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis) }()
	defer func() {
		cancel()
		if runErr := <-done; err == nil {
			err = runErr
		}
	}()
	keys, err := auth.LoadKeys(cfg.Auth, cfg.DataDir)
	if err != nil {
		return "", "", err
	}
	// A week: longer than any benchmark run.
	signer := auth.NewSigner(keys.Private(), cfg.Issuer, cfg.Audience, 7*24*time.Hour)
	if admin, _, err = signer.Issue(auth.Principal{Subject: "usr_bench_admin", Role: auth.RoleAdmin}); err != nil {
		return "", "", err
	}
	if svc, _, err = signer.Issue(auth.Principal{Subject: "order", Role: auth.RoleService}); err != nil {
		return "", "", err
	}
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", "", err
	}
	defer cc.Close()
	_, err = paymentv1.NewPaymentServiceClient(cc).Authorize(auth.WithBearer(ctx, svc), &paymentv1.AuthorizeRequest{
		OrderId: benchOrder, Amount: &commonv1.Money{CurrencyCode: "EUR", AmountMinor: 4999}, PaymentToken: "tok_visa",
	})
	if err != nil {
		return "", "", fmt.Errorf("seed authorize: %w", err)
	}
	return admin, svc, nil
}
