package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/catalog"
	"github.com/shopfn/shopfn/functions/gateway"
	"github.com/shopfn/shopfn/functions/inventory"
	"github.com/shopfn/shopfn/functions/order"
	"github.com/shopfn/shopfn/functions/payment"
	"github.com/shopfn/shopfn/functions/support"
	"github.com/shopfn/shopfn/functions/user"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/servetest"
)

const (
	adminEmail = "admin@shopfn.local"
	password   = "correct horse battery"
	// allowedOrigin is the one browser origin the test gateway allows.
	allowedOrigin = "https://shop.example.com"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// system is the real user, catalog, inventory, payment, order and support
// services on loopback, sharing one data directory (and so one dev key),
// with the gateway in front.
type system struct {
	dir   string
	addrs map[string]string
	gwCfg gateway.Config
	url   string // the gateway's base URL
	// signer mints tokens with the system's key, for direct gRPC checks.
	signer *auth.Signer
}

func load(t testing.TB, spec any) {
	t.Helper()
	if err := config.Load(spec); err != nil {
		t.Fatal(err)
	}
}

func startSystem(t testing.TB) *system {
	t.Helper()
	s := &system{dir: t.TempDir(), addrs: map[string]string{}}
	serve := func(name string, run func(context.Context, net.Listener) error) {
		s.addrs[name], _ = servetest.Serve(t, run)
	}
	var uc user.Config
	load(t, &uc)
	uc.DataDir, uc.AdminEmails = s.dir, []string{adminEmail}
	serve("user", func(ctx context.Context, l net.Listener) error { return user.Run(ctx, uc, quiet(), l) })
	var cc catalog.Config
	load(t, &cc)
	cc.DataDir = s.dir
	serve("catalog", func(ctx context.Context, l net.Listener) error { return catalog.Run(ctx, cc, quiet(), l) })
	var ic inventory.Config
	load(t, &ic)
	ic.DataDir = s.dir
	serve("inventory", func(ctx context.Context, l net.Listener) error { return inventory.Run(ctx, ic, quiet(), l) })
	var pc payment.Config
	load(t, &pc)
	pc.DataDir = s.dir
	serve("payment", func(ctx context.Context, l net.Listener) error { return payment.Run(ctx, pc, quiet(), l) })
	var oc order.Config
	load(t, &oc)
	oc.DataDir = s.dir
	oc.CatalogAddr, oc.InventoryAddr, oc.PaymentAddr = s.addrs["catalog"], s.addrs["inventory"], s.addrs["payment"]
	serve("order", func(ctx context.Context, l net.Listener) error { return order.Run(ctx, oc, quiet(), l) })
	var sc support.Config
	load(t, &sc)
	sc.DataDir = s.dir
	sc.OrderAddr, sc.UserAddr = s.addrs["order"], s.addrs["user"]
	serve("support", func(ctx context.Context, l net.Listener) error { return support.Run(ctx, sc, quiet(), l) })

	s.gwCfg = s.gatewayConfig(t)
	s.url = startGateway(t, s.gwCfg)

	keys, err := auth.LoadKeys(auth.Config{DevKey: true}, s.dir)
	if err != nil {
		t.Fatal(err)
	}
	s.signer = auth.NewSigner(keys.Private(), uc.Issuer, uc.Audience, time.Hour)
	return s
}

// gatewayConfig is the gateway's configuration for this system.
func (s *system) gatewayConfig(t testing.TB) gateway.Config {
	var cfg gateway.Config
	load(t, &cfg)
	cfg.DataDir = s.dir
	cfg.UserAddr, cfg.CatalogAddr, cfg.InventoryAddr = s.addrs["user"], s.addrs["catalog"], s.addrs["inventory"]
	cfg.PaymentAddr, cfg.OrderAddr, cfg.SupportAddr = s.addrs["payment"], s.addrs["order"], s.addrs["support"]
	cfg.CORSOrigins = []string{allowedOrigin}
	return cfg
}

// startGateway runs a gateway with cfg until the test ends and returns its
// base URL.
func startGateway(t testing.TB, cfg gateway.Config) string {
	t.Helper()
	addr, _ := servetest.Serve(t, func(ctx context.Context, l net.Listener) error { return gateway.Run(ctx, cfg, quiet(), l) })
	return "http://" + addr
}

// reply is one HTTP response, its body decoded when it is JSON.
type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// rpcStatus is google.rpc.Status as JSON.
type rpcStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type     string            `json:"@type"`
		Reason   string            `json:"reason"`
		Domain   string            `json:"domain"`
		Metadata map[string]string `json:"metadata"`
	} `json:"details"`
}

