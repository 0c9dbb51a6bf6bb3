package payment_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shopfn/shopfn/functions/payment"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	paymentv1 "github.com/shopfn/shopfn/proto/shopfn/payment/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/servetest"
)

type env struct {
	client paymentv1.PaymentServiceClient
	dir    string
	cfg    payment.Config
	// svc and admin carry service and admin tokens.
	svc, admin context.Context
	// stop stops the service (it also stops at the end of the test).
	stop func()
}

// start runs the payment service on a loopback port with the data dir
// (a fresh one when dir is "").
func start(t testing.TB, dir string) *env {
	t.Helper()
	return startWith(t, dir, nil)
}

// startWith is start with the configuration changed by mutate (when not
// nil).
func startWith(t testing.TB, dir string, mutate func(*payment.Config)) *env {
	t.Helper()
	var cfg payment.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dir
	if dir == "" {
		cfg.DataDir = t.TempDir()
	}
	if mutate != nil {
		mutate(&cfg)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- payment.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cc.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}
	t.Cleanup(stop)
	e := &env{client: paymentv1.NewPaymentServiceClient(cc), dir: cfg.DataDir, cfg: cfg, stop: stop}
	e.svc = e.as(t, auth.Principal{Subject: "order", Role: auth.RoleService})
	e.admin = e.as(t, auth.Principal{Subject: "usr_admin", Role: auth.RoleAdmin})
	return e
}

// as returns a context carrying a token for p, signed with the service's
// development key.
func (e *env) as(t testing.TB, p auth.Principal) context.Context {
	t.Helper()
	keys, err := auth.LoadKeys(auth.Config{DevKey: true}, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := auth.NewSigner(keys.Private(), e.cfg.Issuer, e.cfg.Audience, time.Hour).Issue(p)
	if err != nil {
		t.Fatal(err)
	}
	return auth.WithBearer(context.Background(), tok)
}

func eur(minor int64) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: "EUR", AmountMinor: minor}
}

func authorizeReq(order string, minor int64, token string) *paymentv1.AuthorizeRequest {
	return &paymentv1.AuthorizeRequest{OrderId: order, Amount: eur(minor), PaymentToken: token}
}

func (e *env) authorize(t testing.TB, order string, minor int64, token string) *paymentv1.Payment {
	t.Helper()
	resp, err := e.client.Authorize(e.svc, authorizeReq(order, minor, token))
	if err != nil {
		t.Fatalf("Authorize(%s, %d, %s) = %v", order, minor, token, err)
	}
	return resp.GetPayment()
}

func (e *env) get(t testing.TB, order string) *paymentv1.Payment {
	t.Helper()
	resp, err := e.client.GetPayment(e.admin, &paymentv1.GetPaymentRequest{OrderId: order})
	if err != nil {
		t.Fatalf("GetPayment(%s) = %v", order, err)
	}
	return resp.GetPayment()
}

// db opens the service's database file for inspection.
func (e *env) db(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "payment.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// attempts is how many times the simulated processor was asked to
// authorize the order, as it recorded durably.
func (e *env) attempts(t testing.TB, order string) int {
	t.Helper()
	var n int
	err := e.db(t).QueryRow("SELECT attempts FROM processor_attempts WHERE order_id = ?", order).Scan(&n)
	if err == sql.ErrNoRows {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// snapshot is every stored row, to check that a rejected call changed
// nothing.
func (e *env) snapshot(t testing.TB) string {
	t.Helper()
	db := e.db(t)
	var b strings.Builder
	for _, q := range []string{
		"SELECT * FROM payments ORDER BY order_id",
		"SELECT * FROM processor_attempts ORDER BY order_id",
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
		b.WriteString("--\n")
	}
	return b.String()
}

// metadata returns the ErrorInfo metadata of a status error.
func metadata(err error) map[string]string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetMetadata()
		}
	}
	return nil
}

func TestPolicyCoversEveryMethod(t *testing.T) {
	if missing := payment.Policy().Uncovered(&paymentv1.PaymentService_ServiceDesc); len(missing) > 0 {
		t.Errorf("methods without an access policy: %v", missing)
	}
}

