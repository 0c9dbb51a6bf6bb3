package inventory_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shopfn/shopfn/functions/inventory"
	"github.com/shopfn/shopfn/infra"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/servetest"
)

type env struct {
	client inventoryv1.InventoryServiceClient
	addr   string
	dir    string
	cfg    inventory.Config
	// Callers: an admin, a customer, and another deployable.
	admin, customer, service context.Context
}

// start runs the inventory service on a loopback port with a fresh data dir.
func start(t testing.TB, mutate func(*inventory.Config)) *env {
	t.Helper()
	var cfg inventory.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	// Anonymous GetStock calls are rate-limited per address; tests make many.
	cfg.RateLimit, cfg.RateBurst = 1e9, 1e9
	if mutate != nil {
		mutate(&cfg)
	}
	addr, _ := servetest.Serve(t, func(ctx context.Context, lis net.Listener) error {
		return inventory.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis)
	})
	cc := servetest.Conn(t, addr)
	e := &env{client: inventoryv1.NewInventoryServiceClient(cc), addr: addr, dir: cfg.DataDir, cfg: cfg}
	signer := e.signer(t)
	e.admin = e.as(t, signer, auth.Principal{Subject: "usr_admin", Role: auth.RoleAdmin})
	e.customer = e.as(t, signer, auth.Principal{Subject: "usr_ann", Role: auth.RoleCustomer})
	e.service = e.as(t, signer, auth.Principal{Subject: "order", Role: auth.RoleService})
	return e
}

