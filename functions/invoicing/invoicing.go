// Package invoicing is the invoicing function: on order.confirmed it
// renders the order's invoice PDF, writes it to the invoice bucket under a
// name fixed by the order id, and records it on the order with the
// internal AttachInvoice call.
//
// It is a CloudEvent function (functions-framework-go) fed by the push
// subscription invoicing-order-confirmed of infra/stack.yaml. Every step
// is idempotent, so a duplicate delivery changes nothing: an order that
// already has its invoice is skipped, the object name and the PDF bytes are
// the same on every run, and AttachInvoice accepts the same invoice again.
package invoicing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// buckets under shopfn dev
	_ "gocloud.dev/blob/gcsblob"  // gs:// buckets in the cloud
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/functions/invoicing/internal/invoice"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/events"
	"github.com/shopfn/shopfn/shared/events/function"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/serve"
)

// Name is the deployable's name.
const Name = "invoicing"

// Config is the invoicing function's configuration, read from the
// environment.
type Config struct {
	serve.Platform

	// BucketURL is where invoices go (a gocloud.dev/blob URL); empty means
	// the directory invoices in DataDir.
	BucketURL string `envconfig:"SHOPFN_INVOICES_BUCKET"`
	// OrderAddr is the order service: host:port (plaintext) or https://host.
	OrderAddr string `envconfig:"SHOPFN_ORDER_ADDR" default:"localhost:9005"`

	// The seller printed on every invoice.
	SellerName       string `envconfig:"SHOPFN_SELLER_NAME" default:"shopfn demo store"`
	SellerEmail      string `envconfig:"SHOPFN_SELLER_EMAIL" default:"billing@shopfn.local"`
	SellerTaxID      string `envconfig:"SHOPFN_SELLER_TAX_ID"`
	SellerLine1      string `envconfig:"SHOPFN_SELLER_LINE1" default:"1 Example Street"`
	SellerCity       string `envconfig:"SHOPFN_SELLER_CITY" default:"Exampleton"`
	SellerPostalCode string `envconfig:"SHOPFN_SELLER_POSTAL_CODE" default:"00000"`
	SellerCountry    string `envconfig:"SHOPFN_SELLER_COUNTRY" default:"DE"`
}

// Main runs the function as a container.
func Main(ctx context.Context) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	return function.Main(ctx, Name, cfg.Platform, cfg, func(ctx context.Context, d *serve.Deployment, log *slog.Logger) (events.Handler, error) {
		f, err := Open(ctx, cfg, d, log)
		if err != nil {
			return nil, err
		}
		return f.Handle, nil
	})
}

// Function handles order.confirmed events.
type Function struct {
	orders orderv1.OrderServiceClient
	bucket *blob.Bucket
	seller invoice.Seller
	log    *slog.Logger
}

// Open connects the function to the order service (with d's service
// credentials) and its bucket. The bucket closes with ctx.
func Open(ctx context.Context, cfg Config, d *serve.Deployment, log *slog.Logger) (*Function, error) {
	creds, err := d.ServiceCredentials()
	if err != nil {
		return nil, err
	}
	// GetOrder and AttachInvoice are both idempotent.
	cc, err := d.Dial(cfg.OrderAddr, []string{orderv1.OrderService_GetOrder_FullMethodName, orderv1.OrderService_AttachInvoice_FullMethodName}, creds)
	if err != nil {
		return nil, err
	}
	u, err := cfg.Bucket(cfg.BucketURL, "invoices")
	if err != nil {
		return nil, err
	}
	b, err := blob.OpenBucket(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("open invoice bucket: %w", err)
	}
	context.AfterFunc(ctx, func() { b.Close() })
	return &Function{
		orders: orderv1.NewOrderServiceClient(cc),
		bucket: b,
		seller: invoice.Seller{
			Name: cfg.SellerName, Email: cfg.SellerEmail, TaxID: cfg.SellerTaxID,
			Address: &commonv1.Address{
				Name: cfg.SellerName, Line1: cfg.SellerLine1, City: cfg.SellerCity,
				PostalCode: cfg.SellerPostalCode, CountryCode: cfg.SellerCountry,
			},
		},
		log: log,
	}, nil
}

// Handle invoices the order of an order.confirmed event.
func (f *Function) Handle(ctx context.Context, m events.Message) error {
	if m.Type != outbox.TypeOrderConfirmed {
		return events.Permanent(fmt.Errorf("invoicing takes %s events, not %q", outbox.TypeOrderConfirmed, m.Type))
	}
	var ev eventsv1.OrderConfirmed
	if err := m.Decode(&ev); err != nil {
		return err
	}
	if ev.GetOrderId() == "" {
		return events.Permanent(errors.New("order.confirmed without an order id"))
	}
	resp, err := f.orders.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: ev.GetOrderId()})
	if err != nil {
		return classify("get order "+ev.GetOrderId(), err)
	}
	o := resp.GetOrder()
	if o.GetInvoice() != nil {
		return nil // a duplicate delivery: done before
	}
	if o.GetState() == orderv1.OrderState_ORDER_STATE_CANCELLED {
		f.log.InfoContext(ctx, "order cancelled since it was confirmed: no invoice", "order_id", o.GetId())
		return nil
	}
	pdf, err := invoice.Render(o, f.seller, invoice.Buyer{Name: o.GetShippingAddress().GetName()})
	if err != nil {
		return events.Permanent(err) // the same order renders the same way next time
	}
	object := invoice.ObjectName(o.GetId())
	if err := f.bucket.WriteAll(ctx, object, pdf, &blob.WriterOptions{ContentType: "application/pdf"}); err != nil {
		return fmt.Errorf("write %s: %w", object, err)
	}
	_, err = f.orders.AttachInvoice(ctx, &orderv1.AttachInvoiceRequest{
		OrderId: o.GetId(),
		Invoice: &orderv1.Invoice{Number: invoice.Number(o), Object: object, CreateTime: o.GetCreateTime()},
	})
	if err != nil {
		return classify("attach invoice to "+o.GetId(), err)
	}
	return nil
}

// classify keeps errors that retrying can fix (unavailable, deadline,
// aborted, resource exhausted, internal) retryable and makes the rest
// permanent: a missing order or a refused call will not change.
func classify(what string, err error) error {
	err = fmt.Errorf("%s: %w", what, err)
	switch status.Code(err) {
	case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition, codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented:
		return events.Permanent(err)
	}
	return err
}