func TestAuthorizeApproves(t *testing.T) {
	e := start(t, "")
	tests := []struct {
		token, brand, last4 string
	}{
		{"tok_visa", "visa", "4242"},
		{"tok_mastercard", "mastercard", "4444"},
		{"tok_amex", "amex", "0005"},
		{"tok_unavailable_1", "visa", "4242"}, // approves on its second attempt below
		{"tok_slow_1ms", "visa", "4242"},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			order := "ord_" + tt.token
			req := authorizeReq(order, 1234, tt.token)
			resp, err := e.client.Authorize(e.svc, req)
			if strings.HasPrefix(tt.token, "tok_unavailable_") {
				servetest.WantErr(t, err, codes.Unavailable, "PROCESSOR_UNAVAILABLE")
				resp, err = e.client.Authorize(e.svc, req)
			}
			if err != nil {
				t.Fatalf("Authorize(%v) = %v", req, err)
			}
			p := resp.GetPayment()
			want := &paymentv1.Payment{
				Id: p.GetId(), OrderId: order, State: paymentv1.PaymentState_PAYMENT_STATE_AUTHORIZED,
				Amount: eur(1234), Authorized: eur(1234), Captured: eur(0), Refunded: eur(0),
				CardBrand: tt.brand, CardLast4: tt.last4,
				CreateTime: p.GetCreateTime(), UpdateTime: p.GetUpdateTime(),
			}
			if !strings.HasPrefix(p.GetId(), "pay_") || p.GetCreateTime() == nil || !proto.Equal(p, want) {
				t.Errorf("Authorize(%v) = %v, want %v", req, p, want)
			}
			if got := e.get(t, order); !proto.Equal(got, p) {
				t.Errorf("GetPayment(%s) = %v, want %v", order, got, p)
			}
		})
	}
}

func TestAuthorizeIsIdempotent(t *testing.T) {
	e := start(t, "")
	first := e.authorize(t, "ord_1", 500, "tok_visa")
	again := e.authorize(t, "ord_1", 500, "tok_visa")
	if !proto.Equal(first, again) {
		t.Errorf("Authorize(retry) = %v, want %v", again, first)
	}
	if n := e.attempts(t, "ord_1"); n != 1 {
		t.Errorf("processor attempts after a retry = %d, want 1", n)
	}
	// A captured payment is still the answer to the same Authorize.
	if _, err := e.client.Capture(e.svc, &paymentv1.CaptureRequest{OrderId: "ord_1"}); err != nil {
		t.Fatal(err)
	}
	if p := e.authorize(t, "ord_1", 500, "tok_visa"); p.GetId() != first.GetId() || p.GetState() != paymentv1.PaymentState_PAYMENT_STATE_CAPTURED {
		t.Errorf("Authorize(after capture) = %v, want the captured payment %s", p, first.GetId())
	}
	if n := e.attempts(t, "ord_1"); n != 1 {
		t.Errorf("processor attempts = %d, want 1", n)
	}
}

func TestAuthorizeMismatch(t *testing.T) {
	e := start(t, "")
	e.authorize(t, "ord_1", 500, "tok_visa")
	before := e.snapshot(t)
	tests := []struct {
		name string
		req  *paymentv1.AuthorizeRequest
	}{
		{"other amount", authorizeReq("ord_1", 501, "tok_visa")},
		{"other currency", &paymentv1.AuthorizeRequest{OrderId: "ord_1", Amount: &commonv1.Money{CurrencyCode: "USD", AmountMinor: 500}, PaymentToken: "tok_visa"}},
		{"other token", authorizeReq("ord_1", 500, "tok_mastercard")},
		{"other token that declines", authorizeReq("ord_1", 500, "tok_decline")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.Authorize(e.svc, tt.req)
			servetest.WantErr(t, err, codes.AlreadyExists, "PAYMENT_MISMATCH")
			if after := e.snapshot(t); after != before {
				t.Errorf("store after Authorize(%v):\n%s\nwant unchanged:\n%s", tt.req, after, before)
			}
		})
	}
}

