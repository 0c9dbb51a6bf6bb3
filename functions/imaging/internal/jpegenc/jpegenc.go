// Package jpegenc writes baseline JPEGs (4:2:0 colour or greyscale) from
// YCbCr planes, in two steps that Make can share between variants:
// Quantize computes every block's quantised DCT coefficients (in parallel),
// Encode entropy-codes them with Huffman tables built for this image.
//
// Compared with image/jpeg's encoder it reads the planes directly (no
// per-pixel method calls), quantises with multiplications, writes 32 bits
// at a time and, because the coefficients are kept, re-encodes an image of
// which only a corner changed (the watermarked variant) by recomputing only
// the blocks of that corner. Huffman tables built for each image (T.81
// annex K.2) also make the files a few percent smaller than the example
// tables of annex K.3 (3% on the imagebench photo's medium variant).
// The output depends only on the input planes and quality.
package jpegenc

import (
	"encoding/binary"
	"errors"
	"image"
	"math/bits"
	"sync"
)

// Coefficients are the quantised DCT blocks of one image.
type Coefficients struct {
	w, h  int
	comps []component
	quant [2][64]uint8 // natural order: luma, chroma
	recip [2][64]int64 // C(u)C(v) / (4 Q) in recipBits fixed point, natural order
}

// component is one plane's blocks, each 64 coefficients in zig-zag order,
// covering the padded MCU grid.
type component struct {
	h, v   int // sampling factors
	bw, bh int // blocks across and down
	table  int // 0 luma, 1 chroma
	blocks []int16
}

// recipBits is the fixed-point precision of the quantisation reciprocals:
// enough that multiplying instead of dividing rounds the same way for every
// coefficient a block of 8-bit samples can produce.
const recipBits = 20

// Base quantisation tables of T.81 annex K (tables K.1 and K.2), natural
// order, scaled by quality the way libjpeg does.
var baseQuant = [2][64]uint8{{
	16, 11, 10, 16, 24, 40, 51, 61,
	12, 12, 14, 19, 26, 58, 60, 55,
	14, 13, 16, 24, 40, 57, 69, 56,
	14, 17, 22, 29, 51, 87, 80, 62,
	18, 22, 37, 56, 68, 109, 103, 77,
	24, 35, 55, 64, 81, 104, 113, 92,
	49, 64, 78, 87, 103, 121, 120, 101,
	72, 92, 95, 98, 112, 100, 103, 99,
}, {
	17, 18, 24, 47, 99, 99, 99, 99,
	18, 21, 26, 66, 99, 99, 99, 99,
	24, 26, 56, 99, 99, 99, 99, 99,
	47, 66, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99,
}}

// zigzag maps zig-zag order to natural order (T.81 figure A.6).
var zigzag = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

// ErrFormat is returned for images other than 4:2:0 *image.YCbCr and
// *image.Gray with bounds at the origin, or larger than JPEG allows.
var ErrFormat = errors.New("jpegenc: need a 4:2:0 YCbCr or grey image at the origin, under 65536×65536")

// Quantize computes the coefficients of m at quality 1-100.
func Quantize(m image.Image, quality int) (*Coefficients, error) {
	b := m.Bounds()
	if b.Min != (image.Point{}) || b.Dx() < 1 || b.Dy() < 1 || b.Dx() >= 1<<16 || b.Dy() >= 1<<16 {
		return nil, ErrFormat
	}
	c := &Coefficients{w: b.Dx(), h: b.Dy()}
	c.setQuality(quality)
	var planes []plane
	switch m := m.(type) {
	case *image.Gray:
		bw, bh := (c.w+7)/8, (c.h+7)/8
		c.comps = []component{{h: 1, v: 1, bw: bw, bh: bh, blocks: make([]int16, 64*bw*bh)}}
		planes = []plane{{m.Pix, m.Stride, c.w, c.h}}
	case *image.YCbCr:
		if m.SubsampleRatio != image.YCbCrSubsampleRatio420 {
			return nil, ErrFormat
		}
		mx, my := (c.w+15)/16, (c.h+15)/16
		cw, ch := (c.w+1)/2, (c.h+1)/2
		c.comps = []component{
			{h: 2, v: 2, bw: 2 * mx, bh: 2 * my, blocks: make([]int16, 64*4*mx*my)},
			{h: 1, v: 1, bw: mx, bh: my, table: 1, blocks: make([]int16, 64*mx*my)},
			{h: 1, v: 1, bw: mx, bh: my, table: 1, blocks: make([]int16, 64*mx*my)},
		}
		planes = []plane{{m.Y, m.YStride, c.w, c.h}, {m.Cb, m.CStride, cw, ch}, {m.Cr, m.CStride, cw, ch}}
	default:
		return nil, ErrFormat
	}
	var wg sync.WaitGroup
	for i := range c.comps {
		// Luma is most of the work: split it in two bands of block rows.
		parts := 1
		if i == 0 {
			parts = 2
		}
		for p := range parts {
			comp := &c.comps[i]
			r := image.Rect(0, comp.bh*p/parts, comp.bw, comp.bh*(p+1)/parts)
			wg.Go(func() { c.quantizeBlocks(comp, planes[i], r) })
		}
	}
	wg.Wait()
	return c, nil
}