// signer returns a signer with the service's development key.
func (e *env) signer(t testing.TB) *auth.Signer {
	t.Helper()
	keys, err := auth.LoadKeys(auth.Config{DevKey: true}, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	return auth.NewSigner(keys.Private(), e.cfg.Issuer, e.cfg.Audience, time.Hour)
}

func (e *env) as(t testing.TB, s *auth.Signer, p auth.Principal) context.Context {
	t.Helper()
	tok, _, err := s.Issue(p)
	if err != nil {
		t.Fatal(err)
	}
	return auth.WithBearer(context.Background(), tok)
}

func (e *env) setStock(t testing.TB, sku string, onHand int64) *inventoryv1.Stock {
	t.Helper()
	resp, err := e.client.SetStock(e.admin, &inventoryv1.SetStockRequest{Sku: sku, OnHand: onHand})
	if err != nil {
		t.Fatalf("SetStock(%s, %d) = %v", sku, onHand, err)
	}
	return resp.GetStock()
}

func (e *env) stock(t testing.TB, sku string) *inventoryv1.Stock {
	t.Helper()
	resp, err := e.client.GetStock(context.Background(), &inventoryv1.GetStockRequest{Sku: sku})
	if err != nil {
		t.Fatalf("GetStock(%s) = %v", sku, err)
	}
	return resp.GetStock()
}

// wantStock checks a SKU's on_hand, reserved and available.
func (e *env) wantStock(t testing.TB, sku string, onHand, reserved int64) {
	t.Helper()
	got := e.stock(t, sku)
	if got.GetOnHand() != onHand || got.GetReserved() != reserved || got.GetAvailable() != onHand-reserved {
		t.Errorf("GetStock(%s) = on_hand %d reserved %d available %d, want %d %d %d",
			sku, got.GetOnHand(), got.GetReserved(), got.GetAvailable(), onHand, reserved, onHand-reserved)
	}
}

func (e *env) reserve(t testing.TB, orderID string, lines ...*inventoryv1.Line) *inventoryv1.Reservation {
	t.Helper()
	resp, err := e.client.Reserve(e.service, &inventoryv1.ReserveRequest{OrderId: orderID, Lines: lines})
	if err != nil {
		t.Fatalf("Reserve(%s) = %v", orderID, err)
	}
	return resp.GetReservation()
}

func line(sku string, qty int32) *inventoryv1.Line { return &inventoryv1.Line{Sku: sku, Quantity: qty} }

// db opens the service's SQLite file for reading behind its back.
func (e *env) db(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "inventory.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// snapshot is every row of the store, as text, for "nothing changed" checks.
func (e *env) snapshot(t testing.TB) []string {
	t.Helper()
	db := e.db(t)
	var out []string
	for _, q := range []string{
		`SELECT 'stock', sku, on_hand, reserved, update_time FROM stock ORDER BY sku`,
		`SELECT 'reservation', order_id, state, expire_time, update_time FROM reservations ORDER BY order_id`,
		`SELECT 'line', order_id, pos, sku, quantity FROM reservation_lines ORDER BY order_id, pos`,
		`SELECT 'event', seq, id, type, subject FROM outbox ORDER BY seq`,
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a, b, c, d, f any
			if err := rows.Scan(&a, &b, &c, &d, &f); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(a, b, c, d, f))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

func (e *env) wantUnchanged(t testing.TB, before []string) {
	t.Helper()
	if after := e.snapshot(t); !reflect.DeepEqual(after, before) {
		t.Errorf("store changed:\nbefore %q\nafter  %q", before, after)
	}
}

// lowStock returns the recorded low-stock events.
func (e *env) lowStock(t testing.TB) []*eventsv1.LowStock {
	t.Helper()
	rows, err := outbox.All(context.Background(), e.db(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventsv1.LowStock
	for _, r := range rows {
		if r.Type != outbox.TypeLowStock || r.Source != "//shopfn/inventory" {
			t.Errorf("outbox row %+v: want type %s from //shopfn/inventory", r, outbox.TypeLowStock)
			continue
		}
		var ev eventsv1.LowStock
		if err := r.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		if r.OrderingKey != ev.GetSku() || r.Subject != ev.GetSku() {
			t.Errorf("event %s: ordering key %q, subject %q, want the SKU %q", r.ID, r.OrderingKey, r.Subject, ev.GetSku())
		}
		out = append(out, &ev)
	}
	return out
}

// waitUntilPast sleeps until t has passed on this machine's clock (the
// service's clock too): a reservation expiring at t is then expired.
func waitUntilPast(t time.Time) {
	time.Sleep(time.Until(t) + time.Millisecond)
}

func TestPolicyCoversEveryMethod(t *testing.T) {
	if missing := inventory.Policy().Uncovered(&inventoryv1.InventoryService_ServiceDesc); len(missing) > 0 {
		t.Errorf("methods without an access policy: %v", missing)
	}
}

func TestAccess(t *testing.T) {
	e := start(t, nil)
	e.setStock(t, "SKU-1", 10)
	before := e.snapshot(t)
	set := &inventoryv1.SetStockRequest{Sku: "SKU-1", OnHand: 1}
	reserve := &inventoryv1.ReserveRequest{OrderId: "ord_1", Lines: []*inventoryv1.Line{line("SKU-1", 1)}}
	tests := []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
	}{
		{"SetStock anonymous", func() error { _, err := e.client.SetStock(context.Background(), set); return err }, codes.Unauthenticated, "TOKEN_MISSING"},
		{"SetStock customer", func() error { _, err := e.client.SetStock(e.customer, set); return err }, codes.PermissionDenied, "PERMISSION_DENIED"},
		{"SetStock service", func() error { _, err := e.client.SetStock(e.service, set); return err }, codes.PermissionDenied, "PERMISSION_DENIED"},
		{"Reserve admin", func() error { _, err := e.client.Reserve(e.admin, reserve); return err }, codes.PermissionDenied, "PERMISSION_DENIED"},
		{"Reserve customer", func() error { _, err := e.client.Reserve(e.customer, reserve); return err }, codes.PermissionDenied, "PERMISSION_DENIED"},
		{"Commit customer", func() error {
			_, err := e.client.Commit(e.customer, &inventoryv1.CommitRequest{OrderId: "ord_1"})
			return err
		}, codes.PermissionDenied, "PERMISSION_DENIED"},
		{"Release anonymous", func() error {
			_, err := e.client.Release(context.Background(), &inventoryv1.ReleaseRequest{OrderId: "ord_1"})
			return err
		}, codes.Unauthenticated, "TOKEN_MISSING"},
		{"ReleaseExpired admin", func() error {
			_, err := e.client.ReleaseExpired(e.admin, &inventoryv1.ReleaseExpiredRequest{})
			return err
		}, codes.PermissionDenied, "PERMISSION_DENIED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servetest.WantErr(t, tt.call(), tt.code, tt.reason)
		})
	}
	e.wantUnchanged(t, before)
	// GetStock is public: anyone, with or without a token.
	for _, ctx := range []context.Context{context.Background(), e.customer} {
		if _, err := e.client.GetStock(ctx, &inventoryv1.GetStockRequest{Sku: "SKU-1"}); err != nil {
			t.Errorf("GetStock = %v", err)
		}
	}
}

func TestSetAndGetStock(t *testing.T) {
	e := start(t, nil)
	got := e.setStock(t, "SKU-1", 10)
	if got.GetSku() != "SKU-1" || got.GetOnHand() != 10 || got.GetReserved() != 0 || got.GetAvailable() != 10 || got.GetUpdateTime() == nil {
		t.Fatalf("SetStock(SKU-1, 10) = %v", got)
	}
	if read := e.stock(t, "SKU-1"); !proto.Equal(read, got) {
		t.Errorf("GetStock(SKU-1) = %v, want %v", read, got)
	}
	// Idempotent: the same value again changes nothing, not even the time.
	before := e.snapshot(t)
	if again := e.setStock(t, "SKU-1", 10); !proto.Equal(again, got) {
		t.Errorf("SetStock(SKU-1, 10) again = %v, want %v", again, got)
	}
	e.wantUnchanged(t, before)
	e.setStock(t, "SKU-1", 0)
	e.wantStock(t, "SKU-1", 0, 0)
	// SKUs are case-sensitive.
	_, err := e.client.GetStock(context.Background(), &inventoryv1.GetStockRequest{Sku: "sku-1"})
	servetest.WantErr(t, err, codes.NotFound, "SKU_NOT_FOUND")
	if md := apperr.Metadata(err); md["sku"] != "sku-1" {
		t.Errorf("GetStock(unknown) metadata = %v, want sku", md)
	}
}

func TestSetStockBelowReserved(t *testing.T) {
	e := start(t, nil)
	e.setStock(t, "SKU-1", 10)
	e.reserve(t, "ord_1", line("SKU-1", 6))
	before := e.snapshot(t)
	_, err := e.client.SetStock(e.admin, &inventoryv1.SetStockRequest{Sku: "SKU-1", OnHand: 5})
	servetest.WantErr(t, err, codes.FailedPrecondition, "STOCK_BELOW_RESERVED")
	if md := apperr.Metadata(err); md["sku"] != "SKU-1" || md["reserved"] != "6" {
		t.Errorf("SetStock(below reserved) metadata = %v, want sku and reserved", md)
	}
	e.wantUnchanged(t, before)
	e.setStock(t, "SKU-1", 6) // exactly the reserved units is fine
	e.wantStock(t, "SKU-1", 6, 6)
}

func TestBadRequests(t *testing.T) {
	e := start(t, nil)
	e.setStock(t, "SKU-1", 10)
	e.reserve(t, "ord_held", line("SKU-1", 2))
	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"SetStock negative", func() error {
			_, err := e.client.SetStock(e.admin, &inventoryv1.SetStockRequest{Sku: "SKU-1", OnHand: -1})
			return err
		}, "on_hand"},
		{"SetStock too many", func() error {
			_, err := e.client.SetStock(e.admin, &inventoryv1.SetStockRequest{Sku: "SKU-1", OnHand: 1_000_000_001})
			return err
		}, "on_hand"},
		{"SetStock bad SKU", func() error {
			_, err := e.client.SetStock(e.admin, &inventoryv1.SetStockRequest{Sku: "SKU 1", OnHand: 1})
			return err
		}, "sku"},
		{"SetStock empty SKU", func() error {
			_, err := e.client.SetStock(e.admin, &inventoryv1.SetStockRequest{OnHand: 1})
			return err
		}, "sku"},
		{"GetStock bad SKU", func() error {
			_, err := e.client.GetStock(context.Background(), &inventoryv1.GetStockRequest{Sku: "../etc"})
			return err
		}, "sku"},
		{"Reserve no order", func() error {
			_, err := e.client.Reserve(e.service, &inventoryv1.ReserveRequest{Lines: []*inventoryv1.Line{line("SKU-1", 1)}})
			return err
		}, "order_id"},
		{"Reserve no lines", func() error {
			_, err := e.client.Reserve(e.service, &inventoryv1.ReserveRequest{OrderId: "ord_1"})
			return err
		}, "lines"},
		{"Reserve zero quantity", func() error {
			_, err := e.client.Reserve(e.service, &inventoryv1.ReserveRequest{OrderId: "ord_1", Lines: []*inventoryv1.Line{line("SKU-1", 0)}})
			return err
		}, "lines[0].quantity"},
		{"Reserve negative quantity", func() error {
			_, err := e.client.Reserve(e.service, &inventoryv1.ReserveRequest{OrderId: "ord_1", Lines: []*inventoryv1.Line{line("SKU-1", -3)}})
			return err
		}, "lines[0].quantity"},
		{"Reserve quantity above 1000", func() error {
			_, err := e.client.Reserve(e.service, &inventoryv1.ReserveRequest{OrderId: "ord_1", Lines: []*inventoryv1.Line{line("SKU-1", 1001)}})
			return err
		}, "lines[0].quantity"},
		{"Reserve bad SKU", func() error {
			_, err := e.client.Reserve(e.service, &inventoryv1.ReserveRequest{OrderId: "ord_1", Lines: []*inventoryv1.Line{line("SKU-1", 1), line("", 1)}})
			return err
		}, "lines[1].sku"},
		{"Reserve duplicate SKU", func() error {
			_, err := e.client.Reserve(e.service, &inventoryv1.ReserveRequest{OrderId: "ord_1", Lines: []*inventoryv1.Line{line("SKU-1", 1), line("SKU-1", 1)}})
			return err
		}, "lines[1].sku"},
		{"Reserve duplicate SKU on a held order", func() error {
			_, err := e.client.Reserve(e.service, &inventoryv1.ReserveRequest{OrderId: "ord_held", Lines: []*inventoryv1.Line{line("SKU-1", 1), line("SKU-1", 1)}})
			return err
		}, "lines[1].sku"},
		{"Commit no order", func() error {
			_, err := e.client.Commit(e.service, &inventoryv1.CommitRequest{})
			return err
		}, "order_id"},
		{"Release order id too long", func() error {
			_, err := e.client.Release(e.service, &inventoryv1.ReleaseRequest{OrderId: strings.Repeat("x", 65)})
			return err
		}, "order_id"},
		{"ReleaseExpired limit too high", func() error {
			_, err := e.client.ReleaseExpired(e.service, &inventoryv1.ReleaseExpiredRequest{Limit: 10001})
			return err
		}, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.snapshot(t)
			err := tt.call()
			servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
			if v := apperr.FieldViolations(err); len(v) == 0 || v[0].Field != tt.field {
				t.Errorf("violations = %v, want %s", v, tt.field)
			}
			e.wantUnchanged(t, before)
		})
	}
	e.wantStock(t, "SKU-1", 10, 2)
}