func TestAuthorizeDeclines(t *testing.T) {
	e := start(t, "")
	tests := []struct {
		token, code, last4 string
	}{
		{"tok_decline", "card_declined", "0002"},
		{"tok_insufficient_funds", "insufficient_funds", "9995"},
		{"tok_expired_card", "expired_card", "0069"},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			order := "ord_" + tt.token
			req := authorizeReq(order, 700, tt.token)
			for range 2 { // the retry gets the recorded decline
				_, err := e.client.Authorize(e.svc, req)
				servetest.WantErr(t, err, codes.FailedPrecondition, "PAYMENT_DECLINED")
				if got := metadata(err)["decline_code"]; got != tt.code {
					t.Errorf("Authorize(%v) decline_code = %q, want %q", req, got, tt.code)
				}
			}
			if n := e.attempts(t, order); n != 1 {
				t.Errorf("processor attempts after a retried decline = %d, want 1", n)
			}
			p := e.get(t, order)
			if p.GetState() != paymentv1.PaymentState_PAYMENT_STATE_DECLINED || p.GetDeclineCode() != tt.code ||
				p.GetAuthorized().GetAmountMinor() != 0 || p.GetAmount().GetAmountMinor() != 700 || p.GetCardLast4() != tt.last4 {
				t.Errorf("GetPayment(%s) = %v, want DECLINED %s, nothing authorized of 700, card %s", order, p, tt.code, tt.last4)
			}
		})
	}
}

func TestBadAuthorizeRequests(t *testing.T) {
	e := start(t, "")
	e.authorize(t, "ord_existing", 500, "tok_visa")
	before := e.snapshot(t)
	long := strings.Repeat("x", 65)
	tests := []struct {
		name  string
		req   *paymentv1.AuthorizeRequest
		field string
	}{
		{"zero amount", authorizeReq("ord_1", 0, "tok_visa"), "amount.amount_minor"},
		{"negative amount", authorizeReq("ord_1", -5, "tok_visa"), "amount.amount_minor"},
		{"no amount", &paymentv1.AuthorizeRequest{OrderId: "ord_1", PaymentToken: "tok_visa"}, "amount"},
		{"bad currency", &paymentv1.AuthorizeRequest{OrderId: "ord_1", Amount: &commonv1.Money{CurrencyCode: "eur", AmountMinor: 5}, PaymentToken: "tok_visa"}, "amount.currency_code"},
		{"no order", authorizeReq("", 5, "tok_visa"), "order_id"},
		{"long order", authorizeReq(long, 5, "tok_visa"), "order_id"},
		{"no token", authorizeReq("ord_1", 5, ""), "payment_token"},
		{"unknown token", authorizeReq("ord_1", 5, "tok_bitcoin"), "payment_token"},
		{"card number as token", authorizeReq("ord_1", 5, "4242424242424242"), "payment_token"},
		{"zero failures", authorizeReq("ord_1", 5, "tok_unavailable_0"), "payment_token"},
		{"too many failures", authorizeReq("ord_1", 5, "tok_unavailable_101"), "payment_token"},
		{"padded failures", authorizeReq("ord_1", 5, "tok_unavailable_02"), "payment_token"},
		{"delay without unit", authorizeReq("ord_1", 5, "tok_slow_300"), "payment_token"},
		{"padded delay", authorizeReq("ord_1", 5, "tok_slow_0300ms"), "payment_token"},
		{"delay too long", authorizeReq("ord_1", 5, "tok_slow_30001ms"), "payment_token"},
		{"zero amount on an existing order", authorizeReq("ord_existing", 0, "tok_visa"), "amount.amount_minor"},
		{"unknown token on an existing order", authorizeReq("ord_existing", 500, "tok_nope"), "payment_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.Authorize(e.svc, tt.req)
			if tt.name == "unknown token on an existing order" {
				// The stored payment answers first: a token other than the
				// authorized one is a mismatch, known or not.
				servetest.WantErr(t, err, codes.AlreadyExists, "PAYMENT_MISMATCH")
			} else {
				servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
				if v := apperr.FieldViolations(err); len(v) != 1 || v[0].Field != tt.field {
					t.Errorf("Authorize(%v) violations = %v, want one on %s", tt.req, v, tt.field)
				}
			}
			if after := e.snapshot(t); after != before {
				t.Errorf("store after Authorize(%v):\n%s\nwant unchanged:\n%s", tt.req, after, before)
			}
		})
	}
}

