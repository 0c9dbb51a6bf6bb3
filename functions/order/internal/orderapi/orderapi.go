// Package orderapi is the order service's gRPC transport.
package orderapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shopfn/shopfn/functions/order/internal/orders"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
)

// Page sizes of ListOrders.
const (
	defaultPageSize = 20
	maxPageSize     = 100
)

// defaultResumeLimit is how many sagas one Resume call continues when the
// request does not say (see ResumeRequest).
const defaultResumeLimit = 100

// Server implements orderv1.OrderServiceServer.
type Server struct {
	orderv1.UnimplementedOrderServiceServer
	svc *orders.Service
}

// New returns the transport for svc.
func New(svc *orders.Service) *Server { return &Server{svc: svc} }

// CreateOrder implements orderv1.OrderServiceServer.
func (s *Server) CreateOrder(ctx context.Context, req *orderv1.CreateOrderRequest) (*orderv1.CreateOrderResponse, error) {
	caller, _ := auth.FromContext(ctx)
	o, err := s.svc.Create(ctx, caller, req.GetIdempotencyKey(), req)
	if err != nil {
		return nil, err
	}
	return &orderv1.CreateOrderResponse{Order: ToProto(o)}, nil
}

// GetOrder implements orderv1.OrderServiceServer.
func (s *Server) GetOrder(ctx context.Context, req *orderv1.GetOrderRequest) (*orderv1.GetOrderResponse, error) {
	caller, _ := auth.FromContext(ctx)
	o, err := s.svc.Get(ctx, caller, req.GetOrderId())
	if err != nil {
		return nil, err
	}
	return &orderv1.GetOrderResponse{Order: ToProto(o)}, nil
}

// pageToken is the opaque ListOrders cursor, bound to the user filter.
type pageToken struct {
	User    string `json:"u"`
	Created int64  `json:"c"`
	ID      string `json:"i"`
}

var errBadPageToken = apperr.New(apperr.Invalid, errorsv1.ErrorReason_INVALID_PAGE_TOKEN, "invalid page_token: pass next_page_token of the same query")

// ListOrders implements orderv1.OrderServiceServer.
func (s *Server) ListOrders(ctx context.Context, req *orderv1.ListOrdersRequest) (*orderv1.ListOrdersResponse, error) {
	caller, _ := auth.FromContext(ctx)
	user := req.GetUserId()
	if caller.Role == auth.RoleCustomer {
		user = caller.Subject
	}
	var after orders.Cursor
	if req.GetPageToken() != "" {
		raw, err := base64.RawURLEncoding.DecodeString(req.GetPageToken())
		var t pageToken
		if err != nil || json.Unmarshal(raw, &t) != nil || t.User != user || t.ID == "" {
			return nil, errBadPageToken
		}
		after = orders.Cursor{Created: time.UnixMicro(t.Created), ID: t.ID}
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultPageSize
	}
	size = min(size, maxPageSize)
	list, err := s.svc.List(ctx, caller, user, after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &orderv1.ListOrdersResponse{}
	if len(list) > size {
		last := list[size-1]
		b, _ := json.Marshal(pageToken{User: user, Created: last.Created.UnixMicro(), ID: last.ID})
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString(b)
		list = list[:size]
	}
	for _, o := range list {
		resp.Orders = append(resp.Orders, ToProto(o))
	}
	return resp, nil
}

// CancelOrder implements orderv1.OrderServiceServer.
func (s *Server) CancelOrder(ctx context.Context, req *orderv1.CancelOrderRequest) (*orderv1.CancelOrderResponse, error) {
	caller, _ := auth.FromContext(ctx)
	o, err := s.svc.Cancel(ctx, caller, req.GetOrderId())
	if err != nil {
		return nil, err
	}
	return &orderv1.CancelOrderResponse{Order: ToProto(o)}, nil
}

// WatchOrder implements orderv1.OrderServiceServer.
func (s *Server) WatchOrder(req *orderv1.WatchOrderRequest, stream orderv1.OrderService_WatchOrderServer) error {
	caller, _ := auth.FromContext(stream.Context())
	return s.svc.Watch(stream.Context(), caller, req.GetOrderId(), func(o orders.Order) error {
		return stream.Send(&orderv1.WatchOrderResponse{Order: ToProto(o)})
	})
}

// AttachInvoice implements orderv1.OrderServiceServer.
func (s *Server) AttachInvoice(ctx context.Context, req *orderv1.AttachInvoiceRequest) (*orderv1.AttachInvoiceResponse, error) {
	inv := req.GetInvoice()
	created := time.Now()
	if inv.GetCreateTime() != nil {
		created = inv.GetCreateTime().AsTime()
	}
	o, err := s.svc.AttachInvoice(ctx, req.GetOrderId(), orders.Invoice{Number: inv.GetNumber(), Object: inv.GetObject(), Created: created.UTC()})
	if err != nil {
		return nil, err
	}
	return &orderv1.AttachInvoiceResponse{Order: ToProto(o)}, nil
}

// Resume implements orderv1.OrderServiceServer.
func (s *Server) Resume(ctx context.Context, req *orderv1.ResumeRequest) (*orderv1.ResumeResponse, error) {
	idle := time.Duration(req.GetMinIdleSeconds()) * time.Second
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = defaultResumeLimit
	}
	r, err := s.svc.Resume(ctx, idle, limit)
	if err != nil {
		return nil, err
	}
	return &orderv1.ResumeResponse{Resumed: int32(r.Resumed), Confirmed: int32(r.Confirmed), Cancelled: int32(r.Cancelled), Pending: int32(r.Pending)}, nil
}

func stateProto(s orders.State) orderv1.OrderState {
	switch s {
	case orders.Pending:
		return orderv1.OrderState_ORDER_STATE_PENDING
	case orders.Reserved:
		return orderv1.OrderState_ORDER_STATE_RESERVED
	case orders.Authorized:
		return orderv1.OrderState_ORDER_STATE_AUTHORIZED
	case orders.Confirmed:
		return orderv1.OrderState_ORDER_STATE_CONFIRMED
	case orders.Cancelling:
		return orderv1.OrderState_ORDER_STATE_CANCELLING
	case orders.Cancelled:
		return orderv1.OrderState_ORDER_STATE_CANCELLED
	}
	return orderv1.OrderState_ORDER_STATE_UNSPECIFIED
}

func money(m orders.Money) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: m.Currency, AmountMinor: m.Minor}
}

// ToProto converts an order for clients; the payment token and saga
// bookkeeping stay inside.
func ToProto(o orders.Order) *orderv1.Order {
	p := &orderv1.Order{
		Id: o.ID, UserId: o.UserID, State: stateProto(o.State),
		Subtotal: money(o.Subtotal), Tax: money(o.Tax), Total: money(o.Total),
		ShippingAddress: o.Address, CancelReason: o.CancelReason, CancelMessage: o.CancelMessage,
		Version: o.Version, CreateTime: timestamppb.New(o.Created), UpdateTime: timestamppb.New(o.Updated),
	}
	for _, l := range o.Lines {
		p.Lines = append(p.Lines, &orderv1.OrderLine{
			ProductId: l.ProductID, Sku: l.SKU, Name: l.Name, Quantity: l.Quantity,
			UnitPrice: money(l.UnitPrice), LineTotal: money(l.Total()),
		})
	}
	if o.Invoice != nil {
		p.Invoice = &orderv1.Invoice{Number: o.Invoice.Number, Object: o.Invoice.Object, CreateTime: timestamppb.New(o.Invoice.Created)}
	}
	return p
}
