// Package inventoryapi is the inventory service's gRPC transport: it turns
// requests into stock calls and stock and reservations into responses.
package inventoryapi

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shopfn/shopfn/functions/inventory/internal/stock"
	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
)

// Server implements inventoryv1.InventoryServiceServer.
type Server struct {
	inventoryv1.UnimplementedInventoryServiceServer
	svc *stock.Service
}

// New returns the transport for svc.
func New(svc *stock.Service) *Server { return &Server{svc: svc} }

// SetStock implements inventoryv1.InventoryServiceServer.
func (s *Server) SetStock(ctx context.Context, req *inventoryv1.SetStockRequest) (*inventoryv1.SetStockResponse, error) {
	st, err := s.svc.SetStock(ctx, req.GetSku(), req.GetOnHand())
	if err != nil {
		return nil, err
	}
	return &inventoryv1.SetStockResponse{Stock: stockProto(st)}, nil
}

// GetStock implements inventoryv1.InventoryServiceServer.
func (s *Server) GetStock(ctx context.Context, req *inventoryv1.GetStockRequest) (*inventoryv1.GetStockResponse, error) {
	st, err := s.svc.Stock(ctx, req.GetSku())
	if err != nil {
		return nil, err
	}
	return &inventoryv1.GetStockResponse{Stock: stockProto(st)}, nil
}

// Reserve implements inventoryv1.InventoryServiceServer.
func (s *Server) Reserve(ctx context.Context, req *inventoryv1.ReserveRequest) (*inventoryv1.ReserveResponse, error) {
	lines := make([]stock.Line, len(req.GetLines()))
	for i, l := range req.GetLines() {
		lines[i] = stock.Line{SKU: l.GetSku(), Quantity: int64(l.GetQuantity())}
	}
	r, err := s.svc.Reserve(ctx, req.GetOrderId(), lines)
	if err != nil {
		return nil, err
	}
	return &inventoryv1.ReserveResponse{Reservation: reservationProto(r)}, nil
}

// Commit implements inventoryv1.InventoryServiceServer.
func (s *Server) Commit(ctx context.Context, req *inventoryv1.CommitRequest) (*inventoryv1.CommitResponse, error) {
	r, err := s.svc.Commit(ctx, req.GetOrderId())
	if err != nil {
		return nil, err
	}
	return &inventoryv1.CommitResponse{Reservation: reservationProto(r)}, nil
}

// Release implements inventoryv1.InventoryServiceServer.
func (s *Server) Release(ctx context.Context, req *inventoryv1.ReleaseRequest) (*inventoryv1.ReleaseResponse, error) {
	r, found, err := s.svc.Release(ctx, req.GetOrderId())
	if err != nil {
		return nil, err
	}
	if !found {
		return &inventoryv1.ReleaseResponse{}, nil
	}
	return &inventoryv1.ReleaseResponse{Reservation: reservationProto(r)}, nil
}

// ReleaseExpired implements inventoryv1.InventoryServiceServer.
func (s *Server) ReleaseExpired(ctx context.Context, req *inventoryv1.ReleaseExpiredRequest) (*inventoryv1.ReleaseExpiredResponse, error) {
	n, err := s.svc.ReleaseExpired(ctx, int(req.GetLimit()))
	if err != nil {
		return nil, err
	}
	return &inventoryv1.ReleaseExpiredResponse{Released: int32(n)}, nil
}

func stockProto(s stock.Stock) *inventoryv1.Stock {
	return &inventoryv1.Stock{
		Sku:        s.SKU,
		OnHand:     s.OnHand,
		Reserved:   s.Reserved,
		Available:  s.Available(),
		UpdateTime: timestamppb.New(s.Updated),
	}
}

func stateProto(s stock.State) inventoryv1.ReservationState {
	switch s {
	case stock.Reserved:
		return inventoryv1.ReservationState_RESERVATION_STATE_RESERVED
	case stock.Committed:
		return inventoryv1.ReservationState_RESERVATION_STATE_COMMITTED
	case stock.Released:
		return inventoryv1.ReservationState_RESERVATION_STATE_RELEASED
	case stock.Expired:
		return inventoryv1.ReservationState_RESERVATION_STATE_EXPIRED
	}
	return inventoryv1.ReservationState_RESERVATION_STATE_UNSPECIFIED
}

func reservationProto(r stock.Reservation) *inventoryv1.Reservation {
	lines := make([]*inventoryv1.Line, len(r.Lines))
	for i, l := range r.Lines {
		lines[i] = &inventoryv1.Line{Sku: l.SKU, Quantity: int32(l.Quantity)}
	}
	return &inventoryv1.Reservation{
		OrderId:    r.OrderID,
		Lines:      lines,
		State:      stateProto(r.State),
		ExpireTime: timestamppb.New(r.Expires),
		CreateTime: timestamppb.New(r.Created),
	}
}
