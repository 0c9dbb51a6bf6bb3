package invoice

import (
	"testing"

	"github.com/go-pdf/fpdf"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
)

// BenchmarkRender renders a typical 3-line order in Latin script: the
// per-invoice cost once the process has rendered one (it includes fpdf
// parsing DejaVu Sans, which it does in every document).
func BenchmarkRender(b *testing.B) {
	benchRender(b, testOrder("ord_bench", "Espresso machine", "Milk frother", "Descaler (2 × 250 ml)"), latinBuyer)
}

// latinBuyer is a buyer whose name needs no CJK font.
var latinBuyer = Buyer{Name: "Zoë Ñandú", Email: "zoe@example.com"}

// BenchmarkRenderCJK renders a typical 3-line order with a CJK product name:
// the document also registers Droid Sans Fallback, which fpdf parses again
// for it.
func BenchmarkRenderCJK(b *testing.B) {
	benchRender(b, testOrder("ord_bench", "Espresso machine", "咖啡机 除垢剂", "Descaler"), latinBuyer)
}

// BenchmarkRenderKorean renders a typical 3-line order with a Korean
// product name: the document also registers Nanum Square.
func BenchmarkRenderKorean(b *testing.B) {
	benchRender(b, testOrder("ord_bench", "Espresso machine", "커피 머신 세척제", "Descaler"), latinBuyer)
}

func benchRender(b *testing.B, o *orderv1.Order, buyer Buyer) {
	if _, err := Render(o, testSeller, buyer); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(o, testSeller, buyer); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderFirst is the first Render of a process: the cmap parse of
// the fonts (done once per process) plus a render. Memory-mapping the
// embedded fonts is not in it; see the package's report for a cold-process
// figure.
func BenchmarkRenderFirst(b *testing.B) {
	m := newModel(testOrder("ord_bench", "Espresso machine", "Milk frother", "Descaler (2 × 250 ml)"), testSeller, latinBuyer)
	b.ReportAllocs()
	for b.Loop() {
		fonts, err := parseFonts()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := render(m, fonts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseFonts is the once-per-process part alone: reading which
// characters each embedded font has.
func BenchmarkParseFonts(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseFonts(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFpdfAddFont is what fpdf's AddUTF8FontFromBytes costs each
// document that registers a font: fpdf keeps parsed fonts per document and
// has no API to share them.
func BenchmarkFpdfAddFont(b *testing.B) {
	for _, f := range []struct {
		name string
		data []byte
	}{{"DejaVuSans", dejaVuSans}, {"DroidSansFallbackFull", droidSansFallback}, {"NanumSquareR", nanumSquare}} {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pdf := fpdf.New("P", "mm", "A4", "")
				pdf.AddUTF8FontFromBytes("f", "", f.data)
				if err := pdf.Error(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
