package jpegscale

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
)

// chunkRows is how many MCU rows the Huffman decoder hands to the IDCT
// goroutine at once: few enough that the IDCT starts early and the buffers
// stay in cache (at 1/2 scale on a 4000-pixel-wide 4:2:0 photo a chunk is
// 190 KiB of coefficients), enough that the 47 hand-offs for its 188 MCU
// rows cost nothing measurable.
const chunkRows = 4

// ringSize is the number of chunk buffers in flight: one being decoded, one
// being transformed and one spare to absorb jitter between the two.
const ringSize = 3

// pipelineMinN is the smallest output block size for which the IDCT runs on
// its own goroutine. Measured on the imagebench photo (4000×3000, 3.5 MB),
// fastest of 15: at full scale the pipeline takes decoding from 158 to
// 111 ms; at 1/2 it is even (40 ms); at 1/4 and 1/8 the IDCT is a few
// percent of the Huffman decoding and the hand-off is not worth it.
const pipelineMinN = 4

// padBytes of zeros follow the entropy-coded data so that the bit reader's
// 8-byte loads never leave the buffer.
const padBytes = 16

// gather[n] lists, for each coefficient of the compact n×n block kept for
// an n×n reduced IDCT (natural order), its zig-zag index in the decoded
// block.
var gather = func() (t [9][]uint8) {
	for _, n := range []int{1, 2, 4, 8} {
		t[n] = make([]uint8, n*n)
		for k, nat := range zigzag {
			if v, u := int(nat)/8, int(nat)%8; u < n && v < n {
				t[n][v*n+u] = uint8(k)
			}
		}
	}
	return t
}()

// unstuff copies the entropy-coded data starting at d.pos into a clean
// buffer without stuffed zero bytes and markers. It returns the buffer,
// padded with zeros, and the start offsets of its restart intervals followed
// by the end of the data.
func (d *decoder) unstuff() ([]byte, []int, error) {
	data := d.data[d.pos:]
	clean := make([]byte, 0, len(data)+padBytes)
	segs := []int{0}
	for len(data) > 0 {
		i := bytes.IndexByte(data, 0xFF)
		if i < 0 {
			clean = append(clean, data...)
			break // no marker after the scan: the file may be truncated
		}
		clean = append(clean, data[:i]...)
		data = data[i:]
		if len(data) < 2 {
			break
		}
		switch m := data[1]; {
		case m == 0:
			clean = append(clean, 0xFF)
			data = data[2:]
		case m >= markerRST0 && m <= markerRST7:
			if want := byte(markerRST0 + (len(segs)-1)%8); m != want {
				return nil, nil, corruptf("restart marker RST%d, want RST%d", m-markerRST0, want-markerRST0)
			}
			segs = append(segs, len(clean))
			data = data[2:]
		case m == 0xFF:
			data = data[1:] // a fill byte before a marker
		default:
			data = data[:0] // the marker that ends the scan
		}
	}
	segs = append(segs, len(clean))
	clean = append(clean, make([]byte, padBytes)...)
	return clean, segs, nil
}

// scanState is the Huffman decoder's position, kept between MCU rows.
type scanState struct {
	buf     []byte
	segs    []int
	seg     int // current restart interval
	acc     uint64
	nb      uint // valid bits at the top of acc
	pos     int  // next byte of buf to load
	pred    [3]int32
	mcu     int
	compOff [3]int // start of each component's blocks in a chunk buffer
}

// consumedPast reports whether the decoder used bits beyond the current
// restart interval: the data was truncated or is corrupt.
func (s *scanState) consumedPast() bool {
	return s.pos*8-int(s.nb) > s.segs[s.seg+1]*8
}

// chunk is a group of decoded MCU rows handed to the IDCT.
type chunk struct {
	coef []int16
	row  int // first MCU row
	rows int
}

