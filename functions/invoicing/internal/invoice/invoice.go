// Package invoice draws the invoice PDF of a confirmed order and names it.
//
// Everything is deterministic: the same order gives the same invoice number,
// the same object name and the same PDF bytes, so a duplicate delivery of
// "order.confirmed" rewrites the same object with the same content.
//
// Text from users (product names, SKUs, addresses, the buyer) may be in any
// script and may be hostile. It is sanitised (see sanitize), wrapped or cut
// to its column, reordered for right-to-left scripts, and drawn with three
// embedded fonts: DejaVu Sans for Latin, Greek, Cyrillic, Hebrew, Arabic and
// symbols, Droid Sans Fallback for Chinese and Japanese, and Nanum Square
// for Korean (fonts/README.md says why each). Scripts that need shaping
// beyond what fpdf does (Arabic joining, Indic conjuncts) are drawn as
// isolated letters; characters no font has (Devanagari, Thai, …) are drawn
// as empty boxes but stay in the text layer, so they can still be copied
// and searched.
package invoice

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
)

// Seller is the business that issues the invoice, printed at the top. It
// comes from configuration, not from users, but is sanitised all the same.
type Seller struct {
	// Name is the legal name; it is also the PDF's author.
	Name string
	// Address is the postal address; nil prints none.
	Address *commonv1.Address
	// TaxID is the VAT or tax registration number; empty prints none.
	TaxID string
	// Email is the contact address; empty prints none.
	Email string
}

// Buyer is the customer billed. Either field may be empty; the block is left
// out when both are.
type Buyer struct {
	// Name is the customer's name as the user service knows it.
	Name string
	// Email is the customer's e-mail address.
	Email string
}

// Errors returned by Render. Both are permanent: rendering the same order
// again fails the same way, so an event that hits one should not be retried.
var (
	// ErrNotConfirmed means the order is not CONFIRMED: only a confirmed
	// order has an invoice.
	ErrNotConfirmed = errors.New("invoice: order is not confirmed")
	// ErrInvalidOrder means the order lacks what an invoice needs (id,
	// create time, amounts) or its amounts do not add up.
	ErrInvalidOrder = errors.New("invoice: invalid order")
)

// numberEncoding spells the hash part of invoice numbers in Crockford's
// base32 alphabet: upper case, and no I, L, O or U to misread on paper.
var numberEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// numberHashChars is the length of the hash part of an invoice number: 10
// base32 characters are 50 bits, enough that the numbers of one year's
// orders practically never collide (see Number) while staying short enough
// to read out on the phone.
const numberHashChars = 10

// Number returns the invoice number of an order: "INV-", the UTC year of its
// create time (0000 when it has none), "-", and 10 characters of the SHA-256
// of its id, e.g. "INV-2026-7K3QF0Z1MC". It depends on nothing else, so
// every delivery of the same order computes the same number. The numbers are
// not sequential; with 50 bits of hash, two orders of the same year share a
// number with probability n²/2⁵¹ (n orders): 4×10⁻⁴ for a million.
func Number(o *orderv1.Order) string {
	year := 0
	if ts := o.GetCreateTime(); ts != nil && ts.IsValid() {
		year = ts.AsTime().UTC().Year()
	}
	if year < 0 || year > 9999 {
		year = 0
	}
	sum := sha256.Sum256([]byte(o.GetId()))
	return fmt.Sprintf("INV-%04d-%s", year, numberEncoding.EncodeToString(sum[:])[:numberHashChars])
}

// ObjectName returns the bucket object name of an order's invoice:
// "invoices/<order id>.pdf". Order ids are [a-z0-9_] and pass unchanged;
// anything else is path-escaped (a "/" becomes "%2F"), so that an id can
// never name an object outside "invoices/" and two ids never share a name.
func ObjectName(orderID string) string {
	return "invoices/" + url.PathEscape(orderID) + ".pdf"
}

// Render draws the invoice of a CONFIRMED order as a PDF. The PDF's dates
// and the printed dates are the order's create time (UTC): the order carries
// no confirm time, and its update time changes when the invoice is attached,
// so it would make a redelivered event render different bytes. Render is
// safe for concurrent use. It returns ErrNotConfirmed or ErrInvalidOrder
// (wrapped, with the reason) for an order it will never render.
func Render(o *orderv1.Order, seller Seller, buyer Buyer) ([]byte, error) {
	if err := check(o); err != nil {
		return nil, err
	}
	fonts, err := loadFonts()
	if err != nil {
		return nil, fmt.Errorf("invoice: load fonts: %w", err)
	}
	return render(newModel(o, seller, buyer), fonts)
}

