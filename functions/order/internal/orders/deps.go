package orders

import (
	"context"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
)

// Product is what the order needs from the catalog.
type Product struct {
	ID     string
	SKU    string
	Name   string
	Price  Money
	Active bool
}

// Catalog prices products.
type Catalog interface {
	// Product returns the product; ErrProductNotFound if there is none.
	Product(ctx context.Context, id string) (Product, error)
}

// StockLine is a quantity of one SKU.
type StockLine struct {
	SKU      string
	Quantity int32
}

// Inventory holds stock for orders. Every method is idempotent per order id,
// and Release is safe to call for an order that reserved nothing.
type Inventory interface {
	Reserve(ctx context.Context, orderID string, lines []StockLine) error
	Commit(ctx context.Context, orderID string) error
	Release(ctx context.Context, orderID string) error
}

// Payments moves the money. Every method is idempotent per order id, and
// Refund is safe to call for an order that was never authorized.
type Payments interface {
	Authorize(ctx context.Context, orderID string, amount Money, token string) error
	Capture(ctx context.Context, orderID string, amount Money) error
	Refund(ctx context.Context, orderID string) error
}

// StepError is how the adapters of Inventory and Payments report a failed
// call, so the saga can tell what to do next.
type StepError struct {
	// Reason names the failure (PAYMENT_DECLINED, INSUFFICIENT_STOCK,
	// DEPENDENCY_UNAVAILABLE, …); it becomes the order's cancel reason.
	Reason errorsv1.ErrorReason
	// Transient is true when the dependency was unavailable and its retries
	// ran out, false when it refused (a decline, no stock).
	Transient bool
	// Deadline is true when the call ran out of time (its deadline may have
	// been the saga's caller's).
	Deadline bool
	Err      error
}

func (e *StepError) Error() string { return e.Reason.String() + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }
