package invoice

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/go-pdf/fpdf"
)

// Page geometry in millimetres (A4 portrait).
const (
	pageW, pageH = 210.0, 297.0
	margin       = 15.0
	contentW     = pageW - 2*margin
	// bottom is the lowest y content may reach; the footer lives below it.
	bottom  = pageH - 20.0
	footerY = pageH - 13.0
	// cellPad is the padding above, below and left/right of table cells.
	cellPad = 1.2
)

// Font sizes in points.
const (
	sizeTitle  = 20.0
	sizeSeller = 11.0
	sizeBody   = 9.0
	sizeLabel  = 7.5
	sizeTable  = 8.5
	sizeTotal  = 11.0
	sizeFooter = 7.5
)

// Line limits: how many lines a field may wrap to before it is cut with an
// ellipsis. Amounts and quantities are never cut.
const (
	nameMaxLines    = 3
	skuMaxLines     = 2
	addressMaxLines = 2
)

// Colours (grey levels).
const (
	greyText   = 90
	greyRule   = 200
	greyHeader = 235
)

// column is one column of the line table.
type column struct {
	title string
	width float64
	align align
}

// columns of the line table; their widths add up to contentW.
var columns = [...]column{
	{"Item", 72, alignLeft},
	{"SKU", 30, alignLeft},
	{"Qty", 14, alignRight},
	{"Unit price", 32, alignRight},
	{"Amount", 32, alignRight},
}

type align uint8

const (
	alignLeft align = iota
	alignRight
)

// block is a paragraph laid out in a width: its lines in logical order, the
// paragraph's direction and its font size.
type block struct {
	lines []string
	rtl   bool
	size  float64
}

func (b block) height() float64 { return float64(len(b.lines)) * lineHeight(b.size) }

// lineHeight is the distance between baselines for a font size in points.
func lineHeight(size float64) float64 { return size * 25.4 / 72 * 1.3 }

// renderer draws one document. It is not safe for concurrent use; each
// Render makes its own.
type renderer struct {
	pdf   *fpdf.Fpdf
	fonts *fontSet
	// registered says which fallbacks this document registered (those
	// it draws a character with).
	registered []bool
	family     string
	size       float64
	// advances caches glyph advances (1/1000 em) per font and character.
	advances map[advanceKey]int
	y        float64
	m        *model
}

type advanceKey struct {
	family string
	r      rune
}

// render lays out and draws m. It recovers from panics in fpdf: hostile text
// must cost an error, never the process.
func render(m *model, fonts *fontSet) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("invoice: render order %q: panic: %v", m.orderID, p)
		}
	}()
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCatalogSort(true)
	pdf.SetCreationDate(m.created)
	pdf.SetModificationDate(m.created)
	pdf.SetTitle("Invoice "+m.number, true)
	pdf.SetSubject("Order "+m.orderID, true)
	pdf.SetAuthor(m.sellerName, true)
	pdf.SetCreator("shopfn invoicing", true)
	pdf.SetMargins(margin, margin, margin)
	pdf.SetAutoPageBreak(false, 0) // rows are placed by hand, never split
	pdf.SetCellMargin(0)

	r := &renderer{pdf: pdf, fonts: fonts, advances: make(map[advanceKey]int), m: m}
	// fpdf writes into the font bytes it is given (utf8FontFile.getMetrics
	// appends to a slice of them when it subsets a font whose hmtx table is
	// shorter than its glyph count, in v0.9.0): each document gets its own
	// copy, so that renders neither race nor change the embedded fonts, and
	// the output stays the same whatever was rendered before.
	pdf.AddUTF8FontFromBytes(fonts.primary.family, "", bytes.Clone(fonts.primary.data))
	r.registered = make([]bool, len(fonts.fallbacks))
	for i, used := range r.fallbackRunes() {
		if used == "" {
			continue
		}
		// fpdf parses a font in every document that registers it, and the
		// fallbacks are large (Droid Sans Fallback is 4 MB): register one
		// only when a character needs it, and then only the glyphs used.
		// Cutting first costs one pass over the font instead of fpdf's two
		// plus a JSON encoding of its width table (BenchmarkRenderCJK:
		// about 45 ms instead of 55 ms here).
		fb := fonts.fallbacks[i]
		sub := fpdf.UTF8CutFont(bytes.Clone(fb.data), used)
		if len(sub) == 0 {
			return nil, fmt.Errorf("invoice: render order %q: cannot subset %s", m.orderID, fb.family)
		}
		pdf.AddUTF8FontFromBytes(fb.family, "", sub)
		r.registered[i] = true
	}
	r.draw()
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("invoice: render order %q: %w", m.orderID, err)
	}
	return buf.Bytes(), nil
}

// fallbackRunes returns, for each fallback font, the characters of the
// model it draws, sorted: every character fontOf will send to a fallback,
// since everything else drawn (labels, numbers, ellipses, mirrored
// brackets) is in the primary font.
func (r *renderer) fallbackRunes() []string {
	m := r.m
	texts := [][]string{m.seller, m.billTo, m.shipTo, {m.orderID}}
	for _, l := range m.lines {
		texts = append(texts, []string{l.name, l.sku, l.unitPrice, l.lineTotal})
	}
	seen := make([]map[rune]bool, len(r.fonts.fallbacks))
	for _, ss := range texts {
		for _, s := range ss {
			for _, c := range s {
				if i := r.fonts.fontFor(c); i >= 0 {
					if seen[i] == nil {
						seen[i] = make(map[rune]bool)
					}
					seen[i][c] = true
				}
			}
		}
	}
	used := make([]string, len(seen))
	for i, cs := range seen {
		used[i] = string(slices.Sorted(maps.Keys(cs)))
	}
	return used
}

func (r *renderer) draw() {
	m := r.m
	pdf := r.pdf
	r.addPage()

	// Title and seller on the left, the invoice facts on the right.
	r.text(margin, r.y, 95, block{lines: []string{"Invoice"}, size: sizeTitle}, alignLeft)
	left := r.y + lineHeight(sizeTitle) + 2
	for i, s := range m.seller {
		size := sizeBody
		if i == 0 && m.sellerName != "" {
			size = sizeSeller
		}
		left += r.text(margin, left, 95, r.layout(s, 95, size, addressMaxLines), alignLeft)
	}
	right := r.y
	facts := [][2]string{
		{"Invoice number", m.number},
		{"Order", m.orderID},
		{"Invoice date", m.date},
		{"Order date", m.date},
	}
	const factX, labelW, valueW = 118.0, 28.0, pageW - margin - 118.0 - 28.0
	for _, f := range facts {
		value := r.layout(f[1], valueW, sizeBody, addressMaxLines)
		pdf.SetTextColor(greyText, greyText, greyText)
		r.text(factX, right, labelW, block{lines: []string{f[0]}, size: sizeLabel}, alignLeft)
		pdf.SetTextColor(0, 0, 0)
		right += r.text(factX+labelW, right, valueW, value, alignLeft) + 0.8
	}
	r.y = max(left, right) + 8

	// Bill to and ship to.
	const addrW = 85.0
	top := r.y
	bottomOf := top
	for i, part := range []struct {
		title string
		lines []string
	}{{"Bill to", m.billTo}, {"Ship to", m.shipTo}} {
		if len(part.lines) == 0 {
			continue
		}
		x := margin + float64(i)*(addrW+10)
		pdf.SetTextColor(greyText, greyText, greyText)
		y := top + r.text(x, top, addrW, block{lines: []string{part.title}, size: sizeLabel}, alignLeft) + 0.5
		pdf.SetTextColor(0, 0, 0)
		for _, s := range part.lines {
			y += r.text(x, y, addrW, r.layout(s, addrW, sizeBody, addressMaxLines), alignLeft)
		}
		bottomOf = max(bottomOf, y)
	}
	r.y = bottomOf + 8

	// The lines, with the header repeated on every page.
	r.tableHeader()
	for _, l := range m.lines {
		cells := [len(columns)]block{
			r.layout(l.name, columns[0].width-2*cellPad, sizeTable, nameMaxLines),
			r.layout(l.sku, columns[1].width-2*cellPad, sizeTable, skuMaxLines),
			r.layout(l.quantity, columns[2].width-2*cellPad, sizeTable, 0),
			r.layout(l.unitPrice, columns[3].width-2*cellPad, sizeTable, 0),
			r.layout(l.lineTotal, columns[4].width-2*cellPad, sizeTable, 0),
		}
		h := 0.0
		for _, c := range cells {
			h = max(h, c.height())
		}
		h += 2 * cellPad
		if r.y+h > bottom {
			r.addPage()
			r.tableHeader()
		}
		x := margin
		for i, c := range cells {
			r.text(x+cellPad, r.y+cellPad, columns[i].width-2*cellPad, c, columns[i].align)
			x += columns[i].width
		}
		r.y += h
		pdf.SetDrawColor(greyRule, greyRule, greyRule)
		pdf.SetLineWidth(0.2)
		pdf.Line(margin, r.y, margin+contentW, r.y)
	}

	// Totals, kept together on one page.
	const labelX, totalsLabelW, totalsValueW = 105.0, 40.0, pageW - margin - 105.0 - 40.0
	rows := []struct {
		label, value string
		size         float64
	}{{"Subtotal", m.subtotal, sizeBody}, {"Tax", m.tax, sizeBody}, {"Total", m.total, sizeTotal}}
	values := make([]block, len(rows))
	need := 4.0
	for i, row := range rows {
		values[i] = r.layout(row.value, totalsValueW, row.size, 0)
		need += values[i].height() + 1.5
	}
	r.y += 4
	if r.y+need > bottom {
		r.addPage()
	}
	for i, row := range rows {
		if row.label == "Total" {
			pdf.SetDrawColor(0, 0, 0)
			pdf.SetLineWidth(0.3)
			pdf.Line(labelX, r.y, pageW-margin, r.y)
			r.y += 1.5
		}
		r.text(labelX, r.y, totalsLabelW, block{lines: []string{row.label}, size: row.size}, alignLeft)
		r.y += r.text(labelX+totalsLabelW, r.y, totalsValueW, values[i], alignRight) + 1.5
	}

	// Footers, now that the page count is known.
	n := pdf.PageCount()
	for p := 1; p <= n; p++ {
		pdf.SetPage(p)
		r.family = "" // the font last set on that page is not ours to know
		pdf.SetTextColor(greyText, greyText, greyText)
		r.text(margin, footerY, 100, block{lines: []string{m.number}, size: sizeFooter}, alignLeft)
		r.text(pageW-margin-60, footerY, 60, block{lines: []string{fmt.Sprintf("Page %d of %d", p, n)}, size: sizeFooter}, alignRight)
	}
}