// TestTransientFailureCountsAcrossRestarts: tok_unavailable_2 fails the
// first two attempts of an order, counted durably, so a retry after a
// restart sees the right count.
func TestTransientFailureCountsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	req := authorizeReq("ord_flaky", 900, "tok_unavailable_2")
	_, err := e.client.Authorize(e.svc, req)
	servetest.WantErr(t, err, codes.Unavailable, "PROCESSOR_UNAVAILABLE")
	_, err = e.client.GetPayment(e.admin, &paymentv1.GetPaymentRequest{OrderId: "ord_flaky"})
	servetest.WantErr(t, err, codes.NotFound, "PAYMENT_NOT_FOUND")
	// Another order has its own count.
	_, err = e.client.Authorize(e.svc, authorizeReq("ord_other", 900, "tok_unavailable_2"))
	servetest.WantErr(t, err, codes.Unavailable, "PROCESSOR_UNAVAILABLE")

	e.stop()
	e = start(t, dir)
	_, err = e.client.Authorize(e.svc, req)
	servetest.WantErr(t, err, codes.Unavailable, "PROCESSOR_UNAVAILABLE")
	if got := metadata(err)["attempt"]; got != "2" {
		t.Errorf("Authorize(%v) attempt = %q, want 2", req, got)
	}

	e.stop()
	e = start(t, dir)
	p := e.authorize(t, "ord_flaky", 900, "tok_unavailable_2")
	if p.GetState() != paymentv1.PaymentState_PAYMENT_STATE_AUTHORIZED {
		t.Errorf("third Authorize(%v) = %v, want AUTHORIZED", req, p)
	}
	if again := e.authorize(t, "ord_flaky", 900, "tok_unavailable_2"); again.GetId() != p.GetId() {
		t.Errorf("Authorize(retry) = %v, want %s", again, p.GetId())
	}
	if n := e.attempts(t, "ord_flaky"); n != 3 {
		t.Errorf("processor attempts = %d, want 3", n)
	}
	if n := e.attempts(t, "ord_other"); n != 1 {
		t.Errorf("processor attempts of another order = %d, want 1", n)
	}
}

// TestSlowTokenHonoursDeadline: a deadline shorter than the processor's
// delay ends the call with DeadlineExceeded and leaves nothing authorized;
// a retry then works.
func TestSlowTokenHonoursDeadline(t *testing.T) {
	e := start(t, "")
	req := authorizeReq("ord_slow", 1500, "tok_slow_300ms")
	ctx, cancel := context.WithTimeout(e.svc, 30*time.Millisecond)
	_, err := e.client.Authorize(ctx, req)
	cancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Authorize(%v) with a short deadline = %v, want DeadlineExceeded", req, err)
	}
	// Nothing to capture or refund: no half-done payment.
	_, err = e.client.Capture(e.svc, &paymentv1.CaptureRequest{OrderId: "ord_slow"})
	servetest.WantErr(t, err, codes.NotFound, "PAYMENT_NOT_FOUND")
	if resp, err := e.client.Refund(e.svc, &paymentv1.RefundRequest{OrderId: "ord_slow"}); err != nil || resp.GetPayment() != nil {
		t.Errorf("Refund(ord_slow) = %v, %v; want no payment", resp, err)
	}
	_, err = e.client.GetPayment(e.admin, &paymentv1.GetPaymentRequest{OrderId: "ord_slow"})
	servetest.WantErr(t, err, codes.NotFound, "PAYMENT_NOT_FOUND")

	p := e.authorize(t, "ord_slow", 1500, "tok_slow_300ms")
	if p.GetState() != paymentv1.PaymentState_PAYMENT_STATE_AUTHORIZED {
		t.Errorf("Authorize(%v) retried with time = %v, want AUTHORIZED", req, p)
	}
}