func TestReserveFailuresChangeNothing(t *testing.T) {
	e := start(t, nil)
	e.setStock(t, "SKU-1", 10)
	e.setStock(t, "SKU-2", 3)
	e.reserve(t, "ord_held", line("SKU-1", 4))
	tests := []struct {
		name   string
		req    *inventoryv1.ReserveRequest
		code   codes.Code
		reason string
		md     map[string]string
	}{
		{"unknown SKU after a good line",
			&inventoryv1.ReserveRequest{OrderId: "ord_1", Lines: []*inventoryv1.Line{line("SKU-1", 1), line("SKU-9", 1)}},
			codes.NotFound, "SKU_NOT_FOUND", map[string]string{"sku": "SKU-9"}},
		{"second line short",
			&inventoryv1.ReserveRequest{OrderId: "ord_1", Lines: []*inventoryv1.Line{line("SKU-1", 6), line("SKU-2", 4)}},
			codes.FailedPrecondition, "INSUFFICIENT_STOCK", map[string]string{"sku": "SKU-2", "requested": "4", "available": "3"}},
		{"first line short by one",
			&inventoryv1.ReserveRequest{OrderId: "ord_1", Lines: []*inventoryv1.Line{line("SKU-1", 7), line("SKU-2", 1)}},
			codes.FailedPrecondition, "INSUFFICIENT_STOCK", map[string]string{"sku": "SKU-1", "requested": "7", "available": "6"}},
		{"held order with other lines",
			&inventoryv1.ReserveRequest{OrderId: "ord_held", Lines: []*inventoryv1.Line{line("SKU-1", 5)}},
			codes.AlreadyExists, "RESERVATION_MISMATCH", map[string]string{"order_id": "ord_held"}},
		{"held order with an extra line",
			&inventoryv1.ReserveRequest{OrderId: "ord_held", Lines: []*inventoryv1.Line{line("SKU-1", 4), line("SKU-2", 1)}},
			codes.AlreadyExists, "RESERVATION_MISMATCH", map[string]string{"order_id": "ord_held"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.snapshot(t)
			_, err := e.client.Reserve(e.service, tt.req)
			servetest.WantErr(t, err, tt.code, tt.reason)
			if md := apperr.Metadata(err); !reflect.DeepEqual(md, tt.md) {
				t.Errorf("Reserve(%v) metadata = %v, want %v", tt.req, md, tt.md)
			}
			e.wantUnchanged(t, before)
		})
	}
	e.wantStock(t, "SKU-1", 10, 4)
	e.wantStock(t, "SKU-2", 3, 0)
	// The failed order id is still free.
	e.reserve(t, "ord_1", line("SKU-1", 6), line("SKU-2", 3))
	e.wantStock(t, "SKU-1", 10, 10)
	e.wantStock(t, "SKU-2", 3, 3)
}