// decodeScan decodes the scan that starts at d.pos into planes.
func (d *decoder) decodeScan(ctx context.Context) (image.Image, error) {
	clean, segs, err := d.unstuff()
	if err != nil {
		return nil, err
	}
	if d.restart > 0 {
		need := (d.mcusX*d.mcusY + d.restart - 1) / d.restart
		if len(segs)-1 < need {
			return nil, corruptf("%d restart intervals, want %d", len(segs)-1, need)
		}
	}
	n := d.n
	nn := n * n
	s := &scanState{buf: clean, segs: segs}
	planes := make([][]byte, len(d.comps))
	strides := make([]int, len(d.comps))
	chunkLen := 0
	for i, c := range d.comps {
		strides[i] = c.bw * n
		planes[i] = make([]byte, strides[i]*d.mcusY*c.v*n)
		s.compOff[i] = chunkLen
		chunkLen += chunkRows * c.v * c.bw * nn
	}
	mults := make([][64]int64, len(d.comps))
	for i, c := range d.comps {
		mults[i] = multipliers(&d.quant[c.tq], n)
	}
	idct := [9]func([]byte, int, []int16, *[64]int64){1: idct1, 2: idct2, 4: idct4, 8: idct8}[n]
	transform := func(ch chunk) {
		for i, c := range d.comps {
			m := &mults[i]
			stride := strides[i]
			for by := range ch.rows * c.v {
				y0 := (ch.row*c.v + by) * n
				src := ch.coef[s.compOff[i]+by*c.bw*nn:]
				for bx := range c.bw {
					idct(planes[i][y0*stride+bx*n:], stride, src[bx*nn:], m)
				}
			}
		}
	}

	nChunks := (d.mcusY + chunkRows - 1) / chunkRows
	ring := min(ringSize, nChunks)
	free := make(chan []int16, ring)
	for range ring {
		free <- make([]int16, chunkLen)
	}
	var full chan chunk
	done := make(chan struct{})
	if nChunks > 1 && n >= pipelineMinN {
		full = make(chan chunk, ring)
		go func() {
			defer close(done)
			for ch := range full {
				transform(ch)
				free <- ch.coef // every block of the next chunk's rows is overwritten
			}
		}()
	}
	s.pos = segs[0]
	for row := 0; row < d.mcusY; row += chunkRows {
		if err = ctx.Err(); err != nil {
			break
		}
		ch := chunk{coef: <-free, row: row, rows: min(chunkRows, d.mcusY-row)}
		for r := range ch.rows {
			if err = d.decodeRow(s, ch.coef, r); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
		if full == nil {
			transform(ch)
			free <- ch.coef
			continue
		}
		full <- ch
	}
	if full != nil {
		close(full)
		<-done
	}
	if err != nil {
		return nil, err
	}
	if s.consumedPast() {
		return nil, corruptf("truncated data")
	}
	return d.image(planes, strides), nil
}

// image wraps the decoded planes.
func (d *decoder) image(planes [][]byte, strides []int) image.Image {
	r := image.Rect(0, 0, (d.w*d.n+7)/8, (d.h*d.n+7)/8)
	if len(planes) == 1 {
		return &image.Gray{Pix: planes[0], Stride: strides[0], Rect: r}
	}
	ratio, _ := subsampleRatio(d.comps[0].h/d.comps[1].h, d.comps[0].v/d.comps[1].v)
	return &image.YCbCr{
		Y: planes[0], Cb: planes[1], Cr: planes[2],
		YStride: strides[0], CStride: strides[1],
		SubsampleRatio: ratio, Rect: r,
	}
}

// decodeRow Huffman-decodes MCU row r of a chunk into coef: for each
// component, its blocks row by row, n×n coefficients each (natural order).
func (d *decoder) decodeRow(s *scanState, coef []int16, r int) error {
	nn := d.n * d.n
	keep := gather[d.n]
	br := bitReader{acc: s.acc, nb: s.nb, pos: s.pos}
	var blk [128]int16
	var ok bool
	for mx := range d.mcusX {
		if d.restart > 0 && s.mcu > 0 && s.mcu%d.restart == 0 {
			s.pos, s.nb = br.pos, br.nb
			if s.consumedPast() {
				return corruptf("restart interval %d overruns", s.seg)
			}
			s.seg++
			br = bitReader{pos: s.segs[s.seg]}
			s.pred = [3]int32{}
		}
		for ci := range d.comps {
			c := &d.comps[ci]
			dcT, acT := d.dc[c.td], d.ac[c.ta]
			for by := range c.v {
				off := s.compOff[ci] + ((r*c.v+by)*c.bw+mx*c.h)*nn
				for bx := range c.h {
					br, ok = decodeBlock(br, s.buf, dcT, acT, &blk, &s.pred[ci])
					if !ok {
						return corruptf("bad Huffman data")
					}
					// Only the kept positions are ever read, so only they
					// need zeroing for the next block.
					dst := coef[off+bx*nn : off+bx*nn+nn]
					for i, z := range keep {
						dst[i] = blk[z&127]
						blk[z&127] = 0
					}
				}
			}
		}
		s.mcu++
	}
	s.acc, s.nb, s.pos = br.acc, br.nb, br.pos
	return nil
}

// bitReader is the position of the Huffman decoder in the clean data: acc
// holds nb valid bits at its top, and pos is the next byte to load.
type bitReader struct {
	acc uint64
	nb  uint
	pos int
}

// decodeBlock decodes one block's coefficients into blk, in zig-zag order
// (entries of coefficients beyond the 64th are scratch), updates the DC
// predictor and returns the new reader state; false means corrupt data.
// It is a small function of its own so that the compiler keeps the bit
// reader in registers in the AC loop, where nearly all the time goes.
func decodeBlock(br bitReader, buf []byte, dcT, acT *huffTable, blk *[128]int16, pred *int32) (bitReader, bool) {
	acc, nb, pos := br.acc, br.nb, br.pos
	maxPos := len(buf) - 8
	// Each refill leaves at least 56 bits, and one code plus its extra
	// bits is at most 16+15, so one refill per symbol is enough.
	if nb < 32 {
		if pos > maxPos {
			return bitReader{}, false
		}
		acc |= binary.BigEndian.Uint64(buf[pos:]) >> (nb & 63)
		pos += int(63-nb) >> 3
		nb |= 56
	}
	// DC: a size category and that many extra bits.
	if e := dcT.fast[acc>>(64-lutBits)]; e != 0 {
		l := uint(e) & 63
		acc <<= l
		nb -= l
		*pred += e >> 16
	} else {
		sym, l := dcT.decode(acc)
		if l == 0 || sym > 15 {
			return bitReader{}, false
		}
		acc <<= l & 63
		nb -= l
		if sz := uint(sym); sz > 0 {
			*pred += extend(int32(acc>>((64-sz)&63)), sz)
			acc <<= sz & 63
			nb -= sz
		}
	}
	blk[0] = int16(*pred)

	// AC: run/size symbols up to the end of the block.
	k := 1
	for k < 64 {
		if nb < 32 {
			if pos > maxPos {
				return bitReader{}, false
			}
			acc |= binary.BigEndian.Uint64(buf[pos:]) >> (nb & 63)
			pos += int(63-nb) >> 3
			nb |= 56
		}
		if e := acT.fast[acc>>(64-lutBits)]; e != 0 {
			l := uint(e) & 63
			acc <<= l
			nb -= l
			k += int(e>>8) & 15
			blk[k&127] = int16(e >> 16)
			k++
			continue
		}
		// Not a fast entry: decode the code here rather than in a call, so
		// that nothing in the loop makes the compiler spill acc.
		var sym uint8
		var l uint
		if se := acT.sym[acc>>(64-lutBits)]; se != 0 {
			sym, l = uint8(se), uint(se>>8)
		} else {
			for l = lutBits + 1; l <= 16; l++ {
				if code := int32(acc >> (64 - l)); code <= acT.maxcode[l] {
					i := acT.valptr[l] + code
					if i < 0 || i >= acT.n {
						return bitReader{}, false
					}
					sym = acT.vals[i]
					break
				}
			}
			if l > 16 {
				return bitReader{}, false
			}
		}
		acc <<= l & 63
		nb -= l
		run, sz := int(sym>>4), uint(sym&15)
		if sz == 0 {
			if run != 15 {
				break // end of block
			}
			k += 16
			continue
		}
		k += run
		blk[k&127] = int16(extend(int32(acc>>((64-sz)&63)), sz))
		acc <<= sz & 63
		nb -= sz
		k++
	}
	if k > 64 {
		return bitReader{}, false // a coefficient beyond the 64th
	}
	return bitReader{acc: acc, nb: nb, pos: pos}, true
}
