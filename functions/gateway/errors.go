package gateway

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	"github.com/shopfn/shopfn/shared/apperr"
)

// Errors the gateway answers itself, before any service sees the request.
var (
	errBodyTooLarge = apperr.New(apperr.Exhausted, errorsv1.ErrorReason_MESSAGE_TOO_LARGE, "request body too large")
	// errOrigin refuses a browser origin not in SHOPFN_GATEWAY_CORS_ORIGINS.
	// No reason names CORS; PERMISSION_DENIED is the closest.
	errOrigin   = apperr.New(apperr.PermissionDenied, errorsv1.ErrorReason_PERMISSION_DENIED, "origin not allowed")
	errNoRoute  = apperr.New(apperr.NotFound, errorsv1.ErrorReason_METHOD_NOT_ALLOWED, "no such method")
	errInternal = apperr.New(apperr.Internal, errorsv1.ErrorReason_INTERNAL, "internal error")
)

// statusJSON marshals google.rpc.Status the way the proxy's marshaler does.
var statusJSON = protojson.MarshalOptions{UseProtoNames: true}

// HTTPStatus is the HTTP status of a gRPC status: grpc-gateway's table
// (InvalidArgument 400, Unauthenticated 401, PermissionDenied 403, NotFound
// 404, AlreadyExists and Aborted 409, ResourceExhausted 429, Unavailable 503,
// DeadlineExceeded 504, …), except that a message too large is 413.
func HTTPStatus(st *status.Status) int {
	if st.Code() == codes.ResourceExhausted && reasonOf(st) == errorsv1.ErrorReason_MESSAGE_TOO_LARGE.String() {
		return http.StatusRequestEntityTooLarge
	}
	return runtime.HTTPStatusFromCode(st.Code())
}

// handleError is the proxy's error handler (runtime.ErrorHandlerFunc): the
// errors of calls to the services, and the proxy's own (a body that is not
// valid JSON or has unknown fields, a bad path parameter).
func (g *gateway) handleError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	httpStatus := 0
	var hs *runtime.HTTPStatusError
	if errors.As(err, &hs) {
		httpStatus, err = hs.HTTPStatus, hs.Err
	}
	var st *status.Status
	if stateFrom(ctx).bodyTooLarge {
		st, _ = apperr.Status(errBodyTooLarge)
	} else {
		st = g.normalize(ctx, status.Convert(err))
	}
	g.writeStatus(w, st, httpStatus)
}

// streamError is the proxy's error handler for a server stream that fails
// after it started (the error becomes the stream's last line).
func (g *gateway) streamError(ctx context.Context, err error) *status.Status {
	return g.normalize(ctx, status.Convert(err))
}

// handleRoutingError answers a path or HTTP method no rule maps.
func (g *gateway) handleRoutingError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		// grpc-gateway's choice of code; the HTTP status says it exactly.
		st := withReason(codes.Unimplemented, errorsv1.ErrorReason_METHOD_NOT_ALLOWED, "HTTP method not allowed on this path", nil)
		g.writeStatus(w, st, http.StatusMethodNotAllowed)
	case http.StatusNotFound:
		st, _ := apperr.Status(errNoRoute)
		g.writeStatus(w, st, 0)
	default:
		st, _ := apperr.Status(apperr.Invalidf("path", "%s", http.StatusText(httpStatus)))
		g.writeStatus(w, st, httpStatus)
	}
}

// writeError answers with err, an error of the gateway's own.
func (g *gateway) writeError(w http.ResponseWriter, _ *http.Request, err *apperr.Error) {
	st, _ := apperr.Status(err)
	g.writeStatus(w, st, 0)
}

// writeStatus writes st as google.rpc.Status JSON with its HTTP status (or
// httpStatus when not zero).
func (g *gateway) writeStatus(w http.ResponseWriter, st *status.Status, httpStatus int) {
	body, err := statusJSON.Marshal(st.Proto())
	if err != nil {
		body = []byte(`{"code":13,"message":"internal error"}`)
		httpStatus = http.StatusInternalServerError
	}
	if httpStatus == 0 {
		httpStatus = HTTPStatus(st)
	}
	h := w.Header()
	h.Del("Trailer")
	h.Del("Transfer-Encoding")
	h.Set("Content-Type", "application/json")
	switch st.Code() {
	case codes.Unauthenticated:
		h.Set("WWW-Authenticate", `Bearer realm="shopfn"`)
	case codes.ResourceExhausted:
		if ms, err := strconv.ParseInt(metadataOf(st)["retry_after_ms"], 10, 64); err == nil && ms > 0 {
			h.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(float64(ms)/1000)), 10))
		}
	}
	w.WriteHeader(httpStatus)
	w.Write(body)
}

// normalize gives every error an ErrorInfo reason and keeps internals out
// of client messages; the code stays. The services' own errors already
// carry a reason and pass unchanged; what lacks one comes from the proxy or
// the transport: a body the proxy could not decode (InvalidArgument), a
// service that cannot be reached (Unavailable, whose transport message
// names addresses), or an unexpected failure.
func (g *gateway) normalize(ctx context.Context, st *status.Status) *status.Status {
	if reasonOf(st) != "" {
		return st
	}
	msg := st.Message()
	var reason errorsv1.ErrorReason
	switch st.Code() {
	case codes.InvalidArgument, codes.OutOfRange:
		reason = errorsv1.ErrorReason_INVALID_ARGUMENT
	case codes.Unauthenticated:
		reason = errorsv1.ErrorReason_TOKEN_INVALID
	case codes.PermissionDenied:
		reason = errorsv1.ErrorReason_PERMISSION_DENIED
	case codes.ResourceExhausted:
		// grpc-go's own limit: a message larger than the channel accepts.
		reason, msg = errorsv1.ErrorReason_MESSAGE_TOO_LARGE, "message too large"
	case codes.Unimplemented:
		reason, msg = errorsv1.ErrorReason_METHOD_NOT_ALLOWED, "method not implemented"
	case codes.Unavailable:
		g.log.WarnContext(ctx, "service unavailable", "request_id", stateFrom(ctx).id, "error", msg)
		reason, msg = errorsv1.ErrorReason_DEPENDENCY_UNAVAILABLE, "service unavailable"
	case codes.Internal, codes.Unknown, codes.DataLoss:
		g.log.ErrorContext(ctx, "unexpected error", "request_id", stateFrom(ctx).id, "code", st.Code().String(), "error", msg)
		reason, msg = errorsv1.ErrorReason_INTERNAL, "internal error"
	default:
		// DeadlineExceeded and Canceled have no reason: the code says it.
		return st
	}
	return withReason(st.Code(), reason, msg, nil)
}

// withReason is a status with an ErrorInfo in shopfn's domain.
func withReason(code codes.Code, reason errorsv1.ErrorReason, msg string, md map[string]string) *status.Status {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason.String(), Domain: apperr.Domain, Metadata: md}); err == nil {
		return d
	}
	return st
}

// reasonOf returns the ErrorInfo reason of st, or "".
func reasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// metadataOf returns the ErrorInfo metadata of st, or nil.
func metadataOf(st *status.Status) map[string]string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetMetadata()
		}
	}
	return nil
}
