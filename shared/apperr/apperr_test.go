package apperr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	"github.com/shopfn/shopfn/shared/apperr"
)

var errTaken = apperr.New(apperr.Conflict, errorsv1.ErrorReason_EMAIL_TAKEN, "email already registered")

func TestStatus(t *testing.T) {
	tests := []struct {
		name        string
		in          error
		wantCode    codes.Code
		wantReason  string
		wantMsg     string
		wantUnknown bool
	}{
		{"sentinel", errTaken, codes.AlreadyExists, "EMAIL_TAKEN", "email already registered", false},
		{"wrapped sentinel", fmt.Errorf("register: %w", errTaken), codes.AlreadyExists, "EMAIL_TAKEN", "email already registered", false},
		{"cause is not shown", errTaken.Wrap(errors.New("UNIQUE constraint failed: users.email")), codes.AlreadyExists, "EMAIL_TAKEN", "email already registered", false},
		{"unclassified", errors.New("disk on fire at /var/lib/x"), codes.Internal, "INTERNAL", "internal error", true},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "", "deadline exceeded", false},
		{"canceled", context.Canceled, codes.Canceled, "", "request canceled", false},
		{"field", apperr.Invalidf("update_mask", "unknown path %q", "email"), codes.InvalidArgument, "INVALID_ARGUMENT", `invalid update_mask: unknown path "email"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, unknown := apperr.Status(tt.in)
			if st.Code() != tt.wantCode || st.Message() != tt.wantMsg || unknown != tt.wantUnknown {
				t.Errorf("Status(%v) = %v %q unknown=%v, want %v %q unknown=%v", tt.in, st.Code(), st.Message(), unknown, tt.wantCode, tt.wantMsg, tt.wantUnknown)
			}
			if got := apperr.Reason(st.Err()); got != tt.wantReason {
				t.Errorf("Reason(Status(%v)) = %q, want %q", tt.in, got, tt.wantReason)
			}
		})
	}
}

func TestMetadataTravels(t *testing.T) {
	st, _ := apperr.Status(errTaken.With("email", "a@b.c"))
	if got := apperr.Metadata(st.Err()); got["email"] != "a@b.c" {
		t.Errorf("Metadata = %v, want email a@b.c", got)
	}
}

func TestIsMatchesDerivedErrors(t *testing.T) {
	derived := errTaken.With("email", "a@b.c").Wrap(errors.New("cause"))
	if !errors.Is(fmt.Errorf("x: %w", derived), errTaken) {
		t.Errorf("errors.Is(derived, sentinel) = false, want true")
	}
	other := apperr.New(apperr.Conflict, errorsv1.ErrorReason_SKU_TAKEN, "sku taken")
	if errors.Is(derived, other) {
		t.Errorf("errors.Is(derived, other sentinel) = true, want false")
	}
	if errTaken.Metadata != nil {
		t.Errorf("With changed the sentinel's metadata: %v", errTaken.Metadata)
	}
}

func TestValidateFieldPaths(t *testing.T) {
	req := &orderv1.CreateOrderRequest{
		IdempotencyKey: "short",
		Lines:          []*orderv1.LineItem{{ProductId: "p1", Quantity: 1}, {ProductId: "p2", Quantity: 0}},
		ShippingAddress: &commonv1.Address{
			Name: "Zoë", Line1: "1 Rue", City: "Paris", CountryCode: "france",
		},
		PaymentToken: "tok_ok",
	}
	err := apperr.Validate(req)
	if err == nil {
		t.Fatal("Validate(bad request) = nil, want an error")
	}
	st, _ := apperr.Status(err)
	if st.Code() != codes.InvalidArgument || apperr.Reason(st.Err()) != "INVALID_ARGUMENT" {
		t.Fatalf("Status = %v %q, want InvalidArgument INVALID_ARGUMENT", st.Code(), apperr.Reason(st.Err()))
	}
	got := map[string]bool{}
	for _, f := range apperr.FieldViolations(st.Err()) {
		got[f.Field] = true
		if f.Description == "" {
			t.Errorf("violation %q has no description", f.Field)
		}
	}
	for _, want := range []string{"idempotency_key", "lines[1].quantity", "shipping_address.country_code"} {
		if !got[want] {
			t.Errorf("field violations %v lack %q", got, want)
		}
	}
	if len(got) != 3 {
		t.Errorf("field violations = %v, want exactly 3", got)
	}
	if err := apperr.Validate(&orderv1.GetOrderRequest{OrderId: "o1"}); err != nil {
		t.Errorf("Validate(valid) = %v, want nil", err)
	}
}