func (r reply) status_() rpcStatus {
	var st rpcStatus
	json.Unmarshal(r.raw, &st)
	return st
}

// reason is the ErrorInfo reason of an error reply.
func (r reply) reason() string {
	for _, d := range r.status_().Details {
		if d.Type == "type.googleapis.com/google.rpc.ErrorInfo" && d.Domain == "shopfn" {
			return d.Reason
		}
	}
	return ""
}

// get walks a decoded JSON body: get("order", "state").
func (r reply) get(path ...string) any {
	var v any = r.body
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func (r reply) str(path ...string) string {
	s, _ := r.get(path...).(string)
	return s
}

// do sends one request to the gateway. body is sent as is; headers are
// name, value pairs.
func do(t testing.TB, method, url, token, body string, headers ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return send(t, req)
}

func send(t testing.TB, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	json.Unmarshal(raw, &r.body)
	return r
}

// ok fails the test unless r is a 200.
func ok(t testing.TB, what string, r reply) reply {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s = %d %s, want 200", what, r.status, r.raw)
	}
	return r
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// account registers email over HTTP and logs in; it returns the user id
// and the access token.
func (s *system) account(t testing.TB, email, name string) (id, token string) {
	t.Helper()
	r := ok(t, "POST /v1/users", do(t, "POST", s.url+"/v1/users", "", jsonOf(map[string]any{
		"email": email, "password": password, "display_name": name,
	})))
	id = r.str("user", "id")
	r = ok(t, "POST /v1/users:login", do(t, "POST", s.url+"/v1/users:login", "", jsonOf(map[string]any{
		"email": email, "password": password,
	})))
	return id, r.str("access_token")
}

// product creates an active product with stock over HTTP as admin and
// returns its id.
func (s *system) product(t testing.TB, admin, sku string, price, stock int) string {
	t.Helper()
	r := ok(t, "POST /v1/products", do(t, "POST", s.url+"/v1/products", admin, jsonOf(map[string]any{
		"sku": sku, "name": "Shopfn mug " + sku, "category": "kitchen", "active": true,
		"price": map[string]any{"currency_code": "EUR", "amount_minor": price},
	})))
	ok(t, "PUT /v1/stock/"+sku, do(t, "PUT", s.url+"/v1/stock/"+sku, admin, jsonOf(map[string]any{"on_hand": stock})))
	return r.str("product", "id")
}

func address() map[string]any {
	return map[string]any{"name": "Ann", "line1": "1 Main St", "city": "Paris", "country_code": "FR"}
}

func orderBody(key, productID string, qty int, token string) string {
	return jsonOf(map[string]any{
		"idempotency_key":  key,
		"lines":            []any{map[string]any{"product_id": productID, "quantity": qty}},
		"shipping_address": address(),
		"payment_token":    token,
	})
}

func TestOrderFlowOverHTTP(t *testing.T) {
	s := startSystem(t)
	_, admin := s.account(t, adminEmail, "Admin")
	annID, ann := s.account(t, "ann@example.com", "Ann")

	// An admin sets up a product; anyone can read it.
	mug := s.product(t, admin, "MUG-1", 1250, 10)
	r := ok(t, "GET /v1/products/{id}", do(t, "GET", s.url+"/v1/products/"+mug, "", ""))
	if r.str("product", "sku") != "MUG-1" || r.get("product", "price", "amount_minor") != "1250" || r.get("product", "active") != true {
		t.Fatalf("GET /v1/products/%s = %s", mug, r.raw)
	}
	// Proto field names, every field present, enums by name.
	for _, field := range []string{"create_time", "update_time", "etag", "images", "description"} {
		if _, ok := r.get("product").(map[string]any)[field]; !ok {
			t.Errorf("product JSON has no %q: %s", field, r.raw)
		}
	}
	r = ok(t, "GET /v1/products?category=kitchen", do(t, "GET", s.url+"/v1/products?category=kitchen&page_size=5", "", ""))
	if ps, _ := r.get("products").([]any); len(ps) != 1 {
		t.Fatalf("ListProducts = %s, want the mug", r.raw)
	}
	r = ok(t, "GET /v1/stock/MUG-1", do(t, "GET", s.url+"/v1/stock/MUG-1", "", ""))
	if r.get("stock", "available") != "10" {
		t.Fatalf("GetStock = %s, want 10 available", r.raw)
	}

	// A customer orders two mugs: the saga runs within the call.
	r = ok(t, "POST /v1/orders", do(t, "POST", s.url+"/v1/orders", ann, orderBody("order-ann-0001", mug, 2, "tok_visa")))
	orderID := r.str("order", "id")
	if r.str("order", "state") != "ORDER_STATE_CONFIRMED" || r.str("order", "user_id") != annID || r.get("order", "total", "amount_minor") != "3000" {
		t.Fatalf("CreateOrder = %s, want CONFIRMED, 25.00 + 20%% tax", r.raw)
	}
	// The same key again returns the same order.
	r = ok(t, "POST /v1/orders again", do(t, "POST", s.url+"/v1/orders", ann, orderBody("order-ann-0001", mug, 2, "tok_visa")))
	if r.str("order", "id") != orderID {
		t.Fatalf("CreateOrder with the same key = %s, want order %s", r.raw, orderID)
	}
	r = ok(t, "GET /v1/orders/{id}", do(t, "GET", s.url+"/v1/orders/"+orderID, ann, ""))
	if r.str("order", "state") != "ORDER_STATE_CONFIRMED" {
		t.Fatalf("GetOrder = %s", r.raw)
	}
	r = ok(t, "GET /v1/orders", do(t, "GET", s.url+"/v1/orders", ann, ""))
	if os, _ := r.get("orders").([]any); len(os) != 1 {
		t.Fatalf("ListOrders = %s, want one order", r.raw)
	}
	r = ok(t, "GET /v1/stock/MUG-1", do(t, "GET", s.url+"/v1/stock/MUG-1", "", ""))
	if r.get("stock", "on_hand") != "8" || r.get("stock", "reserved") != "0" {
		t.Fatalf("stock after the order = %s, want 8 on hand", r.raw)
	}
	r = ok(t, "GET /v1/orders/{id}/payment", do(t, "GET", s.url+"/v1/orders/"+orderID+"/payment", admin, ""))
	if r.str("payment", "state") != "PAYMENT_STATE_CAPTURED" {
		t.Fatalf("GetPayment = %s, want CAPTURED", r.raw)
	}

	// WatchOrder: newline-delimited JSON, the order now, then the end.
	req, _ := http.NewRequest("GET", s.url+"/v1/orders/"+orderID+":watch", nil)
	req.Header.Set("Authorization", "Bearer "+ann)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
		t.Fatalf("WatchOrder = %d %q, want 200 application/x-ndjson", resp.StatusCode, ct)
	}
	var lines []map[string]map[string]map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var line map[string]map[string]map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("WatchOrder line %q: %v", sc.Text(), err)
		}
		lines = append(lines, line)
	}
	resp.Body.Close()
	if len(lines) != 1 || lines[0]["result"]["order"]["state"] != "ORDER_STATE_CONFIRMED" {
		t.Fatalf("WatchOrder lines = %v, want one CONFIRMED order", lines)
	}

	// A declined card cancels the order and gives the stock back.
	r = ok(t, "POST /v1/orders declined", do(t, "POST", s.url+"/v1/orders", ann, orderBody("order-ann-0002", mug, 1, "tok_decline")))
	if r.str("order", "state") != "ORDER_STATE_CANCELLED" || r.str("order", "cancel_reason") != "PAYMENT_DECLINED" {
		t.Fatalf("declined CreateOrder = %s, want CANCELLED/PAYMENT_DECLINED", r.raw)
	}
	// The customer cancels the confirmed order: stock and money go back.
	r = ok(t, "POST /v1/orders/{id}:cancel", do(t, "POST", s.url+"/v1/orders/"+orderID+":cancel", ann, ""))
	if r.str("order", "state") != "ORDER_STATE_CANCELLED" {
		t.Fatalf("CancelOrder = %s, want CANCELLED", r.raw)
	}
	r = ok(t, "GET /v1/stock/MUG-1", do(t, "GET", s.url+"/v1/stock/MUG-1", "", ""))
	if r.get("stock", "on_hand") != "10" {
		t.Fatalf("stock after the cancellation = %s, want 10 on hand", r.raw)
	}

	// The order's chat room history, and the profile.
	r = ok(t, "GET /v1/rooms/{room}/messages", do(t, "GET", s.url+"/v1/rooms/order:"+orderID+"/messages", ann, ""))
	if _, ok := r.body["messages"]; !ok {
		t.Fatalf("History = %s", r.raw)
	}
	r = ok(t, "PATCH /v1/users/{id}", do(t, "PATCH", s.url+"/v1/users/"+annID, ann, `{"display_name":"Ann B.","update_mask":"displayName"}`))
	if r.str("user", "display_name") != "Ann B." {
		t.Fatalf("UpdateProfile = %s", r.raw)
	}
	r = ok(t, "GET /v1/users/{id}", do(t, "GET", s.url+"/v1/users/"+annID, ann, ""))
	if r.str("user", "display_name") != "Ann B." || r.str("user", "role") != "ROLE_CUSTOMER" {
		t.Fatalf("GetUser = %s", r.raw)
	}
	// JSON names are accepted on input too (the protobuf JSON mapping).
	r = ok(t, "PATCH with JSON names", do(t, "PATCH", s.url+"/v1/users/"+annID, ann, `{"displayName":"Ann C.","updateMask":"displayName"}`))
	if r.str("user", "display_name") != "Ann C." {
		t.Fatalf("UpdateProfile with JSON names = %s", r.raw)
	}

	// The admin edits the product with its etag; a stale etag conflicts.
	r = ok(t, "GET product", do(t, "GET", s.url+"/v1/products/"+mug, "", ""))
	etag := r.str("product", "etag")
	r = ok(t, "PATCH /v1/products/{id}", do(t, "PATCH", s.url+"/v1/products/"+mug, admin, jsonOf(map[string]any{
		"product": map[string]any{"name": "Big mug"}, "update_mask": "name", "etag": etag,
	})))
	if r.str("product", "name") != "Big mug" {
		t.Fatalf("UpdateProduct = %s", r.raw)
	}
}

