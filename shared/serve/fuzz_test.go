package serve_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	supportv1 "github.com/shopfn/shopfn/proto/shopfn/support/v1"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
	"github.com/shopfn/shopfn/shared/apperr"
)

// fuzzTypes are request types whose bytes the fuzzer decodes, as the server
// would, then validates through the same path the interceptor uses.
var fuzzTypes = []func() apperr.Validator{
	func() apperr.Validator { return &userv1.RegisterRequest{} },
	func() apperr.Validator { return &userv1.LoginRequest{} },
	func() apperr.Validator { return &userv1.UpdateProfileRequest{} },
	func() apperr.Validator { return &orderv1.CreateOrderRequest{} },
	func() apperr.Validator { return &catalogv1.UploadProductImageRequest{} },
	func() apperr.Validator { return &catalogv1.ListProductsRequest{} },
	func() apperr.Validator { return &supportv1.ChatRequest{} },
}

// FuzzDecodeValidate: decoding then validating arbitrary bytes never
// panics; a rejection is always InvalidArgument naming at least one field;
// an accepted message really satisfies the rules checked below.
func FuzzDecodeValidate(f *testing.F) {
	seeds := []proto.Message{
		&userv1.RegisterRequest{Email: "ann@example.com", Password: "correct horse battery", DisplayName: "Ann"},
		&userv1.RegisterRequest{Email: "bad", Password: "x"},
		&userv1.LoginRequest{Email: "ann@example.com", Password: "pw"},
		&userv1.UpdateProfileRequest{UserId: "usr_1", DisplayName: "Zoë", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}},
		&userv1.UpdateProfileRequest{UserId: "usr_1", DefaultAddress: &commonv1.Address{CountryCode: "france"}},
		&orderv1.CreateOrderRequest{IdempotencyKey: "key-12345", Lines: []*orderv1.LineItem{{ProductId: "p", Quantity: 1}},
			ShippingAddress: &commonv1.Address{Name: "张伟", Line1: "1", City: "北京", CountryCode: "CN"}, PaymentToken: "tok_ok"},
		&orderv1.CreateOrderRequest{Lines: []*orderv1.LineItem{{Quantity: -1}}},
		&catalogv1.UploadProductImageRequest{Part: &catalogv1.UploadProductImageRequest_Chunk{Chunk: []byte{0xff, 0xd8}}},
		&catalogv1.ListProductsRequest{PageSize: -5, CurrencyCode: "eur"},
		&supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Join{Join: &supportv1.JoinRoom{RoomId: "order:o1"}}},
	}
	for i, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	f.Add(uint8(0), []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		m := fuzzTypes[int(which)%len(fuzzTypes)]()
		if err := proto.Unmarshal(data, m.(proto.Message)); err != nil {
			return // the transport answers undecodable bytes itself
		}
		err := apperr.Validate(m)
		if err != nil {
			st, _ := apperr.Status(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("Validate(%v) gave %v, want InvalidArgument", m, st.Code())
			}
			fields := apperr.FieldViolations(st.Err())
			if len(fields) == 0 {
				t.Fatalf("Validate(%v) = %v with no field violations", m, err)
			}
			for _, fv := range fields {
				if fv.Field == "" || fv.Description == "" {
					t.Fatalf("Validate(%v): empty field violation %+v", m, fv)
				}
			}
			return
		}
		switch r := m.(type) {
		case *userv1.RegisterRequest:
			if n := utf8.RuneCountInString(r.GetPassword()); n < 10 || n > 128 || !strings.Contains(r.GetEmail(), "@") {
				t.Fatalf("accepted %v", r)
			}
		case *orderv1.CreateOrderRequest:
			if len(r.GetLines()) == 0 || r.GetShippingAddress() == nil {
				t.Fatalf("accepted %v", r)
			}
			for _, l := range r.GetLines() {
				if l.GetQuantity() <= 0 || l.GetQuantity() > 100 {
					t.Fatalf("accepted line %v", l)
				}
			}
		case *supportv1.ChatRequest:
			if r.GetKind() == nil {
				t.Fatalf("accepted a chat message with neither join nor post")
			}
		}
	})
}