func TestReserveIsIdempotent(t *testing.T) {
	e := start(t, nil)
	e.setStock(t, "SKU-1", 10)
	e.setStock(t, "SKU-2", 10)
	first := e.reserve(t, "ord_1", line("SKU-1", 2), line("SKU-2", 3))
	if first.GetState() != inventoryv1.ReservationState_RESERVATION_STATE_RESERVED || len(first.GetLines()) != 2 ||
		!first.GetExpireTime().AsTime().Equal(first.GetCreateTime().AsTime().Add(15*time.Minute)) {
		t.Fatalf("Reserve = %v, want RESERVED for 15m with 2 lines", first)
	}
	before := e.snapshot(t)
	for _, lines := range [][]*inventoryv1.Line{
		{line("SKU-1", 2), line("SKU-2", 3)},
		{line("SKU-2", 3), line("SKU-1", 2)}, // the same lines in another order
	} {
		again := e.reserve(t, "ord_1", lines...)
		if !proto.Equal(again, first) {
			t.Errorf("Reserve retry = %v, want %v", again, first)
		}
	}
	e.wantUnchanged(t, before)
	e.wantStock(t, "SKU-1", 10, 2)

	// After a release, a late retry returns the released reservation and
	// holds nothing again.
	if _, err := e.client.Release(e.service, &inventoryv1.ReleaseRequest{OrderId: "ord_1"}); err != nil {
		t.Fatal(err)
	}
	late := e.reserve(t, "ord_1", line("SKU-1", 2), line("SKU-2", 3))
	if late.GetState() != inventoryv1.ReservationState_RESERVATION_STATE_RELEASED {
		t.Errorf("Reserve after Release = %v, want the RELEASED reservation", late)
	}
	e.wantStock(t, "SKU-1", 10, 0)
}