// addPage starts a page; pages after the first repeat who and what the
// invoice is.
func (r *renderer) addPage() {
	r.pdf.AddPage()
	r.family = "" // fpdf restores its own font state around page breaks
	r.y = margin
	if r.pdf.PageNo() > 1 {
		r.pdf.SetTextColor(greyText, greyText, greyText)
		r.y += r.text(margin, r.y, contentW, r.layout("Invoice "+r.m.number+" (continued)", contentW, sizeBody, 1), alignLeft) + 4
		r.pdf.SetTextColor(0, 0, 0)
	}
}

// tableHeader draws the column titles on a grey band.
func (r *renderer) tableHeader() {
	h := lineHeight(sizeLabel) + 2*cellPad
	r.pdf.SetFillColor(greyHeader, greyHeader, greyHeader)
	r.pdf.Rect(margin, r.y, contentW, h, "F")
	x := margin
	for _, c := range columns {
		r.text(x+cellPad, r.y+cellPad, c.width-2*cellPad, block{lines: []string{c.title}, size: sizeLabel}, c.align)
		x += c.width
	}
	r.y += h
}

// layout wraps text to width at a font size; maxLines < 1 means no limit.
func (r *renderer) layout(text string, width, size float64, maxLines int) block {
	return block{
		lines: wrap(text, width, maxLines, func(c rune) float64 { return r.advance(c, size) }),
		rtl:   rtlBase(text),
		size:  size,
	}
}

// text draws the lines of b from the top-left corner (x, y) in a box of width
// w and returns the height used. Each line is put in visual order and drawn
// in runs of one font.
func (r *renderer) text(x, y, w float64, b block, a align) float64 {
	lh := lineHeight(b.size)
	em := b.size * 25.4 / 72
	for i, line := range b.lines {
		vis := []rune(visual(line, b.rtl))
		width := 0.0
		for _, c := range vis {
			width += r.advance(c, b.size)
		}
		cx := x
		if a == alignRight {
			cx = x + w - width
		}
		baseline := y + float64(i)*lh + (lh-em)/2 + 0.8*em
		for start := 0; start < len(vis); {
			f := r.fontOf(vis[start])
			end := start + 1
			for end < len(vis) && r.fontOf(vis[end]) == f {
				end++
			}
			run := string(vis[start:end])
			r.setFont(f.family, b.size)
			r.pdf.Text(cx, baseline, run)
			for _, c := range vis[start:end] {
				cx += r.advance(c, b.size)
			}
			start = end
		}
	}
	return b.height()
}

// fontOf picks the font that draws c (see fontSet.fontFor), among those
// this document registered.
func (r *renderer) fontOf(c rune) *font {
	if i := r.fonts.fontFor(c); i >= 0 && r.registered[i] {
		return &r.fonts.fallbacks[i]
	}
	return &r.fonts.primary
}

// advance returns the width of c in millimetres at a font size.
func (r *renderer) advance(c rune, size float64) float64 {
	f := r.fontOf(c)
	k := advanceKey{f.family, c}
	units, ok := r.advances[k]
	if !ok {
		r.setFont(f.family, size)
		units = r.pdf.GetStringSymbolWidth(string(c))
		r.advances[k] = units
	}
	return float64(units) * size / 1000 * 25.4 / 72
}

func (r *renderer) setFont(family string, size float64) {
	if r.family != family || r.size != size {
		r.pdf.SetFont(family, "", size)
		r.family, r.size = family, size
	}
}