// check returns why o cannot be invoiced, or nil.
func check(o *orderv1.Order) error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOrder, fmt.Sprintf(format, args...))
	}
	switch {
	case o == nil:
		return invalid("no order")
	case o.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED:
		return fmt.Errorf("%w: order %q is %s", ErrNotConfirmed, o.GetId(), o.GetState())
	case o.GetId() == "":
		return invalid("no order id")
	case !o.GetCreateTime().IsValid():
		return invalid("order %q has no valid create_time", o.GetId())
	case o.GetSubtotal() == nil || o.GetTax() == nil || o.GetTotal() == nil:
		return invalid("order %q lacks subtotal, tax or total", o.GetId())
	}
	currency := o.GetTotal().GetCurrencyCode()
	amounts := []*commonv1.Money{o.GetSubtotal(), o.GetTax(), o.GetTotal()}
	for i, l := range o.GetLines() {
		if l.GetUnitPrice() == nil || l.GetLineTotal() == nil {
			return invalid("order %q line %d lacks a price", o.GetId(), i+1)
		}
		if l.GetQuantity() <= 0 {
			return invalid("order %q line %d has quantity %d", o.GetId(), i+1, l.GetQuantity())
		}
		amounts = append(amounts, l.GetUnitPrice(), l.GetLineTotal())
	}
	for _, m := range amounts {
		if m.GetAmountMinor() < 0 {
			return invalid("order %q has a negative amount", o.GetId())
		}
		if m.GetCurrencyCode() != currency {
			return invalid("order %q mixes currencies %q and %q", o.GetId(), currency, m.GetCurrencyCode())
		}
	}
	var sum int64
	for _, l := range o.GetLines() {
		var ok bool
		if sum, ok = add(sum, l.GetLineTotal().GetAmountMinor()); !ok {
			return invalid("order %q line totals overflow", o.GetId())
		}
	}
	if len(o.GetLines()) > 0 && sum != o.GetSubtotal().GetAmountMinor() {
		return invalid("order %q: lines add up to %d, subtotal is %d", o.GetId(), sum, o.GetSubtotal().GetAmountMinor())
	}
	if t, ok := add(o.GetSubtotal().GetAmountMinor(), o.GetTax().GetAmountMinor()); !ok || t != o.GetTotal().GetAmountMinor() {
		return invalid("order %q: subtotal + tax is not total", o.GetId())
	}
	return nil
}

// add returns a+b for non-negative a and b, and false on overflow.
func add(a, b int64) (int64, bool) {
	s := a + b
	return s, s >= a
}

// model is everything an invoice prints, already sanitised and formatted.
type model struct {
	number, orderID, date string
	created               time.Time
	seller                []string // name first
	sellerName            string
	billTo                []string
	shipTo                []string
	lines                 []lineModel
	subtotal, tax, total  string
}

// lineModel is one row of the table.
type lineModel struct {
	name, sku, quantity, unitPrice, lineTotal string
}

func newModel(o *orderv1.Order, seller Seller, buyer Buyer) *model {
	created := o.GetCreateTime().AsTime().UTC()
	m := &model{
		number:     Number(o),
		orderID:    sanitize(o.GetId(), maxTextRunes),
		date:       created.Format("2006-01-02"),
		created:    created,
		sellerName: sanitize(seller.Name, maxTextRunes),
		subtotal:   formatMoney(o.GetSubtotal()),
		tax:        formatMoney(o.GetTax()),
		total:      formatMoney(o.GetTotal()),
	}
	m.seller = nonEmpty(m.sellerName)
	m.seller = append(m.seller, addressLines(seller.Address, false)...)
	if id := sanitize(seller.TaxID, maxTextRunes); id != "" {
		m.seller = append(m.seller, "Tax ID: "+id)
	}
	m.seller = append(m.seller, nonEmpty(sanitize(seller.Email, maxTextRunes))...)
	m.billTo = nonEmpty(sanitize(buyer.Name, maxTextRunes), sanitize(buyer.Email, maxTextRunes))
	m.shipTo = addressLines(o.GetShippingAddress(), true)
	for _, l := range o.GetLines() {
		m.lines = append(m.lines, lineModel{
			name:      sanitize(l.GetName(), maxTextRunes),
			sku:       sanitize(l.GetSku(), maxTextRunes),
			quantity:  strconv.Itoa(int(l.GetQuantity())),
			unitPrice: formatMoney(l.GetUnitPrice()),
			lineTotal: formatMoney(l.GetLineTotal()),
		})
	}
	return m
}

// addressLines spells a postal address one line per field: name (when
// withName), street lines, "postal code city", region, country code.
func addressLines(a *commonv1.Address, withName bool) []string {
	if a == nil {
		return nil
	}
	s := func(v string) string { return sanitize(v, maxTextRunes) }
	var name string
	if withName {
		name = s(a.GetName())
	}
	city := s(a.GetPostalCode())
	if c := s(a.GetCity()); c != "" {
		city = s(city + " " + c)
	}
	return nonEmpty(name, s(a.GetLine1()), s(a.GetLine2()), city, s(a.GetRegion()), s(a.GetCountryCode()))
}

// nonEmpty returns the non-empty strings of ss.
func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