func TestCommitAndRelease(t *testing.T) {
	e := start(t, nil)
	e.setStock(t, "SKU-1", 10)
	e.setStock(t, "SKU-2", 5)
	e.reserve(t, "ord_1", line("SKU-1", 2), line("SKU-2", 1))
	e.reserve(t, "ord_2", line("SKU-1", 3))

	// Commit sells: on_hand and reserved both drop; twice is once.
	for range 2 {
		resp, err := e.client.Commit(e.service, &inventoryv1.CommitRequest{OrderId: "ord_1"})
		if err != nil || resp.GetReservation().GetState() != inventoryv1.ReservationState_RESERVATION_STATE_COMMITTED {
			t.Fatalf("Commit(ord_1) = %v, %v; want COMMITTED", resp, err)
		}
		e.wantStock(t, "SKU-1", 8, 3)
		e.wantStock(t, "SKU-2", 4, 0)
	}

	// Release of a held reservation gives its units back; twice is once.
	for range 2 {
		resp, err := e.client.Release(e.service, &inventoryv1.ReleaseRequest{OrderId: "ord_2"})
		if err != nil || resp.GetReservation().GetState() != inventoryv1.ReservationState_RESERVATION_STATE_RELEASED {
			t.Fatalf("Release(ord_2) = %v, %v; want RELEASED", resp, err)
		}
		e.wantStock(t, "SKU-1", 8, 0)
	}
	// Nothing is left to commit.
	before := e.snapshot(t)
	_, err := e.client.Commit(e.service, &inventoryv1.CommitRequest{OrderId: "ord_2"})
	servetest.WantErr(t, err, codes.FailedPrecondition, "RESERVATION_RELEASED")
	if md := apperr.Metadata(err); md["order_id"] != "ord_2" {
		t.Errorf("Commit(released) metadata = %v, want the order", md)
	}
	e.wantUnchanged(t, before)

	// Release after Commit restocks (the compensation of a sale); twice is
	// once.
	for range 2 {
		resp, err := e.client.Release(e.service, &inventoryv1.ReleaseRequest{OrderId: "ord_1"})
		if err != nil || resp.GetReservation().GetState() != inventoryv1.ReservationState_RESERVATION_STATE_RELEASED {
			t.Fatalf("Release(ord_1 committed) = %v, %v; want RELEASED", resp, err)
		}
		e.wantStock(t, "SKU-1", 10, 0)
		e.wantStock(t, "SKU-2", 5, 0)
	}
}

func TestUnknownOrders(t *testing.T) {
	e := start(t, nil)
	e.setStock(t, "SKU-1", 10)
	e.reserve(t, "ord_1", line("SKU-1", 1))
	before := e.snapshot(t)

	_, err := e.client.Commit(e.service, &inventoryv1.CommitRequest{OrderId: "ord_unknown"})
	servetest.WantErr(t, err, codes.NotFound, "RESERVATION_NOT_FOUND")
	e.wantUnchanged(t, before)

	// Release of an order that never reserved succeeds with no reservation,
	// so compensation can call it blindly, and holds nothing; it records
	// the release, so that a Reserve delayed behind it reserves nothing.
	for range 2 {
		resp, err := e.client.Release(e.service, &inventoryv1.ReleaseRequest{OrderId: "ord_unknown"})
		if err != nil || resp.GetReservation() != nil {
			t.Fatalf("Release(unknown) = %v, %v; want success with no reservation", resp, err)
		}
	}
	e.wantStock(t, "SKU-1", 10, 1)
	afterRelease := e.snapshot(t)
	_, err = e.client.Reserve(e.service, &inventoryv1.ReserveRequest{OrderId: "ord_unknown", Lines: []*inventoryv1.Line{line("SKU-1", 2)}})
	servetest.WantErr(t, err, codes.FailedPrecondition, "RESERVATION_RELEASED")
	if md := apperr.Metadata(err); md["order_id"] != "ord_unknown" {
		t.Errorf("Reserve(released) metadata = %v, want the order", md)
	}
	_, err = e.client.Commit(e.service, &inventoryv1.CommitRequest{OrderId: "ord_unknown"})
	servetest.WantErr(t, err, codes.FailedPrecondition, "RESERVATION_RELEASED")
	e.wantUnchanged(t, afterRelease)
	e.wantStock(t, "SKU-1", 10, 1)
}

