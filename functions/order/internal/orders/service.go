package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/store"
)

// Options tune the service.
type Options struct {
	// TaxRateBPS is the tax rate in basis points of the subtotal (2000 =
	// 20%), rounded half up to the minor unit.
	TaxRateBPS int64
	// StepTimeout bounds each saga call to another service.
	StepTimeout time.Duration
	// Lease is how long a runner owns a saga before another may take it
	// over; it must exceed the longest step (StepTimeout with retries).
	Lease time.Duration
	// AfterStep, when set, is called after each saga step is stored, with
	// the order's new state. Tests use it to crash the service between
	// steps.
	AfterStep func(ctx context.Context, o Order)
}

// Service implements the order rules and the saga.
type Service struct {
	store    Store
	catalog  Catalog
	stock    Inventory
	payments Payments
	log      *slog.Logger
	opts     Options
	notify   *notifier
	owner    string
	now      func() time.Time
}

// NewService returns the service.
func NewService(s Store, c Catalog, i Inventory, p Payments, log *slog.Logger, o Options) *Service {
	return &Service{
		store: s, catalog: c, stock: i, payments: p, log: log, opts: o,
		notify: newNotifier(), owner: store.NewID("run"), now: time.Now,
	}
}

// Create places the order described by req for caller, then runs its saga
// within ctx. The same caller and idempotency key with the same request
// return the same order; with another request, ErrKeyReused.
func (s *Service) Create(ctx context.Context, caller auth.Principal, key string, req *orderv1.CreateOrderRequest) (Order, error) {
	hash, err := fingerprint(req)
	if err != nil {
		return Order{}, err
	}
	if o, err := s.store.ByIdempotencyKey(ctx, caller.Subject, key); err == nil {
		return s.replay(ctx, o, hash)
	} else if !errors.Is(err, ErrNotFound) {
		return Order{}, err
	}

	o, err := s.price(ctx, req)
	if err != nil {
		return Order{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	o.ID = store.NewID("ord")
	o.UserID = caller.Subject
	o.State = Pending
	o.IdempotencyKey = key
	o.RequestHash = hash
	o.Address = req.GetShippingAddress()
	o.PaymentToken = req.GetPaymentToken()
	o.Created, o.Updated = now, now
	// The creator drives the saga: it takes the lease as it creates.
	o.LeaseOwner, o.LeaseUntil = s.owner, now.Add(s.opts.Lease)
	stored, err := s.store.Create(ctx, o)
	if errors.Is(err, ErrDuplicateKey) {
		// A concurrent call with the same key won the race.
		return s.replay(ctx, stored, hash)
	}
	if err != nil {
		return Order{}, err
	}
	return s.drive(ctx, stored)
}

// replay answers a retried CreateOrder with the order it created.
func (s *Service) replay(ctx context.Context, o Order, hash string) (Order, error) {
	if o.RequestHash != hash {
		return Order{}, ErrKeyReused
	}
	return o, nil
}

// fingerprint hashes the request's deterministic encoding.
func fingerprint(req *orderv1.CreateOrderRequest) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("fingerprint request: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// price builds the order's lines and totals from the catalog's prices.
func (s *Service) price(ctx context.Context, req *orderv1.CreateOrderRequest) (Order, error) {
	var o Order
	seen := make(map[string]bool, len(req.GetLines()))
	for _, item := range req.GetLines() {
		if seen[item.GetProductId()] {
			return Order{}, apperr.Invalidf("lines", "product %s is listed twice; give one line per product", item.GetProductId())
		}
		seen[item.GetProductId()] = true
		p, err := s.catalog.Product(ctx, item.GetProductId())
		if err != nil {
			return Order{}, err
		}
		if !p.Active {
			return Order{}, ErrProductInactive.With("product_id", p.ID)
		}
		if o.Subtotal.Currency == "" {
			o.Subtotal.Currency = p.Price.Currency
		} else if o.Subtotal.Currency != p.Price.Currency {
			return Order{}, ErrCurrencyMismatch
		}
		line := Line{ProductID: p.ID, SKU: p.SKU, Name: p.Name, Quantity: item.GetQuantity(), UnitPrice: p.Price}
		o.Lines = append(o.Lines, line)
		o.Subtotal.Minor += line.Total().Minor
	}
	o.Tax = Money{Currency: o.Subtotal.Currency, Minor: (o.Subtotal.Minor*s.opts.TaxRateBPS + 5000) / 10000}
	o.Total = Money{Currency: o.Subtotal.Currency, Minor: o.Subtotal.Minor + o.Tax.Minor}
	return o, nil
}

// Get returns order id as caller may see it (another customer's order is
// ErrNotFound).
func (s *Service) Get(ctx context.Context, caller auth.Principal, id string) (Order, error) {
	o, err := s.store.Get(ctx, id)
	if err != nil {
		return Order{}, err
	}
	if !mayRead(caller, o) {
		return Order{}, ErrNotFound
	}
	return o, nil
}

// List pages through the orders caller may see: customers their own,
// admins and services everyone's (or userID's, when set).
func (s *Service) List(ctx context.Context, caller auth.Principal, userID string, after Cursor, limit int) ([]Order, error) {
	if caller.Role == auth.RoleCustomer {
		userID = caller.Subject
	}
	return s.store.List(ctx, userID, after, limit)
}

// AttachInvoice records the invoice of a confirmed order. Idempotent: the
// same invoice again changes nothing.
func (s *Service) AttachInvoice(ctx context.Context, id string, inv Invoice) (Order, error) {
	defer s.notify.publish(id)
	return s.store.Update(ctx, id, func(o *Order) error {
		if o.State != Confirmed {
			return ErrInvoiceNotAllowed
		}
		if o.Invoice != nil && o.Invoice.Number == inv.Number && o.Invoice.Object == inv.Object {
			return ErrUnchanged
		}
		o.Invoice = &inv
		o.Updated = s.now().UTC()
		return nil
	})
}
