package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/bench/benchkit"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/dial"
	"github.com/shopfn/shopfn/shared/store"
)

const (
	// loadStock is what every load product gets on hand at setup: the most
	// SetStock accepts, so no run, however long, sells out and turns into a
	// test of INSUFFICIENT_STOCK.
	loadStock = 1_000_000_000

	// loadSetupTimeout bounds the whole setup. Logins are limited to 20 at
	// once and then one a second per client address, so a setup that waits
	// out that limit (several runs back to back) needs tens of seconds.
	loadSetupTimeout = 2 * time.Minute

	// loadProgressEvery is how often the progress line is refreshed.
	loadProgressEvery = time.Second

	// loadCategory holds the load products, so setup finds them with one
	// filtered listing and shoppers' categories stay clean.
	loadCategory = "shopfn-load"

	// loadSKUPrefix starts the SKUs of the load products: load-0001, ….
	loadSKUPrefix = "load-"

	// loadPassword is the password of the load customers, accounts that
	// exist only for load runs.
	loadPassword = "shopfn-load-customer"

	// loadPriceMinor is the unit price of every load product (10.00 EUR).
	loadPriceMinor = 1000

	// loadMaxLines is the most lines an order of the load has; each order
	// has 1 to loadMaxLines distinct products, like a small basket.
	loadMaxLines = 3
)

// loadOptions are the flags of `shopfn load`.
type loadOptions struct {
	target        string
	concurrency   int
	conns         int
	customers     int
	products      int
	duration      time.Duration
	warmup        time.Duration
	timeout       time.Duration
	json          bool
	userAddr      string
	catalogAddr   string
	inventoryAddr string
	orderAddr     string
	adminEmail    string
	adminPassword string
}

// check rejects flag values no run can use, before any call is made.
func (o loadOptions) check() error {
	switch {
	case o.concurrency < 1:
		return fmt.Errorf("--concurrency %d: want at least 1 worker", o.concurrency)
	case o.conns < 1:
		return fmt.Errorf("--conns %d: want at least 1 connection", o.conns)
	case o.customers < 1:
		return fmt.Errorf("--customers %d: want at least 1 customer", o.customers)
	case o.products < 1 || o.products > 9999:
		return fmt.Errorf("--products %d: want 1 to 9999 (SKUs load-0001 to load-9999)", o.products)
	case o.duration <= 0:
		return fmt.Errorf("--duration %s: want a positive duration, e.g. 10s", o.duration)
	case o.warmup < 0:
		return fmt.Errorf("--warmup %s: want 0 or more", o.warmup)
	case o.timeout <= 0:
		return fmt.Errorf("--timeout %s: want a positive duration", o.timeout)
	}
	return nil
}

