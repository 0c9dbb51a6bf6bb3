package serve

import (
	"context"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/shared/apperr"
)

// errPanic is what a client sees when a handler panics.
var errPanic = status.Error(codes.Internal, "internal error")

func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, errPanic
		}
	}()
	return handler(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ss.Context(), "panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			err = errPanic
		}
	}()
	return handler(srv, ss)
}

// toStatus maps a handler's error to what the client receives, logging
// unclassified errors in full, once. Errors that already are gRPC statuses
// (from the transport, or relayed from a service called downstream) pass
// unchanged.
func (s *Server) toStatus(ctx context.Context, method string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	st, unknown := apperr.Status(err)
	if unknown {
		s.log.ErrorContext(ctx, "unclassified error", "method", method, "error", err.Error())
	}
	return st.Err()
}

func (s *Server) mapErrorsUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		return nil, s.toStatus(ctx, info.FullMethod, err)
	}
	return resp, nil
}

func (s *Server) mapErrorsStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := handler(srv, ss); err != nil {
		return s.toStatus(ss.Context(), info.FullMethod, err)
	}
	return nil
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.authn.Authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authn.Authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &stream{ServerStream: ss, ctx: ctx})
}

func validateUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if v, ok := req.(apperr.Validator); ok {
		if err := apperr.Validate(v); err != nil {
			return nil, err
		}
	}
	return handler(ctx, req)
}

func validateStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &stream{ServerStream: ss, ctx: ss.Context(), validate: true})
}

// stream overrides a server stream's context (to carry the principal) and
// validates every received message.
type stream struct {
	grpc.ServerStream
	ctx      context.Context
	validate bool
}

func (s *stream) Context() context.Context { return s.ctx }

func (s *stream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if v, ok := m.(apperr.Validator); ok && s.validate {
		if err := apperr.Validate(v); err != nil {
			return err
		}
	}
	return nil
}