// Requantize recomputes the blocks of c that intersect r (in pixels) from
// m, which must have c's size and layout: the rest of m must be unchanged.
func (c *Coefficients) Requantize(m image.Image, r image.Rectangle) error {
	if m.Bounds() != image.Rect(0, 0, c.w, c.h) {
		return ErrFormat
	}
	var planes []plane
	switch m := m.(type) {
	case *image.Gray:
		planes = []plane{{m.Pix, m.Stride, c.w, c.h}}
	case *image.YCbCr:
		cw, ch := (c.w+1)/2, (c.h+1)/2
		planes = []plane{{m.Y, m.YStride, c.w, c.h}, {m.Cb, m.CStride, cw, ch}, {m.Cr, m.CStride, cw, ch}}
	}
	if len(planes) != len(c.comps) {
		return ErrFormat
	}
	for i := range c.comps {
		comp := &c.comps[i]
		// The component's pixels are 1/(maxH/h) of the image's.
		sx, sy := c.comps[0].h/comp.h, c.comps[0].v/comp.v
		pr := image.Rect(r.Min.X/sx, r.Min.Y/sy, (r.Max.X+sx-1)/sx, (r.Max.Y+sy-1)/sy)
		br := image.Rect(pr.Min.X/8, pr.Min.Y/8, (pr.Max.X+7)/8, (pr.Max.Y+7)/8).Intersect(image.Rect(0, 0, comp.bw, comp.bh))
		c.quantizeBlocks(comp, planes[i], br)
	}
	return nil
}

// Clone returns a deep copy of c.
func (c *Coefficients) Clone() *Coefficients {
	d := *c
	d.comps = make([]component, len(c.comps))
	for i, comp := range c.comps {
		comp.blocks = append([]int16(nil), comp.blocks...)
		d.comps[i] = comp
	}
	return &d
}

// setQuality scales the base tables (libjpeg's formula) and prepares the
// reciprocals: coefficient = T(u,v) · C(u)C(v) / (4 Q(u,v)), T being the
// unnormalised 2-D cosine sum the forward DCT computes.
func (c *Coefficients) setQuality(quality int) {
	quality = max(1, min(100, quality))
	scale := 200 - 2*quality
	if quality < 50 {
		scale = 5000 / quality
	}
	for t := range 2 {
		for i, base := range baseQuant[t] {
			q := max(1, min(255, (int(base)*scale+50)/100))
			c.quant[t][i] = uint8(q)
			cu, cv := 1.0, 1.0
			if i%8 == 0 {
				cu = 1 / sqrt2
			}
			if i/8 == 0 {
				cv = 1 / sqrt2
			}
			c.recip[t][i] = int64(cu*cv/(4*float64(q))*(1<<recipBits) + 0.5)
		}
	}
}

const sqrt2 = 1.4142135623730951

// plane is one channel of the source image.
type plane struct {
	pix    []byte
	stride int
	w, h   int
}