func newLoadCmd() *cobra.Command {
	var o loadOptions
	cmd := &cobra.Command{
		Use:   "load orders|products",
		Short: "Put load on CreateOrder or GetProduct and report throughput, latency and errors",
		Long: `load calls one method of a running shopfn (shopfn dev, or the addresses
given) from --concurrency workers back to back for --duration, after a
--warmup whose calls are not counted, and reports what it measured.

  orders    CreateOrder: 1 to 3 random load products, one unit each, paid
            with tok_visa, a fresh idempotency key per call. An order that
            comes back other than CONFIRMED counts as an error
            (OrderCancelled/<cancel reason>).
  products  GetProduct of a random load product.

Setup, not timed: registers (or logs in) --admin-email, upserts --products
load products by SKU (load-0001, … in category shopfn-load) and sets their
stock to 1,000,000,000, then registers (or logs in) --customers load
customers (load-customer-001@shopfn.local, …). Workers take the customers
in turn. Every service limits each caller to SHOPFN_RATE_LIMIT_RPS (50 by
default) requests per second: raise --customers when the report shows
ResourceExhausted/RATE_LIMITED, or run shopfn dev with
SHOPFN_RATE_LIMIT_RPS=0.

Calls are not retried and have no circuit breaker: every error is the
server's answer (or the --timeout). Latency is measured per successful call,
from the call to its return.

Progress goes to standard error: one line refreshed every second on a
terminal, a line per second otherwise, nothing with --json.

--json prints one object with these fields:
  target             "orders" or "products"
  concurrency, conns, customers, products   the settings of the run
  warmup_seconds     the warmup asked for
  duration_seconds   the measured window, up to the last call's return
  requests           calls finished in the window (ok + errors)
  ok, errors         of which succeeded, failed
  rps, ok_rps        requests and ok per second of the window
  latency_ms         {p50, p90, p99, max} of the successful calls
  error_groups       [{code, reason, count, example}], most frequent first:
                     the gRPC code, the ErrorInfo reason ("" if none) and
                     the message of one of them

The exit status is 1 when setup fails or when no call succeeded.`,
		Example: `  shopfn load orders -c 16 -d 10s
  shopfn load products -c 64 -d 30s --json`,
		ValidArgs: []string{"orders", "products"},
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.target = args[0]
			if err := o.check(); err != nil {
				return err
			}
			return runLoadCmd(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVarP(&o.concurrency, "concurrency", "c", 16, "workers calling back to back")
	f.DurationVarP(&o.duration, "duration", "d", 10*time.Second, "how long to measure")
	f.DurationVar(&o.warmup, "warmup", time.Second, "load before measuring, not counted (connections, caches)")
	// Four connections keep one HTTP/2 connection's reader and writer off
	// the critical path at -c 64 without a socket per worker.
	f.IntVar(&o.conns, "conns", 4, "gRPC connections the workers share")
	f.IntVar(&o.customers, "customers", 8, "load customers the workers take in turn (each is rate limited on its own)")
	f.IntVar(&o.products, "products", 50, "load products to create or reuse")
	f.DurationVar(&o.timeout, "timeout", 5*time.Second, "deadline of each call")
	f.BoolVar(&o.json, "json", false, "print the report as one JSON object")
	f.StringVar(&o.userAddr, "user-addr", envOr("SHOPFN_USER_ADDR", defaultAddr("user")), "user service address [$SHOPFN_USER_ADDR]")
	f.StringVar(&o.catalogAddr, "catalog-addr", envOr("SHOPFN_CATALOG_ADDR", defaultAddr("catalog")), "catalog service address [$SHOPFN_CATALOG_ADDR]")
	f.StringVar(&o.inventoryAddr, "inventory-addr", envOr("SHOPFN_INVENTORY_ADDR", defaultAddr("inventory")), "inventory service address [$SHOPFN_INVENTORY_ADDR]")
	f.StringVar(&o.orderAddr, "order-addr", envOr("SHOPFN_ORDER_ADDR", defaultAddr("order")), "order service address [$SHOPFN_ORDER_ADDR]")
	f.StringVar(&o.adminEmail, "admin-email", "admin@shopfn.local", "admin account that sets up the load products (registered if missing)")
	f.StringVar(&o.adminPassword, "admin-password", "", "its password (default: $SHOPFN_ADMIN_PASSWORD, else the one shopfn demo uses too)")
	return cmd
}

// runLoadCmd sets up, runs the load and prints the report.
func runLoadCmd(ctx context.Context, o loadOptions, stdout, stderr io.Writer) error {
	if o.adminPassword == "" {
		o.adminPassword = envOr("SHOPFN_ADMIN_PASSWORD", devAdminPassword)
	}
	if !o.json {
		fmt.Fprintf(stderr, "load: setting up %d products and %d customers…\n", o.products, o.customers)
	}
	fx, err := setupLoad(ctx, o)
	if err != nil {
		return fmt.Errorf("load setup: %w", err)
	}

	addr := o.orderAddr
	if o.target == "products" {
		addr = o.catalogAddr
	}
	conns := make([]*grpc.ClientConn, o.conns)
	for i := range conns {
		// No retries and no breaker: the report shows what the server
		// answered to every call, not what a client made of it.
		cc, err := dial.Dial(addr, dial.Options{DefaultTimeout: o.timeout, Breaker: dial.BreakerSettings{Disabled: true}})
		if err != nil {
			return err
		}
		defer cc.Close()
		conns[i] = cc
	}
	calls := make([]loadCall, o.concurrency)
	for i := range calls {
		calls[i] = newLoadCall(o.target, conns[i%len(conns)], fx.productIDs)
		tok := fx.tokens[i%len(fx.tokens)]
		call := calls[i]
		calls[i] = func(ctx context.Context) error { return call(auth.WithBearer(ctx, tok)) }
	}

	var prog io.Writer
	if !o.json {
		prog = stderr
		fmt.Fprintf(stderr, "load: %s, %d workers on %d connections, %s warmup then %s\n",
			o.target, o.concurrency, o.conns, o.warmup, o.duration)
	}
	r := runLoad(ctx, calls, o.warmup, o.duration, prog)
	rep := r.report(o)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.print(stdout)
	}
	switch {
	case rep.Requests == 0:
		return errors.New("load: no call finished in the measured window")
	case rep.OK == 0:
		return fmt.Errorf("load: all %d calls failed", rep.Requests)
	}
	return nil
}

// loadCall makes one request of the load; an error is a failed request.
type loadCall func(ctx context.Context) error

// newLoadCall returns the request of target on cc, on random load products.
func newLoadCall(target string, cc grpc.ClientConnInterface, productIDs []string) loadCall {
	if target == "products" {
		c := catalogv1.NewCatalogServiceClient(cc)
		return func(ctx context.Context) error {
			_, err := c.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: productIDs[rand.IntN(len(productIDs))]})
			return err
		}
	}
	c := orderv1.NewOrderServiceClient(cc)
	addr := &commonv1.Address{Name: "Load Test", Line1: "1 Load Street", City: "Paris", PostalCode: "75001", CountryCode: "FR"}
	return func(ctx context.Context) error {
		n := 1 + rand.IntN(min(loadMaxLines, len(productIDs)))
		lines := make([]*orderv1.LineItem, 0, n)
		for _, i := range rand.Perm(len(productIDs))[:n] {
			lines = append(lines, &orderv1.LineItem{ProductId: productIDs[i], Quantity: 1})
		}
		resp, err := c.CreateOrder(ctx, &orderv1.CreateOrderRequest{
			IdempotencyKey: store.NewID("load"), Lines: lines, ShippingAddress: addr, PaymentToken: "tok_visa",
		})
		if err != nil {
			return err
		}
		if o := resp.GetOrder(); o.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
			return orderOutcomeError{state: o.GetState(), reason: o.GetCancelReason(), message: o.GetCancelMessage()}
		}
		return nil
	}
}

