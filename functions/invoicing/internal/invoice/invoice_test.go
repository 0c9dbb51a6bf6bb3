package invoice

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	"github.com/shopfn/shopfn/shared/testenv"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var created = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

func money(currency string, minor int64) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: currency, AmountMinor: minor}
}

// testOrder returns a confirmed order with one line per name: quantity i+1
// at 19.99 USD, tax 10%.
func testOrder(id string, names ...string) *orderv1.Order {
	o := &orderv1.Order{
		Id:         id,
		UserId:     "usr_test",
		State:      orderv1.OrderState_ORDER_STATE_CONFIRMED,
		CreateTime: timestamppb.New(created),
		UpdateTime: timestamppb.New(created.Add(3 * time.Second)),
		ShippingAddress: &commonv1.Address{
			Name: "Zoë Ñandú", Line1: "12 Rue de l'Église", Line2: "Bâtiment B",
			City: "Paris", PostalCode: "75001", CountryCode: "FR",
		},
	}
	var sum int64
	for i, n := range names {
		q := int64(i + 1)
		o.Lines = append(o.Lines, &orderv1.OrderLine{
			ProductId: fmt.Sprintf("prd_%d", i), Sku: fmt.Sprintf("SKU-%04d", i), Name: n,
			Quantity: int32(q), UnitPrice: money("USD", 1999), LineTotal: money("USD", 1999*q),
		})
		sum += 1999 * q
	}
	o.Subtotal, o.Tax, o.Total = money("USD", sum), money("USD", sum/10), money("USD", sum+sum/10)
	return o
}

var (
	testSeller = Seller{
		Name:    "shopfn GmbH",
		Address: &commonv1.Address{Line1: "Hauptstraße 1", City: "Berlin", PostalCode: "10115", CountryCode: "DE"},
		TaxID:   "DE123456789",
		Email:   "billing@shopfn.example",
	}
	testBuyer = Buyer{Name: "张伟 Zoë", Email: "zoe@example.com"}
)

// tool returns the path of a poppler-utils program, or skips the test when
// it is not installed; with SHOPFN_REQUIRE_EMULATORS=1 (CI) it fails instead,
// so that these tests can never be skipped silently there.
func tool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not on PATH: install poppler-utils (apt-get install poppler-utils)", name)
	if os.Getenv(testenv.RequireEmulatorsEnv) == "1" {
		t.Fatalf("%s (%s=1 requires it)", msg, testenv.RequireEmulatorsEnv)
	}
	t.Skip(msg)
	return ""
}