// quantizeBlocks computes comp's blocks in r (in blocks) from p, repeating
// the last column and row of p into the padding.
func (c *Coefficients) quantizeBlocks(comp *component, p plane, r image.Rectangle) {
	recip := &c.recip[comp.table]
	var px [64]int
	for by := r.Min.Y; by < r.Max.Y; by++ {
		for bx := r.Min.X; bx < r.Max.X; bx++ {
			x0, y0 := bx*8, by*8
			if x0+8 <= p.w && y0+8 <= p.h {
				for y := range 8 {
					row := p.pix[(y0+y)*p.stride+x0 : (y0+y)*p.stride+x0+8]
					for x, v := range row {
						px[8*y+x] = int(v) - 128
					}
				}
			} else {
				for y := range 8 {
					sy := min(y0+y, p.h-1)
					for x := range 8 {
						px[8*y+x] = int(p.pix[sy*p.stride+min(x0+x, p.w-1)]) - 128
					}
				}
			}
			i := (by*comp.bw + bx) * 64
			fdctQuant(&px, recip, (*[64]int16)(comp.blocks[i:i+64]))
		}
	}
}

// Cosines scaled by 2^13: cK is cos(Kπ/16).
const (
	cosBits = 13
	c1      = 8035
	c2      = 7568
	c3      = 6811
	c4      = 5793
	c5      = 4551
	c6      = 3135
	c7      = 1598
)

// pass1Shift keeps 2 fractional bits between the passes.
const pass1Shift = cosBits - 2

// fdctQuant computes T(u,v) = Σx Σy f(x,y) cos((2x+1)uπ/16) cos((2y+1)vπ/16)
// of a block of level-shifted samples (rows then columns, each split into
// even and odd halves; each pass writes its results transposed, so both
// read rows and the second leaves them in natural order) and writes the
// quantised coefficients in zig-zag order.
func fdctQuant(px *[64]int, recip *[64]int64, out *[64]int16) {
	var ws, t [64]int
	fdctRows(px, &ws, pass1Shift) // ws[8u+y]
	fdctRows(&ws, &t, 0)          // t[8v+u]
	// t has cosBits+2 fractional bits; quantise with rounding to nearest
	// (half away from zero) and keep within what baseline Huffman tables
	// can code (T.81 F.1.2: AC values of 10 bits; the DC is at most
	// (255-128)·8/Q, so DC differences fit 11).
	const shift = recipBits + cosBits + 2
	quant := func(i int) int64 {
		v := int64(t[i]) * recip[i]
		sign := v >> 63
		return ((v^sign)-sign+1<<(shift-1))>>shift ^ sign - sign
	}
	out[0] = int16(quant(0))
	for k := 1; k < 64; k++ {
		out[k] = int16(max(-1023, min(1023, quant(int(zigzag[k])))))
	}
}

// fdctRows computes the one-dimensional 8-point cosine sums of the rows of
// in, scaled by 2^cosBits, rounded and shifted right by shift, and writes
// them transposed: out[8u+y] is frequency u of row y.
func fdctRows(in, out *[64]int, shift uint) {
	round := (1 << shift) >> 1
	for y := range 8 {
		r := (*[8]int)(in[8*y : 8*y+8])
		s0, s1, s2, s3 := r[0]+r[7], r[1]+r[6], r[2]+r[5], r[3]+r[4]
		d0, d1, d2, d3 := r[0]-r[7], r[1]-r[6], r[2]-r[5], r[3]-r[4]
		e0, e1 := s0+s3, s1+s2
		f0, f1 := s0-s3, s1-s2
		out[y] = ((e0+e1)<<cosBits + round) >> shift
		out[8+y] = (d0*c1 + d1*c3 + d2*c5 + d3*c7 + round) >> shift
		out[16+y] = (f0*c2 + f1*c6 + round) >> shift
		out[24+y] = (d0*c3 - d1*c7 - d2*c1 - d3*c5 + round) >> shift
		out[32+y] = ((e0-e1)*c4 + round) >> shift
		out[40+y] = (d0*c5 - d1*c1 + d2*c7 + d3*c3 + round) >> shift
		out[48+y] = (f0*c6 - f1*c2 + round) >> shift
		out[56+y] = (d0*c7 - d1*c5 + d2*c3 - d3*c1 + round) >> shift
	}
}