// orderOutcomeError is an order that CreateOrder returned in a state other
// than CONFIRMED: the call succeeded, the purchase did not.
type orderOutcomeError struct {
	state   orderv1.OrderState
	reason  errorsv1.ErrorReason
	message string
}

func (e orderOutcomeError) Error() string {
	return fmt.Sprintf("order %s: %s", e.state, e.message)
}

// errorGroup returns how err is grouped in the report: the gRPC code (or
// the order's state, e.g. OrderCancelled) and the ErrorInfo reason.
func errorGroup(err error) (code, reason string) {
	var oe orderOutcomeError
	if errors.As(err, &oe) {
		s := strings.TrimPrefix(oe.state.String(), "ORDER_STATE_")
		if oe.reason != errorsv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			reason = oe.reason.String()
		}
		return "Order" + s[:1] + strings.ToLower(s[1:]), reason
	}
	return status.Code(err).String(), apperr.Reason(err)
}

// loadFixture is what setup made: the load products and the customers'
// access tokens.
type loadFixture struct {
	productIDs []string
	tokens     []string
}

// setupLoad makes the load products and customers (idempotent: a second
// run reuses them).
func setupLoad(ctx context.Context, o loadOptions) (loadFixture, error) {
	ctx, cancel := context.WithTimeout(ctx, loadSetupTimeout)
	defer cancel()
	var fx loadFixture

	userCC, err := dial.Dial(o.userAddr, dial.Options{Idempotent: []string{userv1.UserService_Login_FullMethodName}})
	if err != nil {
		return fx, err
	}
	defer userCC.Close()
	users := userv1.NewUserServiceClient(userCC)

	admin, err := ensureAccount(ctx, users, o.adminEmail, o.adminPassword, "Load admin")
	if err != nil {
		return fx, fmt.Errorf("admin %s: %w", o.adminEmail, err)
	}
	if admin.GetUser().GetRole() != userv1.Role_ROLE_ADMIN {
		return fx, fmt.Errorf("%s is not an admin: shopfn dev makes the --admin-email accounts admins when they register; pass an admin with --admin-email", o.adminEmail)
	}
	adminCtx := auth.WithBearer(ctx, admin.GetAccessToken())

	if fx.productIDs, err = setupProducts(adminCtx, o); err != nil {
		return fx, err
	}
	if err := setupStock(adminCtx, o); err != nil {
		return fx, err
	}
	for i := range o.customers {
		email := fmt.Sprintf("load-customer-%03d@shopfn.local", i+1)
		resp, err := ensureAccount(ctx, users, email, loadPassword, fmt.Sprintf("Load customer %d", i+1))
		if err != nil {
			return fx, fmt.Errorf("customer %s: %w", email, err)
		}
		fx.tokens = append(fx.tokens, resp.GetAccessToken())
	}
	return fx, nil
}