// writePDF writes pdf to a temporary file and returns its path.
func writePDF(t testing.TB, pdf []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "invoice.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pdftotext returns the text of pages first to last (0 means all) of pdf,
// without the bidi embedding marks poppler puts around right-to-left runs.
func pdftotext(t testing.TB, pdf []byte, first, last int) string {
	t.Helper()
	args := []string{"-enc", "UTF-8"}
	if first > 0 {
		args = append(args, "-f", strconv.Itoa(first), "-l", strconv.Itoa(last))
	}
	path := writePDF(t, pdf)
	out, err := exec.Command(tool(t, "pdftotext"), append(args, path, "-")...).Output()
	if err != nil {
		t.Fatalf("pdftotext %s: %v", path, stderr(err))
	}
	return strings.Map(func(r rune) rune {
		if r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069 || r == 0x200E || r == 0x200F {
			return -1
		}
		return r
	}, string(out))
}

// pageObject matches the dictionary of one page (not of the page tree).
var pageObject = regexp.MustCompile(`/Type /Page\b[^s]`)

// pages returns the page count of pdf from pdfinfo, or from the page objects
// when pdfinfo is missing. When both are there they must agree, which keeps
// the fallback honest.
func pages(t testing.TB, pdf []byte) int {
	t.Helper()
	objects := len(pageObject.FindAll(pdf, -1))
	if path, err := exec.LookPath("pdfinfo"); err == nil {
		out, err := exec.Command(path, writePDF(t, pdf)).Output()
		if err != nil {
			t.Fatalf("pdfinfo: %v", stderr(err))
		}
		m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)$`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("pdfinfo printed no page count:\n%s", out)
		}
		n, _ := strconv.Atoi(string(m[1]))
		if n != objects {
			t.Errorf("pdfinfo counts %d pages, the page objects %d", n, objects)
		}
		return n
	}
	return objects
}

func stderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Sprintf("%v: %s", err, ee.Stderr)
	}
	return err.Error()
}

func TestNumber(t *testing.T) {
	o := testOrder("ord_abc")
	shape := regexp.MustCompile(`^INV-2026-[0-9A-HJKMNP-TV-Z]{10}$`)
	if got := Number(o); !shape.MatchString(got) {
		t.Errorf("Number(%q) = %q, want it to match %s", o.GetId(), got, shape)
	}
	tests := []struct {
		name string
		in   *orderv1.Order
		want string
	}{
		{"deterministic", testOrder("ord_abc"), Number(o)},
		{"the year is the create time's, in UTC", &orderv1.Order{Id: "ord_abc", CreateTime: timestamppb.New(time.Date(2025, 12, 31, 23, 30, 0, 0, time.FixedZone("", -3600)))}, "INV-2026-" + Number(o)[9:]},
		{"only the id and year count", &orderv1.Order{Id: "ord_abc", CreateTime: timestamppb.New(created.Add(time.Hour))}, Number(o)},
		{"no create time", &orderv1.Order{Id: "ord_abc"}, "INV-0000-" + Number(o)[9:]},
		{"nil order", nil, "INV-0000-" + Number(&orderv1.Order{})[9:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Number(tt.in); got != tt.want {
				t.Errorf("Number(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	seen := make(map[string]string)
	for i := range 10000 {
		id := fmt.Sprintf("ord_%d", i)
		n := Number(testOrder(id))
		if other, ok := seen[n]; ok {
			t.Fatalf("Number(%q) = Number(%q) = %q", id, other, n)
		}
		seen[n] = id
	}
}

func TestObjectName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"order id", "ord_a2b3c4d5e6f7g8h2", "invoices/ord_a2b3c4d5e6f7g8h2.pdf"},
		{"slash cannot leave the folder", "../../etc/passwd", "invoices/..%2F..%2Fetc%2Fpasswd.pdf"},
		{"percent is escaped, so names never collide", "a%2Fb", "invoices/a%252Fb.pdf"},
		{"space and unicode escaped", "a b/é", "invoices/a%20b%2F%C3%A9.pdf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ObjectName(tt.in); got != tt.want {
				t.Errorf("ObjectName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRenderRejects(t *testing.T) {
	edit := func(f func(o *orderv1.Order)) *orderv1.Order {
		o := testOrder("ord_x", "Widget", "Gadget")
		f(o)
		return o
	}
	tests := []struct {
		name string
		in   *orderv1.Order
		want error
	}{
		{"nil", nil, ErrInvalidOrder},
		{"pending", edit(func(o *orderv1.Order) { o.State = orderv1.OrderState_ORDER_STATE_PENDING }), ErrNotConfirmed},
		{"cancelled", edit(func(o *orderv1.Order) { o.State = orderv1.OrderState_ORDER_STATE_CANCELLED }), ErrNotConfirmed},
		{"no id", edit(func(o *orderv1.Order) { o.Id = "" }), ErrInvalidOrder},
		{"no create time", edit(func(o *orderv1.Order) { o.CreateTime = nil }), ErrInvalidOrder},
		{"no total", edit(func(o *orderv1.Order) { o.Total = nil }), ErrInvalidOrder},
		{"line without price", edit(func(o *orderv1.Order) { o.Lines[0].UnitPrice = nil }), ErrInvalidOrder},
		{"zero quantity", edit(func(o *orderv1.Order) { o.Lines[0].Quantity = 0 }), ErrInvalidOrder},
		{"negative tax", edit(func(o *orderv1.Order) { o.Tax.AmountMinor = -1; o.Total.AmountMinor = o.Subtotal.AmountMinor - 1 }), ErrInvalidOrder},
		{"mixed currencies", edit(func(o *orderv1.Order) { o.Lines[1].LineTotal.CurrencyCode = "EUR" }), ErrInvalidOrder},
		{"lines do not add up", edit(func(o *orderv1.Order) { o.Lines[1].LineTotal.AmountMinor++ }), ErrInvalidOrder},
		{"total is not subtotal + tax", edit(func(o *orderv1.Order) { o.Total.AmountMinor++ }), ErrInvalidOrder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.in, testSeller, testBuyer)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("Render(%v) = %d bytes, %v, want nil, %v", tt.in, len(got), err, tt.want)
			}
		})
	}
}

// TestRenderText reads the PDF back with pdftotext. Right-to-left words are
// drawn in visual order (see visual); poppler turns them back into logical
// order, but how it orders them against the left-to-right text around them
// is its own heuristic, so for those the test checks each word on its own,
// in either order. TestVisual pins the order drawn.
func TestRenderText(t *testing.T) {
	names := []string{"发票 张伟", "Zoë Ñandú", "Привет мир", "Ελληνικά", "日本語 カタカナ", "مرحبا", "שלום", "Café e\u0301"}
	o := testOrder("ord_text", names...)
	o.ShippingAddress = &commonv1.Address{Name: "Иван Петров", Line1: "ул. Тверская 7", Line2: "한국어 주소 테스트", City: "Москва", PostalCode: "125009", CountryCode: "RU"}
	pdf, err := Render(o, testSeller, testBuyer)
	if err != nil {
		t.Fatalf("Render(%v) = %v", o, err)
	}
	text := pdftotext(t, pdf, 0, 0)
	want := []string{
		Number(o), "ord_text", "2026-03-14",
		"发票 张伟", "Zoë Ñandú", "Привет мир", "Ελληνικά", "日本語 カタカナ", "Café e\u0301",
		"Иван Петров", "ул. Тверская 7", "한국어 주소 테스트", "125009 Москва", "RU",
		"张伟 Zoë", "zoe@example.com",
		"shopfn GmbH", "Hauptstraße 1", "Tax ID: DE123456789", "billing@shopfn.example",
		"SKU-0000", "SKU-0007",
		"19.99 USD", "159.92 USD", // unit price; line 8 total
		"719.64 USD", "71.96 USD", "791.60 USD", // subtotal, tax, total
		"Subtotal", "Tax", "Total", "Page 1 of 1",
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("Render(%v): pdftotext output lacks %q:\n%s", o.GetId(), w, text)
		}
	}
	for _, w := range []string{"مرحبا", "שלום"} {
		if !strings.Contains(text, w) && !strings.Contains(text, reversed(w)) {
			t.Errorf("Render(%v): pdftotext output lacks %q in either order:\n%s", o.GetId(), w, text)
		}
	}
}

func reversed(s string) string {
	rs := []rune(s)
	reverse(rs)
	return string(rs)
}

func TestRenderMetadata(t *testing.T) {
	o := testOrder("ord_meta", "Widget")
	pdf, err := Render(o, testSeller, Buyer{})
	if err != nil {
		t.Fatalf("Render(%v) = %v", o, err)
	}
	out, err := exec.Command(tool(t, "pdfinfo"), writePDF(t, pdf)).Output()
	if err != nil {
		t.Fatalf("pdfinfo: %v", stderr(err))
	}
	for _, w := range []string{
		"Title:           Invoice " + Number(o),
		"Author:          shopfn GmbH",
		"CreationDate:    Sat Mar 14 09:30:00 2026 UTC",
		"ModDate:         Sat Mar 14 09:30:00 2026 UTC",
		"Page size:       595.28 x 841.89 pts (A4)",
	} {
		if !strings.Contains(string(out), w) {
			t.Errorf("Render(%v): pdfinfo lacks %q:\n%s", o.GetId(), w, out)
		}
	}
	if text := pdftotext(t, pdf, 0, 0); strings.Contains(text, "Bill to") {
		t.Errorf("Render(%v) with an empty buyer prints a Bill to block:\n%s", o.GetId(), text)
	}
}

func TestRenderDeterministic(t *testing.T) {
	o := testOrder("ord_same", "发票 Widget", "Zoë", "مرحبا")
	first, err := Render(o, testSeller, testBuyer)
	if err != nil {
		t.Fatalf("Render(%v) = %v", o, err)
	}
	// Concurrent renders share the fonts: each must still give the same
	// bytes (and -race checks that they share nothing mutable).
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	errs := make([]error, len(got))
	for i := range got {
		wg.Go(func() { got[i], errs[i] = Render(proto.Clone(o).(*orderv1.Order), testSeller, testBuyer) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || !bytes.Equal(got[i], first) {
			t.Errorf("Render(%v) #%d = %d bytes, %v, want the %d bytes of the first render", o.GetId(), i+2, len(got[i]), errs[i], len(first))
		}
	}
	// What changes when an invoice is attached changes nothing.
	later := proto.Clone(o).(*orderv1.Order)
	later.UpdateTime = timestamppb.New(created.Add(time.Hour))
	later.Version++
	later.Invoice = &orderv1.Invoice{Number: Number(o), Object: ObjectName(o.GetId())}
	if again, err := Render(later, testSeller, testBuyer); err != nil || !bytes.Equal(again, first) {
		t.Errorf("Render(%v with invoice attached) = %d bytes, %v, want the %d bytes of the first render", o.GetId(), len(again), err, len(first))
	}
	other := proto.Clone(o).(*orderv1.Order)
	other.Id = "ord_other"
	if diff, err := Render(other, testSeller, testBuyer); err != nil || bytes.Equal(diff, first) {
		t.Errorf("Render(%v) = same bytes as %v, %v, want different", other.GetId(), o.GetId(), err)
	}
}

// TestRenderLeavesFontsAlone checks that rendering never writes into the
// embedded fonts (fpdf v0.9.0 writes into the bytes it subsets): their
// hashes stay those fonts/README.md records.
func TestRenderLeavesFontsAlone(t *testing.T) {
	for _, names := range [][]string{{"Zoë Привет مرحبا"}, {"发票 張偉 日本語 カタカナ"}} {
		o := testOrder("ord_fonts", names...)
		if _, err := Render(o, testSeller, testBuyer); err != nil {
			t.Fatalf("Render(%v) = %v", names, err)
		}
	}
	for _, f := range []struct {
		name string
		data []byte
		want string
	}{
		{"DejaVuSans.ttf", dejaVuSans, "abdc775b21b1bc470d50c97e790d276f2054b7504e56e5bd3e64f48d68582322"},
		{"DroidSansFallbackFull.ttf", droidSansFallback, "acb6440a713d880a13a21b468ba7cd43f5a2b2934972e51be791c880730777b8"},
		{"NanumSquareR.ttf", nanumSquare, "5a51deae5237435d9a0bc0cc6cc30619a914b29801f895698cfdacadcad06e94"},
	} {
		if got := fmt.Sprintf("%x", sha256.Sum256(f.data)); got != f.want {
			t.Errorf("sha256(%s) after Render = %s, want %s", f.name, got, f.want)
		}
	}
}

// TestRenderFallbackFontOnlyWhenNeeded checks that the large fallback
// fonts (CJK, Hangul) are parsed and embedded only into documents that use
// them.
func TestRenderFallbackFontOnlyWhenNeeded(t *testing.T) {
	tests := []struct {
		name       string
		names      []string
		buyer      Buyer
		droid, kor bool
	}{
		{"Latin, Cyrillic, Arabic", []string{"Zoë", "Привет", "مرحبا"}, Buyer{Name: "Zoë"}, false, false},
		{"CJK product", []string{"Zoë", "发票"}, Buyer{}, true, false},
		{"CJK buyer", []string{"Zoë"}, Buyer{Name: "张伟"}, true, false},
		{"Korean buyer", []string{"Zoë"}, Buyer{Name: "김민준"}, false, true},
		{"both", []string{"发票", "머그"}, Buyer{}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOrder("ord_fonts", tt.names...)
			pdf, err := Render(o, testSeller, tt.buyer)
			if err != nil {
				t.Fatalf("Render(%v) = %v", o, err)
			}
			if got := bytes.Contains(pdf, []byte("/BaseFont /utf8droid")); got != tt.droid {
				t.Errorf("Render(%v) embeds Droid Sans Fallback = %v, want %v", tt.names, got, tt.droid)
			}
			if got := bytes.Contains(pdf, []byte("/BaseFont /utf8nanum")); got != tt.kor {
				t.Errorf("Render(%v) embeds Nanum Square = %v, want %v", tt.names, got, tt.kor)
			}
		})
	}
}

func TestRenderHostile(t *testing.T) {
	long := strings.Repeat("Ab", 5000) // 10,000 characters, no space
	many := make([]string, 500)
	for i := range many {
		many[i] = fmt.Sprintf("Product %d with a name long enough to wrap onto a second line of the table", i)
	}
	tests := []struct {
		name     string
		names    []string
		want     []string // in pdftotext's output
		wantNot  []string
		minPages int
	}{
		{"control characters", []string{"Wid\x00get\x07\x1b[31m\r\n\tname\u202e\u200b end"}, []string{"Widget[31m name end"}, []string{"\x00", "\x1b"}, 1},
		{"invalid UTF-8", []string{"bad \xff\xfe\xc3( bytes"}, []string{"bad \ufffd( bytes"}, nil, 1},
		{"beyond the BMP", []string{"emoji 😀 math 𝕏 han 𠀋"}, []string{"emoji \ufffd math \ufffd han \ufffd"}, nil, 1},
		{"PDF syntax", []string{`) Tj ET BT (\ %%EOF endobj`}, []string{`) Tj ET BT (\ %%EOF endobj`}, nil, 1},
		{"10,000-character name", []string{long}, []string{"AbAbAb", "…"}, []string{long[:400]}, 1},
		{"10,000 CJK characters", []string{strings.Repeat("发", 10000)}, []string{"发发发", "…"}, nil, 1},
		{"scripts no font has", []string{"नमस्ते สวัสดี 한국어"}, []string{"नमस्ते", "สวัสดี", "한국어"}, nil, 1},
		{"500 lines", many, []string{"Product 0 with", "Product 499 with"}, nil, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOrder("ord_hostile", tt.names...)
			pdf, err := Render(o, testSeller, testBuyer)
			if err != nil {
				t.Fatalf("Render(%v) = %v", tt.name, err)
			}
			n := pages(t, pdf)
			if n < tt.minPages {
				t.Errorf("Render(%v) = %d pages, want at least %d", tt.name, n, tt.minPages)
			}
			text := pdftotext(t, pdf, 0, 0)
			for _, w := range append(tt.want, formatMoney(o.GetTotal())) {
				if !strings.Contains(text, w) {
					t.Errorf("Render(%v): pdftotext output lacks %q", tt.name, w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(text, w) {
					t.Errorf("Render(%v): pdftotext output has %q", tt.name, w)
				}
			}
			// Every page has the table header and its page number.
			for p := 1; p <= n; p++ {
				text := pdftotext(t, pdf, p, p)
				for _, w := range []string{"Unit price", fmt.Sprintf("Page %d of %d", p, n), Number(o)} {
					if !strings.Contains(text, w) {
						t.Errorf("Render(%v): page %d lacks %q", tt.name, p, w)
					}
				}
			}
		})
	}
}

// TestRenderHostileParties puts hostile text in every other field.
func TestRenderHostileParties(t *testing.T) {
	junk := "\x00\xff" + strings.Repeat("Ж发 ", 3000) + "\u202e😀"
	o := testOrder(junk, "Widget")
	o.ShippingAddress = &commonv1.Address{Name: junk, Line1: junk, Line2: junk, City: junk, Region: junk, PostalCode: junk, CountryCode: junk}
	o.Lines[0].Sku = junk
	seller := Seller{Name: junk, Address: o.ShippingAddress, TaxID: junk, Email: junk}
	pdf, err := Render(o, seller, Buyer{Name: junk, Email: junk})
	if err != nil {
		t.Fatalf("Render(hostile parties) = %v", err)
	}
	if n := pages(t, pdf); n != 1 {
		t.Errorf("Render(hostile parties) = %d pages, want 1 (every field is cut)", n)
	}
	if text := pdftotext(t, pdf, 0, 0); !strings.Contains(text, formatMoney(o.GetTotal())) {
		t.Errorf("Render(hostile parties): pdftotext output lacks the total:\n%s", text)
	}
}
