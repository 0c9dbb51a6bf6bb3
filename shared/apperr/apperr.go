// Package apperr is shopfn's one error model.
//
// Domain packages return *Error values (usually package-level sentinels made
// with New) that say what kind of failure happened and which ErrorReason
// names it, without knowing about gRPC. At the edge, Status turns any error
// into a gRPC status through one table: the Kind picks the canonical code,
// the reason goes into a google.rpc.ErrorInfo, invalid fields into a
// google.rpc.BadRequest. Anything unclassified becomes Internal with a
// generic message; the caller logs the full error once.
package apperr

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"google.golang.org/grpc/codes"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
)

// Domain is the google.rpc.ErrorInfo domain of every shopfn error.
const Domain = "shopfn"

// Kind classifies a failure by what the caller can do about it. Each kind
// maps to exactly one gRPC code (see Code).
type Kind int

// The kinds. Do not reorder: the zero value must stay Internal so that an
// unclassified error never looks like the caller's fault.
const (
	Internal         Kind = iota // a bug or an unexpected failure
	Invalid                      // the request is malformed; fix it
	NotFound                     // the thing does not exist (for this caller)
	Conflict                     // it already exists
	Precondition                 // the system's state does not allow it
	Aborted                      // a concurrent change won; re-read and retry
	Unauthenticated              // no valid credentials
	PermissionDenied             // valid credentials, not allowed
	Exhausted                    // a rate or size limit was hit
	Unavailable                  // try again later
	DeadlineExceeded             // the request ran out of time
	Canceled                     // the caller went away
)

var kindCodes = [...]codes.Code{
	Internal:         codes.Internal,
	Invalid:          codes.InvalidArgument,
	NotFound:         codes.NotFound,
	Conflict:         codes.AlreadyExists,
	Precondition:     codes.FailedPrecondition,
	Aborted:          codes.Aborted,
	Unauthenticated:  codes.Unauthenticated,
	PermissionDenied: codes.PermissionDenied,
	Exhausted:        codes.ResourceExhausted,
	Unavailable:      codes.Unavailable,
	DeadlineExceeded: codes.DeadlineExceeded,
	Canceled:         codes.Canceled,
}

// Code is the gRPC code of the kind.
func (k Kind) Code() codes.Code {
	if k < 0 || int(k) >= len(kindCodes) {
		return codes.Internal
	}
	return kindCodes[k]
}

// FieldViolation names one invalid request field by its proto path
// ("shipping_address.country_code", "lines[2].quantity").
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a classified failure. Message is shown to clients, so it must not
// carry internals; Err (the cause) is only logged.
type Error struct {
	Kind     Kind
	Reason   errorsv1.ErrorReason
	Message  string
	Metadata map[string]string
	Fields   []FieldViolation
	Err      error
}

// New returns an error of the given kind and reason. Domain packages keep
// such values as sentinels (var ErrEmailTaken = apperr.New(...)) and match
// them with errors.Is.
func New(kind Kind, reason errorsv1.ErrorReason, message string) *Error {
	return &Error{Kind: kind, Reason: reason, Message: message}
}

// Error returns the client message, followed by the cause if there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel e was derived from (same kind
// and reason), so that errors.Is(With(ErrX, ...), ErrX) holds.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Reason == e.Reason && t.Message == e.Message
}

// With returns a copy of the sentinel e with metadata added, for details
// the client may use ("retry_after_ms", "sku").
func (e *Error) With(kv ...string) *Error {
	c := *e
	c.Metadata = maps.Clone(e.Metadata)
	if c.Metadata == nil {
		c.Metadata = make(map[string]string, len(kv)/2)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Metadata[kv[i]] = kv[i+1]
	}
	return &c
}

// Wrap returns a copy of the sentinel e caused by err (kept for the log,
// never sent to the client).
func (e *Error) Wrap(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

// Errorf returns an error of the given kind and reason with a formatted
// client message. The arguments end up in front of clients: pass no
// internals.
func Errorf(kind Kind, reason errorsv1.ErrorReason, format string, args ...any) *Error {
	return &Error{Kind: kind, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Invalidf returns an InvalidArgument error for one field.
func Invalidf(field, format string, args ...any) *Error {
	desc := fmt.Sprintf(format, args...)
	return &Error{
		Kind:    Invalid,
		Reason:  errorsv1.ErrorReason_INVALID_ARGUMENT,
		Message: "invalid " + field + ": " + desc,
		Fields:  []FieldViolation{{Field: field, Description: desc}},
	}
}

// Classify returns the *Error inside err. Errors that carry no
// classification are mapped by what they are (a context error keeps its
// meaning); the rest become Internal, and unknown reports that the caller
// must log err in full.
func Classify(err error) (e *Error, unknown bool) {
	if errors.As(err, &e) {
		return e, false
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: DeadlineExceeded, Message: "deadline exceeded", Err: err}, false
	case errors.Is(err, context.Canceled):
		return &Error{Kind: Canceled, Message: "request canceled", Err: err}, false
	}
	return &Error{Kind: Internal, Reason: errorsv1.ErrorReason_INTERNAL, Message: "internal error", Err: err}, true
}