// ensureAccount registers email if it is new and logs it in.
func ensureAccount(ctx context.Context, c userv1.UserServiceClient, email, password, name string) (*userv1.LoginResponse, error) {
	err := retryRateLimited(ctx, func() error {
		_, err := c.Register(ctx, &userv1.RegisterRequest{Email: email, Password: password, DisplayName: name})
		return err
	})
	if err != nil && apperr.Reason(err) != errorsv1.ErrorReason_EMAIL_TAKEN.String() {
		return nil, fmt.Errorf("register: %s", explain(err))
	}
	var resp *userv1.LoginResponse
	err = retryRateLimited(ctx, func() (err error) {
		resp, err = c.Login(ctx, &userv1.LoginRequest{Email: email, Password: password})
		return err
	})
	if status.Code(err) == codes.Unauthenticated {
		return nil, fmt.Errorf("log in: %s (the account exists with another password: give it with --admin-password or $SHOPFN_ADMIN_PASSWORD)", explain(err))
	}
	if err != nil {
		return nil, fmt.Errorf("log in: %s", explain(err))
	}
	return resp, nil
}

// setupProducts upserts the load products by SKU and returns their ids,
// in SKU order.
func setupProducts(ctx context.Context, o loadOptions) ([]string, error) {
	cc, err := dial.Dial(o.catalogAddr, dial.Options{Idempotent: []string{catalogv1.CatalogService_ListProducts_FullMethodName}})
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	c := catalogv1.NewCatalogServiceClient(cc)

	skus := make([]string, o.products)
	for i := range skus {
		skus[i] = fmt.Sprintf("%s%04d", loadSKUPrefix, i+1)
	}
	var imported *catalogv1.BulkImportProductsResponse
	err = retryRateLimited(ctx, func() error {
		stream, err := c.BulkImportProducts(ctx)
		if err != nil {
			return err
		}
		for i, sku := range skus {
			err := stream.Send(&catalogv1.BulkImportProductsRequest{Product: &catalogv1.ProductDraft{
				Sku: sku, Name: fmt.Sprintf("Load product %d", i+1), Description: "Made by shopfn load.",
				Category: loadCategory, Price: &commonv1.Money{CurrencyCode: "EUR", AmountMinor: loadPriceMinor}, Active: true,
			}})
			if err != nil {
				break // the server ended the stream; CloseAndRecv says why
			}
		}
		imported, err = stream.CloseAndRecv()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("import products: %s", explain(err))
	}
	if e := imported.GetErrors(); len(e) > 0 {
		return nil, fmt.Errorf("import products: %s refused: %s %s", e[0].GetSku(), e[0].GetReason(), e[0].GetMessage())
	}

	ids := map[string]string{}
	req := &catalogv1.ListProductsRequest{Category: loadCategory, PageSize: 100}
	for {
		var resp *catalogv1.ListProductsResponse
		err := retryRateLimited(ctx, func() (err error) {
			resp, err = c.ListProducts(ctx, req)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list products: %s", explain(err))
		}
		for _, p := range resp.GetProducts() {
			ids[p.GetSku()] = p.GetId()
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	out := make([]string, len(skus))
	for i, sku := range skus {
		if out[i] = ids[sku]; out[i] == "" {
			return nil, fmt.Errorf("list products: %s was imported but is not listed in category %s", sku, loadCategory)
		}
	}
	return out, nil
}

// setupStock gives every load product loadStock units on hand.
func setupStock(ctx context.Context, o loadOptions) error {
	cc, err := dial.Dial(o.inventoryAddr, dial.Options{Idempotent: []string{inventoryv1.InventoryService_SetStock_FullMethodName}})
	if err != nil {
		return err
	}
	defer cc.Close()
	c := inventoryv1.NewInventoryServiceClient(cc)
	for i := range o.products {
		sku := fmt.Sprintf("%s%04d", loadSKUPrefix, i+1)
		err := retryRateLimited(ctx, func() error {
			_, err := c.SetStock(ctx, &inventoryv1.SetStockRequest{Sku: sku, OnHand: loadStock})
			return err
		})
		if err != nil {
			return fmt.Errorf("set stock of %s: %s", sku, explain(err))
		}
	}
	return nil
}

// retryRateLimited calls fn again, after the wait the server asks for, as
// long as it fails with RATE_LIMITED or LOGIN_THROTTLED and ctx allows:
// setup waits out the per-caller and login limits instead of failing.
func retryRateLimited(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if r := apperr.Reason(err); r != errorsv1.ErrorReason_RATE_LIMITED.String() && r != errorsv1.ErrorReason_LOGIN_THROTTLED.String() {
			return err
		}
		wait := time.Second
		if ms, perr := strconv.Atoi(apperr.Metadata(err)["retry_after_ms"]); perr == nil && ms > 0 {
			wait = time.Duration(ms) * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// loadResult is what the workers measured in the window.
type loadResult struct {
	elapsed   time.Duration
	ok        int
	latencies []time.Duration // of the successful calls, sorted
	groups    map[[2]string]*loadErrorGroup
}

// loadTally is one worker's share of a loadResult; workers merge theirs
// at the end, so the hot path takes no lock.
type loadTally struct {
	latencies []time.Duration
	groups    map[[2]string]*loadErrorGroup
}

// runLoad runs one worker per call, each calling back to back: calls that
// start during warmup are not counted, no call starts after warmup + d, and
// runLoad returns when the calls in flight have returned. When ctx ends
// (Ctrl-C) the workers stop and what was measured so far is returned. If
// progress is not nil, a progress line is written to it every second.
func runLoad(ctx context.Context, calls []loadCall, warmup, d time.Duration, progress io.Writer) loadResult {
	start := time.Now()
	from := start.Add(warmup)
	end := from.Add(d)
	var ok, failed atomic.Int64 // live counts for the progress line
	tallies := make([]loadTally, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		t := &tallies[i]
		t.groups = map[[2]string]*loadErrorGroup{}
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := call(ctx)
				lat := time.Since(t0)
				if ctx.Err() != nil {
					return // interrupted: the call's outcome says nothing of the server
				}
				if t0.Before(from) {
					continue
				}
				if err == nil {
					t.latencies = append(t.latencies, lat)
					ok.Add(1)
					continue
				}
				code, reason := errorGroup(err)
				g := t.groups[[2]string{code, reason}]
				if g == nil {
					g = &loadErrorGroup{Code: code, Reason: reason, Example: errorExample(err)}
					t.groups[[2]string{code, reason}] = g
				}
				g.Count++
				failed.Add(1)
			}
		})
	}

	stopProgress := func() {}
	if progress != nil {
		done := make(chan struct{})
		var pwg sync.WaitGroup
		pwg.Go(func() { reportProgress(progress, start, from, end, &ok, &failed, done) })
		stopProgress = func() { close(done); pwg.Wait() }
	}
	wg.Wait()
	stopProgress()

	r := loadResult{elapsed: max(time.Since(from), 0), groups: map[[2]string]*loadErrorGroup{}}
	for _, t := range tallies {
		r.latencies = append(r.latencies, t.latencies...)
		for k, g := range t.groups {
			if all := r.groups[k]; all != nil {
				all.Count += g.Count
			} else {
				r.groups[k] = g
			}
		}
	}
	r.ok = len(r.latencies)
	slices.Sort(r.latencies)
	return r
}

// errorExample is the message shown for an error group.
func errorExample(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// reportProgress writes the progress every loadProgressEvery until done is
// closed: one line rewritten in place on a terminal, a line each time
// otherwise.
func reportProgress(w io.Writer, start, from, end time.Time, ok, failed *atomic.Int64, done <-chan struct{}) {
	tty := isTerminal(w)
	tick := time.NewTicker(loadProgressEvery)
	defer tick.Stop()
	for {
		select {
		case <-done:
			if tty {
				fmt.Fprint(w, "\r\033[K")
			}
			return
		case now := <-tick.C:
			var line string
			// A tick at the end of the warmup (a whisker after it) still
			// reports the warmup rather than an empty window.
			if now.Before(from.Add(loadProgressEvery / 2)) {
				line = fmt.Sprintf("load: warming up, %.1fs of %s", min(now.Sub(start), from.Sub(start)).Seconds(), from.Sub(start))
			} else {
				n, e := ok.Load(), failed.Load()
				secs := min(now.Sub(from), end.Sub(from)).Seconds()
				line = fmt.Sprintf("load: %4.1fs of %s  %d requests  %.1f rps  %d errors",
					secs, end.Sub(from), n+e, float64(n+e)/max(secs, 1e-3), e)
			}
			if tty {
				fmt.Fprint(w, "\r\033[K"+line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// loadReport is the outcome of a run. Its JSON field names are part of the
// command's interface (listed in its help): change them only compatibly.
type loadReport struct {
	Target          string           `json:"target"`
	Concurrency     int              `json:"concurrency"`
	Conns           int              `json:"conns"`
	Customers       int              `json:"customers"`
	Products        int              `json:"products"`
	WarmupSeconds   float64          `json:"warmup_seconds"`
	DurationSeconds float64          `json:"duration_seconds"`
	Requests        int              `json:"requests"`
	OK              int              `json:"ok"`
	Errors          int              `json:"errors"`
	RPS             float64          `json:"rps"`
	OKRPS           float64          `json:"ok_rps"`
	LatencyMS       loadLatency      `json:"latency_ms"`
	ErrorGroups     []loadErrorGroup `json:"error_groups"`
}

// loadLatency are quantiles of the successful calls' latency, in
// milliseconds; all zero when none succeeded.
type loadLatency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// loadErrorGroup counts the failed calls of one gRPC code and reason.
type loadErrorGroup struct {
	Code    string `json:"code"`
	Reason  string `json:"reason"`
	Count   int    `json:"count"`
	Example string `json:"example"`
}

// report summarizes r for the run o.
func (r loadResult) report(o loadOptions) loadReport {
	rep := loadReport{
		Target: o.target, Concurrency: o.concurrency, Conns: o.conns, Customers: o.customers, Products: o.products,
		WarmupSeconds: o.warmup.Seconds(), DurationSeconds: round3(r.elapsed.Seconds()),
		OK: r.ok, ErrorGroups: []loadErrorGroup{},
	}
	for _, g := range r.groups {
		rep.Errors += g.Count
		rep.ErrorGroups = append(rep.ErrorGroups, *g)
	}
	slices.SortFunc(rep.ErrorGroups, func(a, b loadErrorGroup) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Code+"/"+a.Reason, b.Code+"/"+b.Reason)
	})
	rep.Requests = rep.OK + rep.Errors
	if secs := r.elapsed.Seconds(); secs > 0 {
		rep.RPS = round3(float64(rep.Requests) / secs)
		rep.OKRPS = round3(float64(rep.OK) / secs)
	}
	if len(r.latencies) > 0 {
		ms := make([]float64, len(r.latencies))
		for i, l := range r.latencies {
			ms[i] = float64(l) / float64(time.Millisecond)
		}
		rep.LatencyMS = loadLatency{
			P50: round3(benchkit.Quantile(ms, 0.50)),
			P90: round3(benchkit.Quantile(ms, 0.90)),
			P99: round3(benchkit.Quantile(ms, 0.99)),
			Max: round3(ms[len(ms)-1]),
		}
	}
	return rep
}

// print writes the report for people.
func (rep loadReport) print(w io.Writer) {
	fmt.Fprintf(w, "%s: %d workers, %d connections, %d customers, %d products; %.1fs measured after %.1fs warmup\n",
		rep.Target, rep.Concurrency, rep.Conns, rep.Customers, rep.Products, rep.DurationSeconds, rep.WarmupSeconds)
	fmt.Fprintf(w, "  requests  %d  (ok %d, errors %d)\n", rep.Requests, rep.OK, rep.Errors)
	fmt.Fprintf(w, "  rps       %.1f  (ok %.1f)\n", rep.RPS, rep.OKRPS)
	l := rep.LatencyMS
	fmt.Fprintf(w, "  latency   p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms  (successful calls)\n", l.P50, l.P90, l.P99, l.Max)
	if len(rep.ErrorGroups) == 0 {
		return
	}
	fmt.Fprintln(w, "  errors")
	for _, g := range rep.ErrorGroups {
		key := g.Code
		if g.Reason != "" {
			key += "/" + g.Reason
		}
		fmt.Fprintf(w, "    %-48s %d  (%q)\n", key, g.Count, g.Example)
	}
	for _, g := range rep.ErrorGroups {
		if g.Reason == errorsv1.ErrorReason_RATE_LIMITED.String() {
			fmt.Fprintln(w, "  note: each caller may make SHOPFN_RATE_LIMIT_RPS calls per second (50 by default): raise --customers, or run shopfn dev with SHOPFN_RATE_LIMIT_RPS=0")
			break
		}
	}
}

// round3 rounds x to three decimals, enough for milliseconds and rates.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