func TestExpiry(t *testing.T) {
	e := start(t, func(c *inventory.Config) { c.ReservationTTL = 50 * time.Millisecond })
	e.setStock(t, "SKU-1", 10)

	// Commit after expire_time fails even though no sweep ran, and gives
	// the units back.
	r := e.reserve(t, "ord_commit", line("SKU-1", 2))
	waitUntilPast(r.GetExpireTime().AsTime())
	for range 2 {
		_, err := e.client.Commit(e.service, &inventoryv1.CommitRequest{OrderId: "ord_commit"})
		servetest.WantErr(t, err, codes.FailedPrecondition, "RESERVATION_EXPIRED")
		e.wantStock(t, "SKU-1", 10, 0)
	}
	rel, err := e.client.Release(e.service, &inventoryv1.ReleaseRequest{OrderId: "ord_commit"})
	if err != nil || rel.GetReservation().GetState() != inventoryv1.ReservationState_RESERVATION_STATE_EXPIRED {
		t.Fatalf("Release(expired) = %v, %v; want EXPIRED unchanged", rel, err)
	}

	// The sweep releases what expired, once.
	r1 := e.reserve(t, "ord_a", line("SKU-1", 3))
	r2 := e.reserve(t, "ord_b", line("SKU-1", 4))
	e.wantStock(t, "SKU-1", 10, 7)
	waitUntilPast(r2.GetExpireTime().AsTime())
	if r1.GetExpireTime().AsTime().After(r2.GetExpireTime().AsTime()) {
		t.Fatalf("reservations out of order: %v %v", r1, r2)
	}
	got, err := e.client.ReleaseExpired(e.service, &inventoryv1.ReleaseExpiredRequest{Limit: 1})
	if err != nil || got.GetReleased() != 1 {
		t.Fatalf("ReleaseExpired(limit 1) = %v, %v; want 1", got, err)
	}
	e.wantStock(t, "SKU-1", 10, 4) // the earliest, ord_a, went first
	got, err = e.client.ReleaseExpired(e.service, &inventoryv1.ReleaseExpiredRequest{})
	if err != nil || got.GetReleased() != 1 {
		t.Fatalf("ReleaseExpired = %v, %v; want 1", got, err)
	}
	e.wantStock(t, "SKU-1", 10, 0)
	before := e.snapshot(t)
	got, err = e.client.ReleaseExpired(e.service, &inventoryv1.ReleaseExpiredRequest{})
	if err != nil || got.GetReleased() != 0 {
		t.Fatalf("ReleaseExpired again = %v, %v; want 0", got, err)
	}
	e.wantUnchanged(t, before)
	for _, r := range []*inventoryv1.Reservation{r1, r2} {
		_, err := e.client.Commit(e.service, &inventoryv1.CommitRequest{OrderId: r.GetOrderId()})
		servetest.WantErr(t, err, codes.FailedPrecondition, "RESERVATION_EXPIRED")
		// A retry of the Reserve sees the expired reservation; it holds nothing.
		if again := e.reserve(t, r.GetOrderId(), r.GetLines()...); again.GetState() != inventoryv1.ReservationState_RESERVATION_STATE_EXPIRED {
			t.Errorf("Reserve retry of an expired reservation = %v, want EXPIRED", again)
		}
	}
	e.wantStock(t, "SKU-1", 10, 0)
}

func TestExpiredUnitsDoNotBlock(t *testing.T) {
	e := start(t, func(c *inventory.Config) { c.ReservationTTL = 50 * time.Millisecond })
	e.setStock(t, "SKU-1", 3)
	e.setStock(t, "SKU-2", 3)
	r := e.reserve(t, "ord_old", line("SKU-1", 3), line("SKU-2", 1))
	waitUntilPast(r.GetExpireTime().AsTime())
	e.wantStock(t, "SKU-1", 3, 3) // no sweep has run

	// A Reserve that needs the units releases the expired holders first.
	e.reserve(t, "ord_new", line("SKU-1", 2))
	e.wantStock(t, "SKU-1", 3, 2)
	e.wantStock(t, "SKU-2", 3, 0)
	rel, err := e.client.Release(e.service, &inventoryv1.ReleaseRequest{OrderId: "ord_old"})
	if err != nil || rel.GetReservation().GetState() != inventoryv1.ReservationState_RESERVATION_STATE_EXPIRED {
		t.Errorf("Release(ord_old) = %v, %v; want EXPIRED", rel, err)
	}

	// So does a SetStock below the held units.
	r = e.reserve(t, "ord_old2", line("SKU-2", 3))
	waitUntilPast(r.GetExpireTime().AsTime())
	e.setStock(t, "SKU-2", 1)
	e.wantStock(t, "SKU-2", 1, 0)

	// A Reserve that still falls short keeps the releases it made and
	// reserves nothing.
	r = e.reserve(t, "ord_old3", line("SKU-2", 1))
	waitUntilPast(r.GetExpireTime().AsTime())
	_, err = e.client.Reserve(e.service, &inventoryv1.ReserveRequest{OrderId: "ord_big", Lines: []*inventoryv1.Line{line("SKU-2", 2)}})
	servetest.WantErr(t, err, codes.FailedPrecondition, "INSUFFICIENT_STOCK")
	e.wantStock(t, "SKU-2", 1, 0)
	_, err = e.client.Commit(e.service, &inventoryv1.CommitRequest{OrderId: "ord_big"})
	servetest.WantErr(t, err, codes.NotFound, "RESERVATION_NOT_FOUND")
}