// Encode entropy-codes c into a complete JPEG file.
func (c *Coefficients) Encode() []byte {
	var freq [4][257]int // DC luma, AC luma, DC chroma, AC chroma
	c.scan(func(t int, blk *[64]int16, diff int) { countBlock(&freq, t, blk, diff) })
	var codes [4]huffCode
	for i := range codes {
		codes[i] = optimalCode(&freq[i])
	}

	out := make([]byte, 0, 1024+c.w*c.h/4)
	out = append(out, 0xFF, 0xD8)
	// JFIF APP0: version 1.1, no density, no thumbnail.
	out = append(out, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0)
	tables := 1
	if len(c.comps) == 3 {
		tables = 2
	}
	for t := range tables {
		out = append(out, 0xFF, 0xDB, 0, 67, byte(t))
		for _, nat := range zigzag {
			out = append(out, c.quant[t][nat])
		}
	}
	sof := []byte{0xFF, 0xC0, 0, byte(8 + 3*len(c.comps)), 8, byte(c.h >> 8), byte(c.h), byte(c.w >> 8), byte(c.w), byte(len(c.comps))}
	for i, comp := range c.comps {
		sof = append(sof, byte(i+1), byte(comp.h<<4|comp.v), byte(comp.table))
	}
	out = append(out, sof...)
	for t := range 2 * tables {
		hc := &codes[t]
		n := 0
		for _, k := range hc.counts[1:17] {
			n += int(k)
		}
		class, id := t%2, t/2
		out = append(out, 0xFF, 0xC4, byte((19+n)>>8), byte(19+n), byte(class<<4|id))
		out = append(out, hc.counts[1:17]...)
		out = append(out, hc.vals...)
	}
	out = append(out, 0xFF, 0xDA, 0, byte(6+2*len(c.comps)), byte(len(c.comps)))
	for i, comp := range c.comps {
		out = append(out, byte(i+1), byte(comp.table<<4|comp.table))
	}
	out = append(out, 0, 63, 0)

	bw := bitWriter{buf: out}
	c.scan(func(t int, blk *[64]int16, diff int) { emitBlock(&bw, &codes, t, blk, diff) })
	bw.flush()
	return append(bw.buf, 0xFF, 0xD9)
}

// scan walks the blocks in scan order and calls f for each with its table
// index (2·table: DC; +1: AC) and DC difference.
func (c *Coefficients) scan(f func(t int, blk *[64]int16, diff int)) {
	pred := make([]int, len(c.comps))
	block := func(ci, i int) {
		blk := (*[64]int16)(c.comps[ci].blocks[i : i+64])
		f(2*c.comps[ci].table, blk, int(blk[0])-pred[ci])
		pred[ci] = int(blk[0])
	}
	if len(c.comps) == 1 {
		for i := 0; i < len(c.comps[0].blocks); i += 64 {
			block(0, i)
		}
		return
	}
	mx, my := c.comps[1].bw, c.comps[1].bh
	for y := range my {
		for x := range mx {
			for ci := range c.comps {
				comp := &c.comps[ci]
				for by := range comp.v {
					for bx := range comp.h {
						block(ci, ((y*comp.v+by)*comp.bw+x*comp.h+bx)*64)
					}
				}
			}
		}
	}
}

// countBlock counts the Huffman symbols of one block (T.81 F.1.2).
func countBlock(freq *[4][257]int, t int, blk *[64]int16, diff int) {
	s, _ := category(diff)
	freq[t][s]++
	ac := &freq[t+1]
	last := lastNonZero(blk)
	run := 0
	for _, v := range blk[1 : last+1] {
		if v == 0 {
			run++
			continue
		}
		for run > 15 {
			ac[0xF0]++
			run -= 16
		}
		s, _ := category(int(v))
		ac[run<<4|int(s)]++
		run = 0
	}
	if last < 63 {
		ac[0x00]++
	}
}

// emitBlock writes the Huffman symbols and extra bits of one block.
func emitBlock(bw *bitWriter, codes *[4]huffCode, t int, blk *[64]int16, diff int) {
	dc, ac := &codes[t], &codes[t+1]
	s, e := category(diff)
	bw.put(uint32(dc.code[s])<<s|e, uint(dc.size[s])+s)
	last := lastNonZero(blk)
	run := 0
	for _, v := range blk[1 : last+1] {
		if v == 0 {
			run++
			continue
		}
		for run > 15 {
			bw.put(uint32(ac.code[0xF0]), uint(ac.size[0xF0]))
			run -= 16
		}
		s, e := category(int(v))
		sym := run<<4 | int(s)
		bw.put(uint32(ac.code[sym])<<s|e, uint(ac.size[sym])+s)
		run = 0
	}
	if last < 63 {
		bw.put(uint32(ac.code[0]), uint(ac.size[0]))
	}
}

