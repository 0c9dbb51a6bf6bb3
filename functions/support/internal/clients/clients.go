// Package clients adapts the order and user services' gRPC APIs to what the
// chat domain asks of them.
//
// Both calls are made with the end user's own credentials: the bearer token
// of the incoming request is put on the outgoing call, so the order service
// answers for that customer (NotFound for another customer's order) and no
// service-wide privilege is needed or used.
package clients

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/functions/support/internal/chat"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
)

// OrderMethods are the order service's methods support calls; all are
// reads, safe to retry.
func OrderMethods() []string { return []string{orderv1.OrderService_GetOrder_FullMethodName} }

// UserMethods are the user service's methods support calls; all are
// reads, safe to retry.
func UserMethods() []string { return []string{userv1.UserService_GetUser_FullMethodName} }

// Orders is chat.Orders over gRPC.
type Orders struct {
	c orderv1.OrderServiceClient
}

var _ chat.Orders = (*Orders)(nil)

// NewOrders returns the adapter on cc.
func NewOrders(cc grpc.ClientConnInterface) *Orders {
	return &Orders{c: orderv1.NewOrderServiceClient(cc)}
}

// CheckAccess implements chat.Orders: GetOrder as the caller.
func (o *Orders) CheckAccess(ctx context.Context, id string) error {
	_, err := o.c.GetOrder(asCaller(ctx), &orderv1.GetOrderRequest{OrderId: id})
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.NotFound, codes.PermissionDenied:
		return chat.ErrRoomForbidden
	}
	return failure(ctx, err)
}

// Names is chat.Names over gRPC.
type Names struct {
	c userv1.UserServiceClient
}

var _ chat.Names = (*Names)(nil)

// NewNames returns the adapter on cc.
func NewNames(cc grpc.ClientConnInterface) *Names {
	return &Names{c: userv1.NewUserServiceClient(cc)}
}

// DisplayName implements chat.Names: GetUser as the caller.
func (n *Names) DisplayName(ctx context.Context, user string) (string, error) {
	resp, err := n.c.GetUser(asCaller(ctx), &userv1.GetUserRequest{UserId: user})
	if err != nil {
		return "", failure(ctx, err)
	}
	return resp.GetUser().GetDisplayName(), nil
}

// failure classifies a failed call: the caller's own cancellation stays
// what it is, anything else is the dependency's fault.
func failure(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return chat.ErrDependency.Wrap(err)
}

// asCaller returns ctx with the incoming request's authorization header on
// the outgoing call.
func asCaller(ctx context.Context) context.Context {
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		return metadata.AppendToOutgoingContext(ctx, "authorization", v[0])
	}
	return ctx
}
