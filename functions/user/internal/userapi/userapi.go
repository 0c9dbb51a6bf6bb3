// Package userapi is the user service's gRPC transport: it turns requests
// into account calls and accounts into responses.
package userapi

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shopfn/shopfn/functions/user/internal/account"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
)

// Server implements userv1.UserServiceServer.
type Server struct {
	userv1.UnimplementedUserServiceServer
	svc  *account.Service
	hops int
}

// New returns the transport for svc; proxyHops is how many trusted proxies
// append to X-Forwarded-For (see auth.ClientAddr).
func New(svc *account.Service, proxyHops int) *Server {
	return &Server{svc: svc, hops: proxyHops}
}

// Register implements userv1.UserServiceServer.
func (s *Server) Register(ctx context.Context, req *userv1.RegisterRequest) (*userv1.RegisterResponse, error) {
	a, err := s.svc.Register(ctx, req.GetEmail(), req.GetPassword(), req.GetDisplayName())
	if err != nil {
		return nil, err
	}
	return &userv1.RegisterResponse{User: toProto(a)}, nil
}

// Login implements userv1.UserServiceServer.
func (s *Server) Login(ctx context.Context, req *userv1.LoginRequest) (*userv1.LoginResponse, error) {
	a, tok, exp, err := s.svc.Login(ctx, req.GetEmail(), req.GetPassword(), auth.ClientAddr(ctx, s.hops))
	if err != nil {
		return nil, err
	}
	return &userv1.LoginResponse{AccessToken: tok, ExpireTime: timestamppb.New(exp), User: toProto(a)}, nil
}

// GetUser implements userv1.UserServiceServer.
func (s *Server) GetUser(ctx context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	caller, _ := auth.FromContext(ctx)
	a, err := s.svc.Get(ctx, caller, req.GetUserId())
	if err != nil {
		return nil, err
	}
	return &userv1.GetUserResponse{User: toProto(a)}, nil
}

// UpdateProfile implements userv1.UserServiceServer.
func (s *Server) UpdateProfile(ctx context.Context, req *userv1.UpdateProfileRequest) (*userv1.UpdateProfileResponse, error) {
	var p account.Patch
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, apperr.Invalidf("update_mask", "name at least one path")
	}
	for _, path := range paths {
		switch path {
		case "display_name":
			name := req.GetDisplayName()
			if name == "" {
				return nil, apperr.Invalidf("display_name", "must not be empty")
			}
			p.DisplayName = &name
		case "default_address":
			p.SetAddress, p.Address = true, req.GetDefaultAddress()
		default:
			return nil, apperr.Invalidf("update_mask", "unknown or read-only path %q (allowed: display_name, default_address)", path)
		}
	}
	caller, _ := auth.FromContext(ctx)
	a, err := s.svc.UpdateProfile(ctx, caller, req.GetUserId(), p)
	if err != nil {
		return nil, err
	}
	return &userv1.UpdateProfileResponse{User: toProto(a)}, nil
}

func roleProto(r auth.Role) userv1.Role {
	switch r {
	case auth.RoleCustomer:
		return userv1.Role_ROLE_CUSTOMER
	case auth.RoleAdmin:
		return userv1.Role_ROLE_ADMIN
	}
	return userv1.Role_ROLE_UNSPECIFIED
}

func toProto(a account.Account) *userv1.User {
	return &userv1.User{
		Id:             a.ID,
		Email:          a.Email,
		DisplayName:    a.DisplayName,
		Role:           roleProto(a.Role),
		DefaultAddress: a.DefaultAddress,
		CreateTime:     timestamppb.New(a.Created),
		UpdateTime:     timestamppb.New(a.Updated),
	}
}