// lastNonZero returns the zig-zag index of the last non-zero AC
// coefficient of blk, or 0: the symbols end there with an end of block.
func lastNonZero(blk *[64]int16) int {
	for k := 63; k > 0; k-- {
		if blk[k] != 0 {
			return k
		}
	}
	return 0
}

// category returns the size category of v and its extra bits (T.81 F.1.2).
func category(v int) (uint, uint32) {
	a := v
	if a < 0 {
		a = -a
		v--
	}
	s := uint(bits.Len(uint(a)))
	return s, uint32(v) & (1<<s - 1)
}

// bitWriter packs bits MSB first into buf with JPEG byte stuffing.
type bitWriter struct {
	buf []byte
	acc uint64 // pending bits in the low n bits
	n   uint
}

// put appends the low size bits of v (size ≤ 32).
func (w *bitWriter) put(v uint32, size uint) {
	w.acc = w.acc<<size | uint64(v)
	w.n += size
	if w.n < 32 {
		return
	}
	w.n -= 32
	word := uint32(w.acc >> w.n)
	if x := ^word; (x-0x01010101)&^x&0x80808080 == 0 { // no 0xFF byte
		w.buf = binary.BigEndian.AppendUint32(w.buf, word)
		return
	}
	for i := 3; i >= 0; i-- {
		b := byte(word >> (8 * i))
		w.buf = append(w.buf, b)
		if b == 0xFF {
			w.buf = append(w.buf, 0)
		}
	}
}

// flush pads the last byte with ones and writes the pending bytes.
func (w *bitWriter) flush() {
	pad := (8 - w.n%8) % 8
	w.acc = w.acc<<pad | (1<<pad - 1)
	w.n += pad
	for w.n >= 8 {
		w.n -= 8
		b := byte(w.acc >> w.n)
		w.buf = append(w.buf, b)
		if b == 0xFF {
			w.buf = append(w.buf, 0)
		}
	}
}

// huffCode is a Huffman table in DHT form plus its codes.
type huffCode struct {
	counts [33]byte // counts[l]: codes of length l
	vals   []byte
	code   [256]uint16
	size   [256]uint8
}

// optimalCode builds a Huffman code of at most 16 bits from symbol counts
// (T.81 K.2; symbol 256 is reserved so that no code is all ones).
func optimalCode(freq *[257]int) huffCode {
	var hc huffCode
	f := *freq
	used := false
	for _, n := range f[:256] {
		used = used || n > 0
	}
	if !used {
		return hc
	}
	f[256] = 1
	var size [257]int
	var others [257]int
	for i := range others {
		others[i] = -1
	}
	for {
		// v1: the least frequency (the largest symbol on ties), v2: the next.
		v1, v2 := -1, -1
		for i, n := range f {
			if n > 0 && (v1 < 0 || n <= f[v1]) {
				v1 = i
			}
		}
		for i, n := range f {
			if n > 0 && i != v1 && (v2 < 0 || n <= f[v2]) {
				v2 = i
			}
		}
		if v2 < 0 {
			break
		}
		f[v1] += f[v2]
		f[v2] = 0
		size[v1]++
		for others[v1] >= 0 {
			v1 = others[v1]
			size[v1]++
		}
		others[v1] = v2
		size[v2]++
		for others[v2] >= 0 {
			v2 = others[v2]
			size[v2]++
		}
	}
	var count [260]int
	for _, s := range size {
		if s > 0 {
			count[s]++
		}
	}
	// Limit code lengths to 16 (K.2, figure K.3).
	for i := len(count) - 1; i > 16; i-- {
		for count[i] > 0 {
			j := i - 2
			for count[j] == 0 {
				j--
			}
			count[i] -= 2
			count[i-1]++
			count[j+1] += 2
			count[j]--
		}
	}
	i := 16
	for count[i] == 0 {
		i--
	}
	count[i]-- // the reserved symbol's code
	// Symbols by increasing code size, then value (figure K.4).
	for l := 1; l <= 256; l++ {
		for s := range 256 {
			if size[s] == l {
				hc.vals = append(hc.vals, byte(s))
			}
		}
	}
	code, k := uint16(0), 0
	for l := 1; l <= 16; l++ {
		hc.counts[l] = byte(count[l])
		for range count[l] {
			s := hc.vals[k]
			hc.code[s], hc.size[s] = code, uint8(l)
			code++
			k++
		}
		code <<= 1
	}
	return hc
}