// TestConcurrentAuthorize: 20 identical Authorize calls at once make one
// payment and one processor call.
func TestConcurrentAuthorize(t *testing.T) {
	e := start(t, "")
	for _, token := range []string{"tok_visa", "tok_slow_50ms", "tok_decline"} {
		t.Run(token, func(t *testing.T) {
			order := "ord_race_" + token
			const n = 20
			var wg sync.WaitGroup
			ids := make([]string, n)
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := e.client.Authorize(e.svc, authorizeReq(order, 4200, token))
					ids[i], errs[i] = resp.GetPayment().GetId(), err
				}()
			}
			wg.Wait()
			for i := range n {
				if token == "tok_decline" {
					if status.Code(errs[i]) != codes.FailedPrecondition || apperr.Reason(errs[i]) != "PAYMENT_DECLINED" {
						t.Errorf("concurrent Authorize #%d = %v, want PAYMENT_DECLINED", i, errs[i])
					}
					continue
				}
				if errs[i] != nil || ids[i] != ids[0] {
					t.Errorf("concurrent Authorize #%d = %q, %v; want %q", i, ids[i], errs[i], ids[0])
				}
			}
			if got := e.attempts(t, order); got != 1 {
				t.Errorf("processor attempts for %d concurrent calls = %d, want 1", n, got)
			}
			var rows int
			if err := e.db(t).QueryRow("SELECT count(*) FROM payments WHERE order_id = ?", order).Scan(&rows); err != nil || rows != 1 {
				t.Errorf("payments of the order = %d, %v; want 1", rows, err)
			}
		})
	}
}

func TestCapture(t *testing.T) {
	e := start(t, "")
	p := e.authorize(t, "ord_full", 1000, "tok_visa")
	resp, err := e.client.Capture(e.svc, &paymentv1.CaptureRequest{OrderId: "ord_full"})
	if err != nil {
		t.Fatal(err)
	}
	c := resp.GetPayment()
	if c.GetId() != p.GetId() || c.GetState() != paymentv1.PaymentState_PAYMENT_STATE_CAPTURED ||
		!proto.Equal(c.GetCaptured(), eur(1000)) || !proto.Equal(c.GetAuthorized(), eur(1000)) {
		t.Errorf("Capture(ord_full) = %v, want all 1000 captured", c)
	}
	// Idempotent: again without an amount, and with the captured amount.
	for _, amount := range []*commonv1.Money{nil, eur(1000)} {
		again, err := e.client.Capture(e.svc, &paymentv1.CaptureRequest{OrderId: "ord_full", Amount: amount})
		if err != nil || !proto.Equal(again.GetPayment(), c) {
			t.Errorf("Capture(ord_full, %v) again = %v, %v; want %v", amount, again, err, c)
		}
	}

	e.authorize(t, "ord_part", 1000, "tok_visa")
	resp, err = e.client.Capture(e.svc, &paymentv1.CaptureRequest{OrderId: "ord_part", Amount: eur(600)})
	if err != nil || !proto.Equal(resp.GetPayment().GetCaptured(), eur(600)) || resp.GetPayment().GetState() != paymentv1.PaymentState_PAYMENT_STATE_CAPTURED {
		t.Fatalf("Capture(ord_part, 600) = %v, %v; want 600 captured", resp, err)
	}
	if again, err := e.client.Capture(e.svc, &paymentv1.CaptureRequest{OrderId: "ord_part"}); err != nil || !proto.Equal(again.GetPayment().GetCaptured(), eur(600)) {
		t.Errorf("Capture(ord_part) again = %v, %v; want the 600 captured", again, err)
	}
}

