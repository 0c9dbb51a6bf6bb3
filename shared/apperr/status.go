package apperr

import (
	"strings"
	"unicode"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// Status converts err into the gRPC status a client receives: the kind's
// code, the client message, an ErrorInfo with the reason, and a BadRequest
// listing invalid fields. unknown reports an unclassified error, which the
// caller must log in full (once) because the client only sees "internal
// error".
func Status(err error) (st *status.Status, unknown bool) {
	e, unknown := Classify(err)
	st = status.New(e.Kind.Code(), e.Message)
	if e.Reason == 0 && len(e.Fields) == 0 {
		return st, unknown
	}
	details := make([]protoadapt.MessageV1, 0, 2)
	if e.Reason != 0 {
		details = append(details, &errdetails.ErrorInfo{Reason: e.Reason.String(), Domain: Domain, Metadata: e.Metadata})
	}
	if len(e.Fields) > 0 {
		br := &errdetails.BadRequest{FieldViolations: make([]*errdetails.BadRequest_FieldViolation, len(e.Fields))}
		for i, f := range e.Fields {
			br.FieldViolations[i] = &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Description}
		}
		details = append(details, br)
	}
	if withDetails, derr := st.WithDetails(details...); derr == nil {
		st = withDetails
	}
	return st, unknown
}

// Reason returns the ErrorInfo reason of a status error received from a
// shopfn service, or "" if it has none.
func Reason(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// Metadata returns the ErrorInfo metadata of a status error received from
// a shopfn service (e.g. "retry_after_ms", "sku"), or nil.
func Metadata(err error) map[string]string {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetMetadata()
		}
	}
	return nil
}

// FieldViolations returns the BadRequest field violations of a status error
// received from a shopfn service.
func FieldViolations(err error) []FieldViolation {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	var out []FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	return out
}

// snakeCase turns a Go field name from generated code ("DisplayName",
// "Line1") back into its proto name ("display_name", "line1").
func snakeCase(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 4)
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