// state is what the services hold, read over gRPC as an admin: it must not
// change when the gateway refuses a request.
func (s *system) state(t testing.TB) string {
	t.Helper()
	tok, _, err := s.signer.Issue(auth.Principal{Subject: "usr_checker", Role: auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	ctx := auth.WithBearer(context.Background(), tok)
	var b strings.Builder
	products, err := catalogv1.NewCatalogServiceClient(servetest.Conn(t, s.addrs["catalog"])).ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 100, IncludeInactive: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range products.GetProducts() {
		fmt.Fprintf(&b, "product %s %s %s\n", p.GetSku(), p.GetName(), p.GetEtag())
		stock, err := inventoryv1.NewInventoryServiceClient(servetest.Conn(t, s.addrs["inventory"])).GetStock(ctx, &inventoryv1.GetStockRequest{Sku: p.GetSku()})
		if err == nil {
			fmt.Fprintf(&b, "stock %s %d %d\n", p.GetSku(), stock.GetStock().GetOnHand(), stock.GetStock().GetReserved())
		}
	}
	orders, err := orderv1.NewOrderServiceClient(servetest.Conn(t, s.addrs["order"])).ListOrders(ctx, &orderv1.ListOrdersRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range orders.GetOrders() {
		fmt.Fprintf(&b, "order %s %s %d\n", o.GetId(), o.GetState(), o.GetVersion())
	}
	return b.String()
}

// forged is a well-formed token for subject and role signed with a key the
// system does not know.
func forged(t testing.TB, subject string, role auth.Role) string {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var ac auth.Config
	load(t, &ac)
	tok, _, err := auth.NewSigner(key, ac.Issuer, ac.Audience, time.Hour).Issue(auth.Principal{Subject: subject, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRefusedRequestsChangeNothing(t *testing.T) {
	s := startSystem(t)
	_, admin := s.account(t, adminEmail, "Admin")
	_, ann := s.account(t, "ann@example.com", "Ann")
	mug := s.product(t, admin, "MUG-1", 1250, 10)
	ok(t, "first order", do(t, "POST", s.url+"/v1/orders", ann, orderBody("order-ann-0001", mug, 1, "tok_visa")))

	big := strings.Repeat("x", int(s.gwCfg.MaxBodyBytes))
	newProduct := jsonOf(map[string]any{
		"sku": "MUG-2", "name": "Another mug", "category": "kitchen", "active": true,
		"price": map[string]any{"currency_code": "EUR", "amount_minor": 900},
	})
	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		body       string
		headers    []string
		wantStatus int
		wantCode   int // google.rpc.Code in the body
		wantReason string
	}{
		{"invalid JSON body", "POST", "/v1/products", admin, `{"sku": "MUG-2",`, nil, 400, 3, "INVALID_ARGUMENT"},
		{"JSON of the wrong type", "POST", "/v1/orders", ann, `{"lines": "two mugs"}`, nil, 400, 3, "INVALID_ARGUMENT"},
		{"unknown field", "POST", "/v1/orders", ann, strings.Replace(orderBody("order-ann-0002", mug, 1, "tok_visa"), "{", `{"coupon":"FREE",`, 1), nil, 400, 3, "INVALID_ARGUMENT"},
		{"unknown query parameter", "GET", "/v1/products?pagesize=5", "", "", nil, 400, 3, "INVALID_ARGUMENT"},
		{"invalid request (validation)", "POST", "/v1/orders", ann, orderBody("short", mug, 1, "tok_visa"), nil, 400, 3, "INVALID_ARGUMENT"},
		{"oversized body", "POST", "/v1/products", admin, `{"sku":"MUG-2","description":"` + big + `"}`, nil, 413, 8, "MESSAGE_TOO_LARGE"},
		{"missing token", "POST", "/v1/orders", "", orderBody("order-ann-0003", mug, 1, "tok_visa"), nil, 401, 16, "TOKEN_MISSING"},
		{"forged customer token", "POST", "/v1/orders", forged(t, "usr_eve", auth.RoleCustomer), orderBody("order-eve-0001", mug, 1, "tok_visa"), nil, 401, 16, "TOKEN_INVALID"},
		{"forged admin token", "POST", "/v1/products", forged(t, "usr_eve", auth.RoleAdmin), newProduct, nil, 401, 16, "TOKEN_INVALID"},
		{"garbage token", "PUT", "/v1/stock/MUG-1", "not-a-jwt", `{"on_hand": 0}`, nil, 401, 16, "TOKEN_INVALID"},
		{"customer on an admin method", "PUT", "/v1/stock/MUG-1", ann, `{"on_hand": 0}`, nil, 403, 7, "PERMISSION_DENIED"},
		{"disallowed CORS origin", "POST", "/v1/products", admin, newProduct, []string{"Origin", "https://evil.example"}, 403, 7, "PERMISSION_DENIED"},
		{"disallowed CORS preflight", "OPTIONS", "/v1/products", "", "", []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "POST"}, 403, 7, "PERMISSION_DENIED"},
		{"no such path", "GET", "/v1/coupons", "", "", nil, 404, 5, "METHOD_NOT_ALLOWED"},
		{"internal method has no route", "POST", "/shopfn.inventory.v1.InventoryService/Reserve", admin, `{}`, nil, 404, 5, "METHOD_NOT_ALLOWED"},
		{"HTTP method not mapped", "DELETE", "/v1/products/" + mug, admin, "", nil, 405, 12, "METHOD_NOT_ALLOWED"},
		{"stale etag", "PATCH", "/v1/products/" + mug, admin, `{"product":{"name":"x"},"update_mask":"name","etag":"stale"}`, nil, 409, 10, "STALE_ETAG"},
		{"already exists", "POST", "/v1/users", "", jsonOf(map[string]any{"email": "ann@example.com", "password": password, "display_name": "Ann"}), nil, 409, 6, "EMAIL_TAKEN"},
		{"not found", "GET", "/v1/products/prd_nope", "", "", nil, 404, 5, "PRODUCT_NOT_FOUND"},
		{"another customer's order", "POST", "/v1/orders/nope:cancel", ann, "", nil, 404, 5, "ORDER_NOT_FOUND"},
		{"wrong password", "POST", "/v1/users:login", "", jsonOf(map[string]any{"email": "ann@example.com", "password": "wrong password"}), nil, 401, 16, "INVALID_CREDENTIALS"},
		{"deadline exceeded", "GET", "/v1/products/" + mug, "", "", []string{"Grpc-Timeout", "1n"}, 504, 4, ""},
		{"invalid Grpc-Timeout", "GET", "/v1/products/" + mug, "", "", []string{"Grpc-Timeout", "soon"}, 400, 3, "INVALID_ARGUMENT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.state(t)
			r := do(t, tt.method, s.url+tt.path, tt.token, tt.body, tt.headers...)
			st := r.status_()
			if r.status != tt.wantStatus || st.Code != tt.wantCode || r.reason() != tt.wantReason {
				t.Errorf("%s %s = %d %s, want %d with code %d and reason %q", tt.method, tt.path, r.status, r.raw, tt.wantStatus, tt.wantCode, tt.wantReason)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if r.header.Get("X-Request-Id") == "" {
				t.Errorf("no X-Request-Id in the response")
			}
			if after := s.state(t); after != before {
				t.Errorf("the services changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}

	t.Run("oversized chunked body", func(t *testing.T) {
		before := s.state(t)
		// No Content-Length: the limit is found while reading.
		req, _ := http.NewRequest("POST", s.url+"/v1/products", io.MultiReader(strings.NewReader(`{"sku":"MUG-2","description":"`), strings.NewReader(big), strings.NewReader(`"}`)))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.ContentLength = -1
		r := send(t, req)
		if r.status != http.StatusRequestEntityTooLarge || r.reason() != "MESSAGE_TOO_LARGE" {
			t.Errorf("chunked oversized body = %d %s, want 413 MESSAGE_TOO_LARGE", r.status, r.raw)
		}
		if after := s.state(t); after != before {
			t.Errorf("the services changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("unauthenticated has WWW-Authenticate", func(t *testing.T) {
		r := do(t, "GET", s.url+"/v1/orders", "", "")
		if r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("GET /v1/orders without a token = %d, WWW-Authenticate %q", r.status, r.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("inactive product is a failed precondition", func(t *testing.T) {
		r := ok(t, "POST /v1/products inactive", do(t, "POST", s.url+"/v1/products", admin, jsonOf(map[string]any{
			"sku": "OLD-1", "name": "Old mug", "category": "kitchen", "active": false,
			"price": map[string]any{"currency_code": "EUR", "amount_minor": 100},
		})))
		before := s.state(t)
		r = do(t, "POST", s.url+"/v1/orders", ann, orderBody("order-ann-0009", r.str("product", "id"), 1, "tok_visa"))
		if r.status != 400 || r.status_().Code != 9 || r.reason() != "PRODUCT_INACTIVE" {
			t.Errorf("order of an inactive product = %d %s, want 400 FAILED_PRECONDITION/PRODUCT_INACTIVE", r.status, r.raw)
		}
		if after := s.state(t); after != before {
			t.Errorf("the services changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

func TestCORS(t *testing.T) {
	s := startSystem(t)
	mugless := s.url + "/v1/products"
	// Preflight from the allowed origin.
	r := do(t, "OPTIONS", mugless, "", "", "Origin", allowedOrigin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	h := r.header
	if r.status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != allowedOrigin ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("allowed preflight = %d %v", r.status, h)
	}
	// The request itself.
	r = do(t, "GET", mugless, "", "", "Origin", allowedOrigin)
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != allowedOrigin || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
		t.Errorf("allowed GET = %d %v", r.status, r.header)
	}
	// No Origin (curl, servers): no CORS headers, allowed.
	r = do(t, "GET", mugless, "", "")
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET without Origin = %d %v", r.status, r.header)
	}
}

func TestRateLimitPerClient(t *testing.T) {
	s := startSystem(t)
	_, ann := s.account(t, "ann@example.com", "Ann")
	_, bob := s.account(t, "bob@example.com", "Bob")
	cfg := s.gwCfg
	cfg.RateLimit, cfg.RateBurst = 0.001, 2 // two calls, then none for 1000 s
	url := startGateway(t, cfg)

	for i := range 2 {
		ok(t, fmt.Sprintf("anonymous call %d", i), do(t, "GET", url+"/v1/products", "", ""))
	}
	r := do(t, "GET", url+"/v1/products", "", "")
	if r.status != http.StatusTooManyRequests || r.status_().Code != 8 || r.reason() != "RATE_LIMITED" || r.header.Get("Retry-After") == "" {
		t.Fatalf("third anonymous call = %d %v %s, want 429 RATE_LIMITED with Retry-After", r.status, r.header, r.raw)
	}
	// A signed-in client has a bucket of its own, keyed by its subject
	// whatever its address; a forged token does not buy one.
	for i := range 2 {
		ok(t, fmt.Sprintf("ann's call %d", i), do(t, "GET", url+"/v1/orders", ann, ""))
	}
	if r := do(t, "GET", url+"/v1/orders", ann, ""); r.status != http.StatusTooManyRequests {
		t.Errorf("ann's third call = %d, want 429", r.status)
	}
	ok(t, "bob's first call", do(t, "GET", url+"/v1/orders", bob, ""))
	if r := do(t, "GET", url+"/v1/products", forged(t, "usr_fresh", auth.RoleCustomer), ""); r.status != http.StatusTooManyRequests {
		t.Errorf("call with a forged token from a limited address = %d, want 429", r.status)
	}
}

func TestUnavailableService(t *testing.T) {
	s := startSystem(t)
	cfg := s.gwCfg
	// A port nothing listens on.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.CatalogAddr = lis.Addr().String()
	lis.Close()
	url := startGateway(t, cfg)
	r := do(t, "GET", url+"/v1/products/prd_1", "", "")
	if r.status != http.StatusServiceUnavailable || r.status_().Code != 14 || r.reason() != "DEPENDENCY_UNAVAILABLE" {
		t.Fatalf("GET with catalog down = %d %s, want 503 DEPENDENCY_UNAVAILABLE", r.status, r.raw)
	}
	if strings.Contains(string(r.raw), "127.0.0.1") {
		t.Errorf("the error names an internal address: %s", r.raw)
	}
}

func TestOpenAPIServed(t *testing.T) {
	s := startSystem(t)
	r := do(t, "GET", s.url+"/openapi.json", "", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" || !bytes.Equal(r.raw, gateway.OpenAPI) {
		t.Fatalf("GET /openapi.json = %d %q, want the embedded document", r.status, r.header.Get("Content-Type"))
	}
	if r.str("swagger") != "2.0" || r.str("info", "title") == "" {
		t.Errorf("/openapi.json: swagger %q, title %q", r.str("swagger"), r.str("info", "title"))
	}
	if r := do(t, "GET", s.url+"/healthz", "", ""); r.status != 200 || r.str("status") != "SERVING" {
		t.Errorf("GET /healthz = %d %s", r.status, r.raw)
	}
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRequestIDs(t *testing.T) {
	s := startSystem(t)
	r := do(t, "GET", s.url+"/v1/products", "", "", "X-Request-Id", "req-123.abc")
	if got := r.header.Get("X-Request-Id"); got != "req-123.abc" {
		t.Errorf("X-Request-Id = %q, want the client's", got)
	}
	for _, bad := range []string{"", "has space", strings.Repeat("x", 129), "naïve"} {
		r := do(t, "GET", s.url+"/v1/products", "", "", "X-Request-Id", bad)
		if got := r.header.Get("X-Request-Id"); !hex32.MatchString(got) {
			t.Errorf("X-Request-Id for %q = %q, want a new 32-hex id", bad, got)
		}
	}
}
