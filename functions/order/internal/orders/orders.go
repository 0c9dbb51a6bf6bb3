// Package orders is the order service's domain: orders, their prices, who
// may see them, and the saga that confirms or cancels them.
package orders

import (
	"context"
	"errors"
	"time"

	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
)

// State is where an order is in its saga.
type State string

// The states. Confirmed and Cancelled are terminal.
const (
	Pending    State = "PENDING"    // stored, nothing reserved
	Reserved   State = "RESERVED"   // stock held
	Authorized State = "AUTHORIZED" // payment held
	Confirmed  State = "CONFIRMED"  // stock committed, payment captured
	Cancelling State = "CANCELLING" // compensating
	Cancelled  State = "CANCELLED"  // compensated
)

// Terminal reports whether no step will change the order any more.
func (s State) Terminal() bool { return s == Confirmed || s == Cancelled }

// Money is an amount in minor units of a currency.
type Money struct {
	Currency string
	Minor    int64
}

// Line is one product of an order, priced by the catalog.
type Line struct {
	ProductID string
	SKU       string
	Name      string
	Quantity  int32
	UnitPrice Money
}

// Total is the line's price: unit price × quantity.
func (l Line) Total() Money {
	return Money{Currency: l.UnitPrice.Currency, Minor: l.UnitPrice.Minor * int64(l.Quantity)}
}

// Invoice is the rendered invoice of a confirmed order.
type Invoice struct {
	Number  string
	Object  string
	Created time.Time
}

// Order is a customer's purchase and the progress of its saga.
type Order struct {
	ID       string
	UserID   string
	State    State
	Lines    []Line
	Subtotal Money
	Tax      Money
	Total    Money
	Address  *commonv1.Address
	// PaymentToken is kept until the payment is authorized (a resumed saga
	// needs it), then erased.
	PaymentToken string

	IdempotencyKey string
	// RequestHash fingerprints the request that created the order, to tell
	// a retry from a different request reusing the key.
	RequestHash string

	CancelReason    errorsv1.ErrorReason
	CancelMessage   string
	CancelRequested bool
	Invoice         *Invoice

	// Committed and Captured record that the final step's two calls
	// succeeded (both are set together, on CONFIRMED).
	Committed bool
	Captured  bool

	// LeaseUntil and LeaseOwner say which runner drives the saga now; other
	// runners leave it alone until the lease expires.
	LeaseUntil time.Time
	LeaseOwner string

	Version int64
	Created time.Time
	Updated time.Time
}

// The domain's errors.
var (
	ErrNotFound          = apperr.New(apperr.NotFound, errorsv1.ErrorReason_ORDER_NOT_FOUND, "order not found")
	ErrKeyReused         = apperr.New(apperr.Conflict, errorsv1.ErrorReason_IDEMPOTENCY_KEY_REUSED, "idempotency key already used for a different order")
	ErrCurrencyMismatch  = apperr.New(apperr.Invalid, errorsv1.ErrorReason_CURRENCY_MISMATCH, "the products are priced in different currencies")
	ErrProductInactive   = apperr.New(apperr.Precondition, errorsv1.ErrorReason_PRODUCT_INACTIVE, "a product is not for sale")
	ErrProductNotFound   = apperr.New(apperr.NotFound, errorsv1.ErrorReason_PRODUCT_NOT_FOUND, "a product does not exist")
	ErrNotCancellable    = apperr.New(apperr.Precondition, errorsv1.ErrorReason_ORDER_NOT_CANCELLABLE, "the order cannot be cancelled")
	ErrInvoiceNotAllowed = apperr.New(apperr.Precondition, errorsv1.ErrorReason_ORDER_NOT_CANCELLABLE, "only a confirmed order has an invoice")
)

// Store keeps orders. Update runs fn on the stored order inside one
// transaction and stores the result; when fn moves the order to Confirmed
// or Cancelled, the store records the matching event (order.confirmed,
// order.cancelled) in that same transaction. fn may run more than once (a
// Firestore transaction that loses a conflict runs again, on a fresh
// read): it must have no effect beyond the order it is given and results
// it sets afresh on every run.
type Store interface {
	// Create stores a new order. If the user already has an order with the
	// same idempotency key, it returns that order and ErrDuplicateKey.
	Create(ctx context.Context, o Order) (Order, error)
	Get(ctx context.Context, id string) (Order, error)
	ByIdempotencyKey(ctx context.Context, userID, key string) (Order, error)
	// List returns up to limit orders, newest first, after the cursor;
	// userID "" means every user's.
	List(ctx context.Context, userID string, after Cursor, limit int) ([]Order, error)
	Update(ctx context.Context, id string, fn func(*Order) error) (Order, error)
	// Unfinished returns ids of non-terminal orders not updated since
	// before and not leased now.
	Unfinished(ctx context.Context, before time.Time, limit int) ([]string, error)
}

// ErrUnchanged may be returned by an Update function to leave the order as
// it is; Update then returns the stored order and no error.
var ErrUnchanged = errors.New("unchanged")

// ErrDuplicateKey is returned by Store.Create for a reused idempotency key.
var ErrDuplicateKey = apperr.New(apperr.Conflict, errorsv1.ErrorReason_IDEMPOTENCY_KEY_REUSED, "idempotency key already used")

// Cursor is a position in the newest-first order list.
type Cursor struct {
	Created time.Time
	ID      string
}

// mayRead reports whether caller may see order o: its customer, an admin,
// or another service.
func mayRead(caller auth.Principal, o Order) bool {
	return caller.Subject == o.UserID || caller.Role == auth.RoleAdmin || caller.Role == auth.RoleService
}
