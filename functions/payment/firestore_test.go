package payment_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/shopfn/shopfn/functions/payment"
	paymentv1 "github.com/shopfn/shopfn/proto/shopfn/payment/v1"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/serve"
	"github.com/shopfn/shopfn/shared/servetest"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestFirestore runs two instances on one Firestore database (the
// emulator), as Cloud Run does, through the saga's calls: each sees what
// the other recorded, the simulator's attempt counts included.
func TestFirestore(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	project, dir := testenv.ProjectID(t), t.TempDir() // one data dir: one signing key
	onFirestore := func(c *payment.Config) { c.Store, c.ProjectID = serve.StoreFirestore, project }
	a, b := startWith(t, dir, onFirestore), startWith(t, dir, onFirestore)

	// tok_unavailable_1 fails the order's first attempt, on whichever
	// instance: the retry on the other one succeeds.
	req := authorizeReq("ord_1", 2500, "tok_unavailable_1")
	_, err := a.client.Authorize(a.svc, req)
	servetest.WantErr(t, err, codes.Unavailable, "PROCESSOR_UNAVAILABLE")
	p := b.authorize(t, "ord_1", 2500, "tok_unavailable_1")
	if p.GetState() != paymentv1.PaymentState_PAYMENT_STATE_AUTHORIZED {
		t.Fatalf("Authorize(%v) retried on the other instance = %v, want AUTHORIZED", req, p)
	}
	if again := a.authorize(t, "ord_1", 2500, "tok_unavailable_1"); again.GetId() != p.GetId() {
		t.Errorf("Authorize(replay) = %v, want %s", again, p.GetId())
	}
	_, err = a.client.Authorize(a.svc, authorizeReq("ord_1", 2600, "tok_unavailable_1"))
	servetest.WantErr(t, err, codes.AlreadyExists, "PAYMENT_MISMATCH")

	if _, err := b.client.Capture(b.svc, &paymentv1.CaptureRequest{OrderId: "ord_1", Amount: eur(2000)}); err != nil {
		t.Fatalf("Capture = %v", err)
	}
	if got := a.get(t, "ord_1"); got.GetState() != paymentv1.PaymentState_PAYMENT_STATE_CAPTURED || got.GetCaptured().GetAmountMinor() != 2000 {
		t.Errorf("GetPayment after Capture = %v, want CAPTURED 2000", got)
	}
	if resp, err := a.client.Refund(a.svc, &paymentv1.RefundRequest{OrderId: "ord_1"}); err != nil || resp.GetPayment().GetState() != paymentv1.PaymentState_PAYMENT_STATE_REFUNDED {
		t.Errorf("Refund = %v, %v; want REFUNDED", resp, err)
	}
	_, err = b.client.GetPayment(b.admin, &paymentv1.GetPaymentRequest{OrderId: "ord/2"})
	servetest.WantErr(t, err, codes.NotFound, "PAYMENT_NOT_FOUND")

	if _, err := os.Stat(filepath.Join(dir, "payment.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("payment.db in the data dir (%v), want no SQLite file with SHOPFN_STORE=firestore", err)
	}
}

func TestRefusesAnUnknownStore(t *testing.T) {
	var cfg payment.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir, cfg.Store = t.TempDir(), "mongodb"
	servetest.ExpectRunFails(t, func(ctx context.Context, lis net.Listener) error {
		return payment.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis)
	})
}
