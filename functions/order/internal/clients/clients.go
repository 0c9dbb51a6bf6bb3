// Package clients adapts the catalog, inventory and payment services' gRPC
// APIs to what the order domain needs, and classifies their failures for
// the saga.
package clients

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/functions/order/internal/orders"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
	paymentv1 "github.com/shopfn/shopfn/proto/shopfn/payment/v1"
	"github.com/shopfn/shopfn/shared/apperr"
)

// The methods the order service calls, per service. All are idempotent by
// design (per product, per order id), so the channel may retry them.
func CatalogMethods() []string { return []string{catalogv1.CatalogService_GetProduct_FullMethodName} }

// InventoryMethods: see CatalogMethods.
func InventoryMethods() []string {
	return []string{inventoryv1.InventoryService_Reserve_FullMethodName, inventoryv1.InventoryService_Commit_FullMethodName, inventoryv1.InventoryService_Release_FullMethodName}
}

// PaymentMethods: see CatalogMethods.
func PaymentMethods() []string {
	return []string{paymentv1.PaymentService_Authorize_FullMethodName, paymentv1.PaymentService_Capture_FullMethodName, paymentv1.PaymentService_Refund_FullMethodName}
}

// errCatalogUnavailable is what CreateOrder answers when it cannot price.
var errCatalogUnavailable = apperr.New(apperr.Unavailable, errorsv1.ErrorReason_DEPENDENCY_UNAVAILABLE, "the catalog is unavailable; try again")

// Catalog is orders.Catalog over gRPC.
type Catalog struct {
	c catalogv1.CatalogServiceClient
}

// NewCatalog returns the adapter on cc.
func NewCatalog(cc grpc.ClientConnInterface) *Catalog {
	return &Catalog{c: catalogv1.NewCatalogServiceClient(cc)}
}

// Product implements orders.Catalog.
func (a *Catalog) Product(ctx context.Context, id string) (orders.Product, error) {
	resp, err := a.c.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: id})
	switch {
	case status.Code(err) == codes.NotFound:
		return orders.Product{}, orders.ErrProductNotFound.With("product_id", id)
	case err != nil:
		if ctx.Err() != nil {
			return orders.Product{}, ctx.Err()
		}
		return orders.Product{}, errCatalogUnavailable.Wrap(err)
	}
	p := resp.GetProduct()
	return orders.Product{
		ID: p.GetId(), SKU: p.GetSku(), Name: p.GetName(), Active: p.GetActive(),
		Price: orders.Money{Currency: p.GetPrice().GetCurrencyCode(), Minor: p.GetPrice().GetAmountMinor()},
	}, nil
}

// Inventory is orders.Inventory over gRPC.
type Inventory struct {
	c inventoryv1.InventoryServiceClient
}

// NewInventory returns the adapter on cc.
func NewInventory(cc grpc.ClientConnInterface) *Inventory {
	return &Inventory{c: inventoryv1.NewInventoryServiceClient(cc)}
}

// Reserve implements orders.Inventory.
func (a *Inventory) Reserve(ctx context.Context, orderID string, lines []orders.StockLine) error {
	req := &inventoryv1.ReserveRequest{OrderId: orderID, Lines: make([]*inventoryv1.Line, len(lines))}
	for i, l := range lines {
		req.Lines[i] = &inventoryv1.Line{Sku: l.SKU, Quantity: l.Quantity}
	}
	_, err := a.c.Reserve(ctx, req)
	return stepError(err, errorsv1.ErrorReason_INSUFFICIENT_STOCK)
}

// Commit implements orders.Inventory.
func (a *Inventory) Commit(ctx context.Context, orderID string) error {
	_, err := a.c.Commit(ctx, &inventoryv1.CommitRequest{OrderId: orderID})
	return stepError(err, errorsv1.ErrorReason_RESERVATION_NOT_FOUND)
}

// Release implements orders.Inventory.
func (a *Inventory) Release(ctx context.Context, orderID string) error {
	_, err := a.c.Release(ctx, &inventoryv1.ReleaseRequest{OrderId: orderID})
	return stepError(err, errorsv1.ErrorReason_RESERVATION_NOT_FOUND)
}

// Payments is orders.Payments over gRPC.
type Payments struct {
	c paymentv1.PaymentServiceClient
}

// NewPayments returns the adapter on cc.
func NewPayments(cc grpc.ClientConnInterface) *Payments {
	return &Payments{c: paymentv1.NewPaymentServiceClient(cc)}
}

func money(m orders.Money) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: m.Currency, AmountMinor: m.Minor}
}

// Authorize implements orders.Payments.
func (a *Payments) Authorize(ctx context.Context, orderID string, amount orders.Money, token string) error {
	_, err := a.c.Authorize(ctx, &paymentv1.AuthorizeRequest{OrderId: orderID, Amount: money(amount), PaymentToken: token})
	return stepError(err, errorsv1.ErrorReason_PAYMENT_DECLINED)
}

// Capture implements orders.Payments.
func (a *Payments) Capture(ctx context.Context, orderID string, amount orders.Money) error {
	_, err := a.c.Capture(ctx, &paymentv1.CaptureRequest{OrderId: orderID, Amount: money(amount)})
	return stepError(err, errorsv1.ErrorReason_PAYMENT_STATE_CONFLICT)
}

// Refund implements orders.Payments.
func (a *Payments) Refund(ctx context.Context, orderID string) error {
	_, err := a.c.Refund(ctx, &paymentv1.RefundRequest{OrderId: orderID})
	return stepError(err, errorsv1.ErrorReason_PAYMENT_STATE_CONFLICT)
}

// stepError classifies a failed call. Unavailability, timeouts and server
// faults that outlasted the channel's retries are transient (the saga
// compensates and names the dependency's reason, or
// DEPENDENCY_UNAVAILABLE); refusals (no stock, a decline, a bad state) are
// permanent, named by the callee's reason or fallback. A call ended by the
// caller's own context is returned as is: the saga is interrupted, not
// failed.
func stepError(err error, fallback errorsv1.ErrorReason) error {
	if err == nil {
		return nil
	}
	st := status.Convert(err)
	reason := errorsv1.ErrorReason(errorsv1.ErrorReason_value[apperr.Reason(err)])
	switch st.Code() {
	case codes.Canceled:
		return err
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.Unknown, codes.DataLoss:
		if reason == errorsv1.ErrorReason_ERROR_REASON_UNSPECIFIED || reason == errorsv1.ErrorReason_INTERNAL {
			reason = errorsv1.ErrorReason_DEPENDENCY_UNAVAILABLE
		}
		return &orders.StepError{Reason: reason, Transient: true, Deadline: st.Code() == codes.DeadlineExceeded, Err: err}
	}
	if reason == errorsv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		reason = fallback
	}
	return &orders.StepError{Reason: reason, Err: errors.New(st.Message())}
}
