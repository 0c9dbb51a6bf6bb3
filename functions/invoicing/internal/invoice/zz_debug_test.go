package invoice

import (
	"fmt"
	"os"
	"strings"
	"testing"

	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
)

func TestZZDebug(t *testing.T) {
	many := make([]string, 60)
	for i := range many {
		many[i] = fmt.Sprintf("Product %d with a name long enough to wrap onto a second line of the table", i)
	}
	many[3] = strings.Repeat("Ab", 5000)
	many[4] = strings.Repeat("发", 10000)
	many[5] = "مرحبا بالعالم (hello) 123"
	many[6] = "שָׁלוֹם עולם 12"
	many[7] = "नमस्ते สวัสดี 한국어 😀"
	o := testOrder("ord_debug", many...)
	o.Lines[2].UnitPrice = money("USD", 922337203685477580)
	o.Lines[2].LineTotal = money("USD", 922337203685477580*3)
	var sum int64
	for _, l := range o.Lines { sum += l.LineTotal.AmountMinor }
	o.Subtotal, o.Tax, o.Total = money("USD", sum), money("USD", 1), money("USD", sum+1)
	b, err := Render(o, testSeller, testBuyer)
	if err != nil { t.Fatal(err) }
	os.WriteFile("/tmp/inv/many.pdf", b, 0o644)
	junk := "\x00\xff" + strings.Repeat("Ж发 ", 3000) + "\u202e😀"
	o = testOrder(junk, "Widget")
	o.ShippingAddress = &commonv1.Address{Name: junk, Line1: junk, Line2: junk, City: junk, Region: junk, PostalCode: junk, CountryCode: junk}
	o.Lines[0].Sku = junk
	b, err = Render(o, Seller{Name: junk, Address: o.ShippingAddress, TaxID: junk, Email: junk}, Buyer{Name: junk, Email: junk})
	if err != nil { t.Fatal(err) }
	os.WriteFile("/tmp/inv/junk.pdf", b, 0o644)
}