func TestBadCaptureRequests(t *testing.T) {
	e := start(t, "")
	e.authorize(t, "ord_auth", 1000, "tok_visa")
	e.authorize(t, "ord_captured", 1000, "tok_visa")
	if _, err := e.client.Capture(e.svc, &paymentv1.CaptureRequest{OrderId: "ord_captured", Amount: eur(400)}); err != nil {
		t.Fatal(err)
	}
	e.authorize(t, "ord_voided", 1000, "tok_visa")
	e.authorize(t, "ord_refunded", 1000, "tok_visa")
	if _, err := e.client.Capture(e.svc, &paymentv1.CaptureRequest{OrderId: "ord_refunded"}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"ord_voided", "ord_refunded"} {
		if _, err := e.client.Refund(e.svc, &paymentv1.RefundRequest{OrderId: o}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.client.Authorize(e.svc, authorizeReq("ord_declined", 1000, "tok_decline"))
	servetest.WantErr(t, err, codes.FailedPrecondition, "PAYMENT_DECLINED")
	before := e.snapshot(t)

	tests := []struct {
		name   string
		req    *paymentv1.CaptureRequest
		code   codes.Code
		reason string
	}{
		{"unknown order", &paymentv1.CaptureRequest{OrderId: "ord_nope"}, codes.NotFound, "PAYMENT_NOT_FOUND"},
		{"more than authorized", &paymentv1.CaptureRequest{OrderId: "ord_auth", Amount: eur(1001)}, codes.FailedPrecondition, "CAPTURE_EXCEEDS_AUTHORIZATION"},
		{"other currency", &paymentv1.CaptureRequest{OrderId: "ord_auth", Amount: &commonv1.Money{CurrencyCode: "USD", AmountMinor: 10}}, codes.FailedPrecondition, "CURRENCY_MISMATCH"},
		{"zero amount", &paymentv1.CaptureRequest{OrderId: "ord_auth", Amount: eur(0)}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"negative amount", &paymentv1.CaptureRequest{OrderId: "ord_auth", Amount: eur(-1)}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"bad currency", &paymentv1.CaptureRequest{OrderId: "ord_auth", Amount: &commonv1.Money{CurrencyCode: "euro", AmountMinor: 10}}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"no order", &paymentv1.CaptureRequest{}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"another amount after capture", &paymentv1.CaptureRequest{OrderId: "ord_captured", Amount: eur(500)}, codes.FailedPrecondition, "PAYMENT_STATE_CONFLICT"},
		{"more than authorized after capture", &paymentv1.CaptureRequest{OrderId: "ord_captured", Amount: eur(1001)}, codes.FailedPrecondition, "CAPTURE_EXCEEDS_AUTHORIZATION"},
		{"declined", &paymentv1.CaptureRequest{OrderId: "ord_declined"}, codes.FailedPrecondition, "PAYMENT_STATE_CONFLICT"},
		{"voided", &paymentv1.CaptureRequest{OrderId: "ord_voided"}, codes.FailedPrecondition, "PAYMENT_STATE_CONFLICT"},
		{"refunded", &paymentv1.CaptureRequest{OrderId: "ord_refunded"}, codes.FailedPrecondition, "PAYMENT_STATE_CONFLICT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.Capture(e.svc, tt.req)
			servetest.WantErr(t, err, tt.code, tt.reason)
			if after := e.snapshot(t); after != before {
				t.Errorf("store after Capture(%v):\n%s\nwant unchanged:\n%s", tt.req, after, before)
			}
		})
	}
}

func TestRefund(t *testing.T) {
	e := start(t, "")
	e.authorize(t, "ord_void", 1000, "tok_visa")
	e.authorize(t, "ord_refund", 1000, "tok_mastercard")
	if _, err := e.client.Capture(e.svc, &paymentv1.CaptureRequest{OrderId: "ord_refund", Amount: eur(800)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		order    string
		state    paymentv1.PaymentState
		refunded int64
	}{
		{"ord_void", paymentv1.PaymentState_PAYMENT_STATE_VOIDED, 0},
		{"ord_refund", paymentv1.PaymentState_PAYMENT_STATE_REFUNDED, 800},
	}
	for _, tt := range tests {
		t.Run(tt.order, func(t *testing.T) {
			resp, err := e.client.Refund(e.svc, &paymentv1.RefundRequest{OrderId: tt.order})
			p := resp.GetPayment()
			if err != nil || p.GetState() != tt.state || !proto.Equal(p.GetRefunded(), eur(tt.refunded)) {
				t.Fatalf("Refund(%s) = %v, %v; want %v with %d refunded", tt.order, p, err, tt.state, tt.refunded)
			}
			again, err := e.client.Refund(e.svc, &paymentv1.RefundRequest{OrderId: tt.order})
			if err != nil || !proto.Equal(again.GetPayment(), p) {
				t.Errorf("Refund(%s) again = %v, %v; want %v", tt.order, again, err, p)
			}
		})
	}
}

// TestRefundWithoutAuthorization: compensation is safe to call blindly; for
// an order never authorized, or declined, it returns no payment and changes
// nothing.
func TestRefundWithoutAuthorization(t *testing.T) {
	e := start(t, "")
	_, err := e.client.Authorize(e.svc, authorizeReq("ord_declined", 1000, "tok_insufficient_funds"))
	servetest.WantErr(t, err, codes.FailedPrecondition, "PAYMENT_DECLINED")
	before := e.snapshot(t)
	for _, order := range []string{"ord_never", "ord_declined"} {
		resp, err := e.client.Refund(e.svc, &paymentv1.RefundRequest{OrderId: order})
		if err != nil || resp.GetPayment() != nil {
			t.Errorf("Refund(%s) = %v, %v; want no payment", order, resp, err)
		}
		if after := e.snapshot(t); after != before {
			t.Errorf("store after Refund(%s):\n%s\nwant unchanged:\n%s", order, after, before)
		}
	}
	_, err = e.client.Refund(e.svc, &paymentv1.RefundRequest{})
	servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	if after := e.snapshot(t); after != before {
		t.Errorf("store after Refund(no order):\n%s\nwant unchanged:\n%s", after, before)
	}
}

// TestCaptureRefundRace races captures and refunds of one authorization:
// either a capture won (REFUNDED, all captured money given back) or the
// refund did (VOIDED, nothing captured); never anything in between.
func TestCaptureRefundRace(t *testing.T) {
	e := start(t, "")
	for i := range 5 {
		order := fmt.Sprintf("ord_race_%d", i)
		e.authorize(t, order, 1000, "tok_visa")
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			captures int
		)
		for j := range 10 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, err := e.client.Capture(e.svc, &paymentv1.CaptureRequest{OrderId: order})
				switch {
				case err == nil:
					mu.Lock()
					captures++
					mu.Unlock()
				case status.Code(err) != codes.FailedPrecondition || apperr.Reason(err) != "PAYMENT_STATE_CONFLICT":
					t.Errorf("racing Capture(%s) #%d = %v, want OK or PAYMENT_STATE_CONFLICT", order, j, err)
				}
			}()
			go func() {
				defer wg.Done()
				if _, err := e.client.Refund(e.svc, &paymentv1.RefundRequest{OrderId: order}); err != nil {
					t.Errorf("racing Refund(%s) #%d = %v", order, j, err)
				}
			}()
		}
		wg.Wait()
		p := e.get(t, order)
		switch {
		case captures > 0 && p.GetState() == paymentv1.PaymentState_PAYMENT_STATE_REFUNDED &&
			proto.Equal(p.GetCaptured(), eur(1000)) && proto.Equal(p.GetRefunded(), eur(1000)):
		case captures == 0 && p.GetState() == paymentv1.PaymentState_PAYMENT_STATE_VOIDED &&
			proto.Equal(p.GetCaptured(), eur(0)) && proto.Equal(p.GetRefunded(), eur(0)):
		default:
			t.Errorf("after %d successful captures and the refunds, GetPayment(%s) = %v", captures, order, p)
		}
	}
}

