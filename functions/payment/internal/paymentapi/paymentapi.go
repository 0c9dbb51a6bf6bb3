// Package paymentapi is the payment service's gRPC transport: it turns
// requests into charge calls and payments into responses.
package paymentapi

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shopfn/shopfn/functions/payment/internal/charge"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	paymentv1 "github.com/shopfn/shopfn/proto/shopfn/payment/v1"
)

// Server implements paymentv1.PaymentServiceServer.
type Server struct {
	paymentv1.UnimplementedPaymentServiceServer
	svc *charge.Service
}

// New returns the transport for svc.
func New(svc *charge.Service) *Server { return &Server{svc: svc} }

// Authorize implements paymentv1.PaymentServiceServer.
func (s *Server) Authorize(ctx context.Context, req *paymentv1.AuthorizeRequest) (*paymentv1.AuthorizeResponse, error) {
	p, err := s.svc.Authorize(ctx, req.GetOrderId(), fromMoney(req.GetAmount()), req.GetPaymentToken())
	if err != nil {
		return nil, err
	}
	return &paymentv1.AuthorizeResponse{Payment: toProto(p)}, nil
}

// Capture implements paymentv1.PaymentServiceServer.
func (s *Server) Capture(ctx context.Context, req *paymentv1.CaptureRequest) (*paymentv1.CaptureResponse, error) {
	var amount *charge.Money
	if m := req.GetAmount(); m != nil {
		a := fromMoney(m)
		amount = &a
	}
	p, err := s.svc.Capture(ctx, req.GetOrderId(), amount)
	if err != nil {
		return nil, err
	}
	return &paymentv1.CaptureResponse{Payment: toProto(p)}, nil
}

// Refund implements paymentv1.PaymentServiceServer.
func (s *Server) Refund(ctx context.Context, req *paymentv1.RefundRequest) (*paymentv1.RefundResponse, error) {
	p, ok, err := s.svc.Refund(ctx, req.GetOrderId())
	if err != nil {
		return nil, err
	}
	if !ok {
		return &paymentv1.RefundResponse{}, nil
	}
	return &paymentv1.RefundResponse{Payment: toProto(p)}, nil
}

// GetPayment implements paymentv1.PaymentServiceServer.
func (s *Server) GetPayment(ctx context.Context, req *paymentv1.GetPaymentRequest) (*paymentv1.GetPaymentResponse, error) {
	p, err := s.svc.Get(ctx, req.GetOrderId())
	if err != nil {
		return nil, err
	}
	return &paymentv1.GetPaymentResponse{Payment: toProto(p)}, nil
}

func fromMoney(m *commonv1.Money) charge.Money {
	return charge.Money{Currency: m.GetCurrencyCode(), Minor: m.GetAmountMinor()}
}

func money(currency string, minor int64) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: currency, AmountMinor: minor}
}

var states = map[charge.State]paymentv1.PaymentState{
	charge.StateAuthorized: paymentv1.PaymentState_PAYMENT_STATE_AUTHORIZED,
	charge.StateCaptured:   paymentv1.PaymentState_PAYMENT_STATE_CAPTURED,
	charge.StateRefunded:   paymentv1.PaymentState_PAYMENT_STATE_REFUNDED,
	charge.StateVoided:     paymentv1.PaymentState_PAYMENT_STATE_VOIDED,
	charge.StateDeclined:   paymentv1.PaymentState_PAYMENT_STATE_DECLINED,
}

func toProto(p charge.Payment) *paymentv1.Payment {
	cur := p.Amount.Currency
	return &paymentv1.Payment{
		Id:          p.ID,
		OrderId:     p.OrderID,
		State:       states[p.State],
		Amount:      money(cur, p.Amount.Minor),
		Authorized:  money(cur, p.Authorized()),
		Captured:    money(cur, p.Captured),
		Refunded:    money(cur, p.Refunded),
		CardBrand:   p.CardBrand,
		CardLast4:   p.CardLast4,
		DeclineCode: p.DeclineCode,
		CreateTime:  timestamppb.New(p.Created),
		UpdateTime:  timestamppb.New(p.Updated),
	}
}