func TestLowStockEvents(t *testing.T) {
	e := start(t, nil) // threshold 5
	want := func(events ...int64) {
		t.Helper()
		got := e.lowStock(t)
		var avail []int64
		for _, ev := range got {
			if ev.GetSku() != "SKU-1" || ev.GetThreshold() != 5 {
				t.Errorf("event %v, want SKU-1 with threshold 5", ev)
			}
			avail = append(avail, ev.GetAvailable())
		}
		if !reflect.DeepEqual(avail, events) {
			t.Errorf("low-stock events with available %v, want %v", avail, events)
		}
	}
	e.setStock(t, "SKU-1", 10) // a new SKU above the threshold
	want()
	e.reserve(t, "ord_1", line("SKU-1", 4)) // 6 left: still above
	want()
	e.reserve(t, "ord_2", line("SKU-1", 1)) // 5 left: crossed
	want(5)
	e.reserve(t, "ord_3", line("SKU-1", 2)) // 3: already below
	want(5)
	_, err := e.client.Reserve(e.service, &inventoryv1.ReserveRequest{OrderId: "ord_x", Lines: []*inventoryv1.Line{line("SKU-1", 4)}})
	servetest.WantErr(t, err, codes.FailedPrecondition, "INSUFFICIENT_STOCK") // a failure records nothing
	e.setStock(t, "SKU-1", 8)                                                 // 1: below, lower still
	want(5)
	for _, id := range []string{"ord_1", "ord_2", "ord_3"} {
		if _, err := e.client.Release(e.service, &inventoryv1.ReleaseRequest{OrderId: id}); err != nil {
			t.Fatal(err)
		}
	}
	// 8 available: above again. Commit leaves available alone.
	want(5)
	e.reserve(t, "ord_4", line("SKU-1", 3)) // 5: crossed again
	want(5, 5)
	if _, err := e.client.Commit(e.service, &inventoryv1.CommitRequest{OrderId: "ord_4"}); err != nil {
		t.Fatal(err)
	}
	want(5, 5)
	e.setStock(t, "SKU-1", 20) // 20
	e.setStock(t, "SKU-1", 2)  // 2: crossed by SetStock
	want(5, 5, 2)
	e.setStock(t, "SKU-1", 0)
	want(5, 5, 2)
	// A SKU created at or below the threshold was never above it.
	e.setStock(t, "SKU-NEW", 1)
	want(5, 5, 2)
}

func TestLowStockThresholdConfig(t *testing.T) {
	e := start(t, func(c *inventory.Config) { c.LowStockThreshold = -1 })
	e.setStock(t, "SKU-1", 3)
	e.reserve(t, "ord_1", line("SKU-1", 3))
	if got := e.lowStock(t); len(got) != 0 {
		t.Errorf("events with a negative threshold: %v, want none", got)
	}
	e = start(t, func(c *inventory.Config) { c.LowStockThreshold = 0 })
	e.setStock(t, "SKU-1", 3)
	e.reserve(t, "ord_1", line("SKU-1", 2))
	e.reserve(t, "ord_2", line("SKU-1", 1))
	if got := e.lowStock(t); len(got) != 1 || got[0].GetAvailable() != 0 || got[0].GetThreshold() != 0 {
		t.Errorf("events with threshold 0: %v, want one at 0", got)
	}
}

func TestNeverOversell(t *testing.T) {
	e := start(t, nil)
	e.setStock(t, "SKU-1", 10)
	const callers = 60
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.client.Reserve(e.service, &inventoryv1.ReserveRequest{
				OrderId: fmt.Sprintf("ord_%d", i), Lines: []*inventoryv1.Line{line("SKU-1", 1)},
			})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case status.Code(err) == codes.FailedPrecondition && apperr.Reason(err) == "INSUFFICIENT_STOCK":
		default:
			t.Errorf("concurrent Reserve = %v (reason %q), want OK or FailedPrecondition/INSUFFICIENT_STOCK", err, apperr.Reason(err))
		}
	}
	if ok != 10 {
		t.Errorf("%d of %d concurrent Reserves succeeded, want 10", ok, callers)
	}
	e.wantStock(t, "SKU-1", 10, 10)
	if got := e.lowStock(t); len(got) != 1 || got[0].GetAvailable() != 5 {
		t.Errorf("low-stock events %v, want exactly one at 5", got)
	}
}

func TestConcurrentRetriesReserveOnce(t *testing.T) {
	e := start(t, nil)
	e.setStock(t, "SKU-1", 100)
	e.setStock(t, "SKU-2", 100)
	const callers = 30
	var wg sync.WaitGroup
	got := make([]*inventoryv1.Reservation, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.client.Reserve(e.service, &inventoryv1.ReserveRequest{
				OrderId: "ord_1", Lines: []*inventoryv1.Line{line("SKU-1", 3), line("SKU-2", 7)},
			})
			got[i], errs[i] = resp.GetReservation(), err
		}()
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || !proto.Equal(got[i], got[0]) {
			t.Errorf("Reserve retry %d = %v, %v; want %v", i, got[i], errs[i], got[0])
		}
	}
	e.wantStock(t, "SKU-1", 100, 3)
	e.wantStock(t, "SKU-2", 100, 7)
}