// TestRefundWaitsForAuthorizeInFlight: a compensation that arrives while
// the order's Authorize is still at the processor waits for it and voids
// the result, so no hold is left behind.
func TestRefundWaitsForAuthorizeInFlight(t *testing.T) {
	e := start(t, "")
	// A call that reaches the store: the schema exists from then on.
	_, err := e.client.GetPayment(e.admin, &paymentv1.GetPaymentRequest{OrderId: "ord_inflight"})
	servetest.WantErr(t, err, codes.NotFound, "PAYMENT_NOT_FOUND")
	done := make(chan error, 1)
	go func() {
		_, err := e.client.Authorize(e.svc, authorizeReq("ord_inflight", 1000, "tok_slow_200ms"))
		done <- err
	}()
	// Wait until the processor has the call (the attempt is counted first).
	for e.attempts(t, "ord_inflight") == 0 {
		select {
		case err := <-done:
			t.Fatalf("Authorize(ord_inflight) ended (%v) before the processor counted it", err)
		case <-time.After(time.Millisecond):
		}
	}
	resp, err := e.client.Refund(e.svc, &paymentv1.RefundRequest{OrderId: "ord_inflight"})
	if err != nil || resp.GetPayment().GetState() != paymentv1.PaymentState_PAYMENT_STATE_VOIDED {
		t.Errorf("Refund(ord_inflight) during Authorize = %v, %v; want VOIDED", resp, err)
	}
	if err := <-done; err != nil {
		t.Errorf("Authorize(ord_inflight) = %v", err)
	}
}