func TestCommitReleaseRace(t *testing.T) {
	e := start(t, nil)
	e.setStock(t, "SKU-1", 100)
	const orders = 20
	for i := range orders {
		e.reserve(t, fmt.Sprintf("ord_%d", i), line("SKU-1", 2))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range orders {
		id := fmt.Sprintf("ord_%d", i)
		for range 2 { // two of each: retries race too
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, err := e.client.Commit(e.service, &inventoryv1.CommitRequest{OrderId: id})
				// Commit wins, or finds the units already released.
				if err != nil && (status.Code(err) != codes.FailedPrecondition || apperr.Reason(err) != "RESERVATION_RELEASED") {
					mu.Lock()
					t.Errorf("Commit(%s) = %v, want OK or FailedPrecondition/RESERVATION_RELEASED", id, err)
					mu.Unlock()
				}
			}()
			go func() {
				defer wg.Done()
				if _, err := e.client.Release(e.service, &inventoryv1.ReleaseRequest{OrderId: id}); err != nil {
					mu.Lock()
					t.Errorf("Release(%s) = %v", id, err)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	// Whatever the order, every reservation ended RELEASED (a Release after
	// a Commit restocks), and stock is whole again.
	var states []string
	rows, err := e.db(t).Query(`SELECT DISTINCT state FROM reservations`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		states = append(states, s)
	}
	rows.Close()
	if !reflect.DeepEqual(states, []string{"released"}) {
		t.Errorf("states after the race = %v, want [released]", states)
	}
	e.wantStock(t, "SKU-1", 100, 0)
}

func TestExpiredDeadlineDoesNothing(t *testing.T) {
	e := start(t, nil)
	e.setStock(t, "SKU-1", 10)
	before := e.snapshot(t)
	ctx, cancel := context.WithDeadline(e.service, time.Now().Add(-time.Second))
	defer cancel()
	_, err := e.client.Reserve(ctx, &inventoryv1.ReserveRequest{OrderId: "ord_1", Lines: []*inventoryv1.Line{line("SKU-1", 1)}})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Reserve(expired deadline) = %v, want DeadlineExceeded", err)
	}
	e.wantUnchanged(t, before)
	_, err = e.client.Commit(e.service, &inventoryv1.CommitRequest{OrderId: "ord_1"})
	servetest.WantErr(t, err, codes.NotFound, "RESERVATION_NOT_FOUND")
}

func TestSweep(t *testing.T) {
	e := start(t, func(c *inventory.Config) { c.ReservationTTL = 50 * time.Millisecond })
	e.setStock(t, "SKU-1", 10)
	r := e.reserve(t, "ord_1", line("SKU-1", 4))
	waitUntilPast(r.GetExpireTime().AsTime())

	cc, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.NewServiceCredentials(e.signer(t), infra.Scheduler)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		inventory.Sweep(ctx, inventoryv1.NewInventoryServiceClient(cc), 10*time.Millisecond, slog.New(slog.DiscardHandler))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for e.stock(t, "SKU-1").GetReserved() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Sweep did not release the expired reservation")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done // Sweep returns when its context ends
	_, err = e.client.Commit(e.service, &inventoryv1.CommitRequest{OrderId: "ord_1"})
	servetest.WantErr(t, err, codes.FailedPrecondition, "RESERVATION_EXPIRED")
}

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e := start(t, func(c *inventory.Config) { c.DataDir = dir })
	e.setStock(t, "SKU-1", 10)
	e.reserve(t, "ord_1", line("SKU-1", 2))
	e2 := start(t, func(c *inventory.Config) { c.DataDir = dir })
	e2.wantStock(t, "SKU-1", 10, 2)
	if _, err := e2.client.Commit(e2.service, &inventoryv1.CommitRequest{OrderId: "ord_1"}); err != nil {
		t.Errorf("Commit after restart = %v", err)
	}
}

func TestRefusesBadConfig(t *testing.T) {
	var cfg inventory.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.ReservationTTL = 0
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	if err := inventory.Run(context.Background(), cfg, slog.New(slog.DiscardHandler), lis); err == nil {
		t.Error("Run with a zero reservation TTL = nil, want an error")
	}
}

func TestStopsWhenTheStoreCannotOpen(t *testing.T) {
	var cfg inventory.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Database = servetest.UnopenablePath(t, "inventory.db")
	servetest.ExpectRunFails(t, func(ctx context.Context, lis net.Listener) error {
		return inventory.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis)
	})
}

// TestInternalMethodsAnswerOnlyTheirCallers: infra/stack.yaml lets order
// and the scheduler reserve stock; another service's token is refused
// and nothing is reserved.
func TestInternalMethodsAnswerOnlyTheirCallers(t *testing.T) {
	e := start(t, nil)
	if _, err := e.client.SetStock(e.admin, &inventoryv1.SetStockRequest{Sku: "mug", OnHand: 5}); err != nil {
		t.Fatal(err)
	}
	signer := e.signer(t)
	lines := []*inventoryv1.Line{{Sku: "mug", Quantity: 1}}
	for _, caller := range []string{"imaging", "invoicing", "shopfn-cli"} {
		ctx := e.as(t, signer, auth.Principal{Subject: caller, Role: auth.RoleService})
		_, err := e.client.Reserve(ctx, &inventoryv1.ReserveRequest{OrderId: "ord_" + strings.ReplaceAll(caller, "-", ""), Lines: lines})
		servetest.WantErr(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	}
	got, err := e.client.GetStock(e.admin, &inventoryv1.GetStockRequest{Sku: "mug"})
	if err != nil || got.GetStock().GetReserved() != 0 {
		t.Errorf("GetStock after refused reserves = %v, %v; want nothing reserved", got, err)
	}
	if _, err := e.client.Reserve(e.service, &inventoryv1.ReserveRequest{OrderId: "ord_ok", Lines: lines}); err != nil {
		t.Errorf("Reserve as order = %v", err)
	}
}