func TestAccess(t *testing.T) {
	e := start(t, "")
	customer := e.as(t, auth.Principal{Subject: "usr_ann", Role: auth.RoleCustomer})
	e.authorize(t, "ord_1", 100, "tok_visa")
	before := e.snapshot(t)
	calls := []struct {
		name   string
		call   func(ctx context.Context) error
		denied []context.Context
	}{
		{"Authorize", func(ctx context.Context) error {
			_, err := e.client.Authorize(ctx, authorizeReq("ord_2", 100, "tok_visa"))
			return err
		}, []context.Context{customer, e.admin}},
		{"Capture", func(ctx context.Context) error {
			_, err := e.client.Capture(ctx, &paymentv1.CaptureRequest{OrderId: "ord_1"})
			return err
		}, []context.Context{customer, e.admin}},
		{"Refund", func(ctx context.Context) error {
			_, err := e.client.Refund(ctx, &paymentv1.RefundRequest{OrderId: "ord_1"})
			return err
		}, []context.Context{customer, e.admin}},
		{"GetPayment", func(ctx context.Context) error {
			_, err := e.client.GetPayment(ctx, &paymentv1.GetPaymentRequest{OrderId: "ord_1"})
			return err
		}, []context.Context{customer, e.svc}},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			servetest.WantErr(t, tt.call(context.Background()), codes.Unauthenticated, "TOKEN_MISSING")
			for _, ctx := range tt.denied {
				servetest.WantErr(t, tt.call(ctx), codes.PermissionDenied, "PERMISSION_DENIED")
			}
			if after := e.snapshot(t); after != before {
				t.Errorf("store after denied %s calls:\n%s\nwant unchanged:\n%s", tt.name, after, before)
			}
		})
	}
	_, err := e.client.GetPayment(e.admin, &paymentv1.GetPaymentRequest{OrderId: "ord_none"})
	servetest.WantErr(t, err, codes.NotFound, "PAYMENT_NOT_FOUND")
	_, err = e.client.GetPayment(e.admin, &paymentv1.GetPaymentRequest{})
	servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
}

func TestStopsWhenTheStoreCannotOpen(t *testing.T) {
	var cfg payment.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Database = servetest.UnopenablePath(t, "payment.db")
	servetest.ExpectRunFails(t, func(ctx context.Context, lis net.Listener) error {
		return payment.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis)
	})
}
