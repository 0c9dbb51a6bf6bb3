package jpegscale

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"sort"
)

// This file is a small baseline JPEG encoder for the tests: image/jpeg only
// writes 4:2:0 without restart markers, and the decoder must be checked on
// every sampling layout, on restart intervals and on long Huffman codes.
// It is slow and simple (direct DCT, two passes, optimal Huffman tables
// from the symbol counts, as in T.81 annex K.2). Its output is checked by
// decoding it with image/jpeg, so a mistake here cannot hide one there.

// encodeSpec describes a test JPEG.
type encodeSpec struct {
	sampling [][2]int // h, v per component; one entry means greyscale
	restart  int      // MCUs per restart interval, 0 for none
	quality  int      // 1-100; scales the quantisers
}

// testPicture returns a deterministic w×h picture with smooth gradients,
// hard edges, fine texture and noise: the content that separates decoders.
func testPicture(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 7))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	cx, cy, r := rng.Float64()*float64(w), rng.Float64()*float64(h), float64(min(w, h))/3
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			c := [3]float64{40 + 180*fx, 200 - 150*fy, 90 + 60*math.Sin(fx*7+fy*5)}
			if dx, dy := float64(x)-cx, float64(y)-cy; dx*dx+dy*dy < r*r {
				c = [3]float64{230, 60, 40} // a red disc
			}
			if (x/5+y/5)%2 == 0 && x > w/2 && y > h/2 {
				c[0], c[1], c[2] = c[0]-60, c[1]-60, c[2]-60 // a checkerboard corner
			}
			n := (rng.Float64() - 0.5) * 12 // σ ≈ 3.5, sensor-like
			m.SetRGBA(x, y, color.RGBA{sat(c[0] + n), sat(c[1] + n), sat(c[2] + n), 255})
		}
	}
	return m
}

func sat(v float64) uint8 { return uint8(max(0, min(255, math.Round(v)))) }

// encodeTest encodes m as a baseline JPEG per spec.
func encodeTest(m *image.RGBA, spec encodeSpec) []byte {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	nc := len(spec.sampling)
	hmax, vmax := 1, 1
	for _, s := range spec.sampling {
		hmax, vmax = max(hmax, s[0]), max(vmax, s[1])
	}
	if nc == 1 {
		hmax, vmax = 1, 1
	}
	// Full-resolution component planes.
	full := make([][]float64, nc)
	for i := range full {
		full[i] = make([]float64, w*h)
	}
	for y := range h {
		for x := range w {
			c := m.RGBAAt(x, y)
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			full[0][y*w+x] = float64(yy)
			if nc == 3 {
				full[1][y*w+x], full[2][y*w+x] = float64(cb), float64(cr)
			}
		}
	}
	mcusX, mcusY := (w+8*hmax-1)/(8*hmax), (h+8*vmax-1)/(8*vmax)
	// Each component's blocks, quantised, in zig-zag order, by block row.
	type compBlocks struct {
		h, v   int
		bw, bh int
		blocks [][64]int32
	}
	comps := make([]compBlocks, nc)
	quant := quantTable(spec.quality)
	for i, s := range spec.sampling {
		ch, cv := s[0], s[1]
		if nc == 1 {
			ch, cv = 1, 1
		}
		// Downsample by box averaging to ceil(w*ch/hmax) × ceil(h*cv/vmax).
		fx, fy := hmax/ch, vmax/cv
		pw, ph := (w*ch+hmax-1)/hmax, (h*cv+vmax-1)/vmax
		p := make([]float64, pw*ph)
		for y := range ph {
			for x := range pw {
				var sum float64
				var n int
				for j := range fy {
					for k := range fx {
						if sx, sy := x*fx+k, y*fy+j; sx < w && sy < h {
							sum += full[i][sy*w+sx]
							n++
						}
					}
				}
				p[y*pw+x] = sum / float64(n)
			}
		}
		bw, bh := mcusX*ch, mcusY*cv
		if nc == 1 {
			bw, bh = (w+7)/8, (h+7)/8
		}
		cb := compBlocks{h: ch, v: cv, bw: bw, bh: bh, blocks: make([][64]int32, bw*bh)}
		for by := range bh {
			for bx := range bw {
				var px [64]float64
				for y := range 8 {
					for x := range 8 {
						sx, sy := min(bx*8+x, pw-1), min(by*8+y, ph-1) // replicate edges
						px[y*8+x] = p[sy*pw+sx] - 128
					}
				}
				cb.blocks[by*bw+bx] = fdctQuant(&px, &quant)
			}
		}
		comps[i] = cb
	}
	// The block sequence of the scan, as (component, block) pairs.
	type ref struct{ c, b int }
	var seq [][]ref // per MCU
	if nc == 1 {
		for i := range comps[0].blocks {
			seq = append(seq, []ref{{0, i}})
		}
	} else {
		for my := range mcusY {
			for mx := range mcusX {
				var mcu []ref
				for ci, c := range comps {
					for by := range c.v {
						for bx := range c.h {
							mcu = append(mcu, ref{ci, (my*c.v+by)*c.bw + mx*c.h + bx})
						}
					}
				}
				seq = append(seq, mcu)
			}
		}
	}
	table := func(ci int) int { return min(ci, 1) } // luma 0, chroma 1
	// Pass 1: count symbols. Pass 2: emit them.
	var freq [4][257]int // DC0, AC0, DC1, AC1
	var codes [4]huffCode
	var bw bitWriter
	for pass := range 2 {
		bw = bitWriter{}
		pred := make([]int32, nc)
		for n, mcu := range seq {
			if spec.restart > 0 && n > 0 && n%spec.restart == 0 {
				bw.restart(n/spec.restart - 1)
				clear(pred)
			}
			for _, r := range mcu {
				blk := &comps[r.c].blocks[r.b]
				t := table(r.c)
				sym := func(class int, s byte, extra int32, size uint) {
					if pass == 0 {
						freq[2*t+class][s]++
						return
					}
					code := codes[2*t+class]
					bw.put(uint32(code.code[s]), uint(code.size[s]))
					if size > 0 {
						bw.put(uint32(extra)&(1<<size-1), size)
					}
				}
				diff := blk[0] - pred[r.c]
				pred[r.c] = blk[0]
				s, e := category(diff)
				sym(0, byte(s), e, s)
				run := 0
				for k := 1; k < 64; k++ {
					if blk[k] == 0 {
						run++
						continue
					}
					for run > 15 {
						sym(1, 0xF0, 0, 0)
						run -= 16
					}
					s, e := category(blk[k])
					sym(1, byte(run<<4)|byte(s), e, s)
					run = 0
				}
				if run > 0 {
					sym(1, 0x00, 0, 0)
				}
			}
		}
		if pass == 0 {
			for i := range codes {
				codes[i] = optimalCode(&freq[i])
			}
		}
	}
	bw.flush()

	var out bytes.Buffer
	seg := func(marker byte, payload []byte) {
		out.Write([]byte{0xFF, marker})
		binary.Write(&out, binary.BigEndian, uint16(len(payload)+2))
		out.Write(payload)
	}
	out.Write([]byte{0xFF, 0xD8})
	dqt := []byte{0}
	for k := range 64 {
		dqt = append(dqt, byte(quant[zigzag[k]]))
	}
	seg(0xDB, append(dqt, append([]byte{1}, dqt[1:]...)...)) // tables 0 and 1, the same
	sof := []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), byte(nc)}
	for i, s := range spec.sampling {
		sof = append(sof, byte(i+1), byte(s[0]<<4|s[1]), byte(table(i)))
	}
	seg(0xC0, sof)
	var dht []byte
	for i, c := range codes {
		if i >= 2 && nc == 1 {
			break
		}
		dht = append(dht, byte((i%2)<<4|i/2))
		dht = append(dht, c.counts[1:17]...)
		dht = append(dht, c.vals...)
	}
	seg(0xC4, dht)
	if spec.restart > 0 {
		seg(0xDD, []byte{byte(spec.restart >> 8), byte(spec.restart)})
	}
	sos := []byte{byte(nc)}
	for i := range nc {
		sos = append(sos, byte(i+1), byte(table(i)<<4|table(i)))
	}
	seg(0xDA, append(sos, 0, 63, 0))
	out.Write(bw.buf)
	out.Write([]byte{0xFF, 0xD9})
	return out.Bytes()
}

// quantTable returns a natural-order table that grows with frequency.
func quantTable(quality int) [64]int32 {
	var q [64]int32
	scale := 100 - quality
	for v := range 8 {
		for u := range 8 {
			q[v*8+u] = int32(max(1, min(255, 1+(u+v+2)*scale/8)))
		}
	}
	return q
}

// fdctQuant is the forward DCT of T.81 A.3.3 followed by quantisation; it
// returns the coefficients in zig-zag order.
func fdctQuant(px *[64]float64, q *[64]int32) [64]int32 {
	var out [64]int32
	for k := range 64 {
		nat := int(zigzag[k])
		v, u := nat/8, nat%8
		var sum float64
		for y := range 8 {
			for x := range 8 {
				sum += px[y*8+x] * math.Cos(float64(2*x+1)*float64(u)*math.Pi/16) * math.Cos(float64(2*y+1)*float64(v)*math.Pi/16)
			}
		}
		cu, cv := 1.0, 1.0
		if u == 0 {
			cu = 1 / math.Sqrt2
		}
		if v == 0 {
			cv = 1 / math.Sqrt2
		}
		out[k] = int32(math.Round(sum * cu * cv / 4 / float64(q[nat])))
	}
	return out
}

// category returns the size category of v and its extra bits (T.81 F.1.2).
func category(v int32) (uint, int32) {
	a := v
	if a < 0 {
		a = -a
		v--
	}
	s := uint(0)
	for a > 0 {
		s++
		a >>= 1
	}
	return s, v
}

// huffCode is a Huffman table in DHT form plus its encoding.
type huffCode struct {
	counts [33]byte // counts[l]: codes of length l
	vals   []byte
	code   [256]uint16
	size   [256]uint8
}

// optimalCode builds a length-limited Huffman code from symbol counts
// (T.81 K.2, with the reserved symbol 256 keeping the all-ones code out).
func optimalCode(freq *[257]int) huffCode {
	f := *freq
	used := false
	for _, n := range f {
		used = used || n > 0
	}
	if !used {
		return huffCode{} // a table no block uses
	}
	f[256] = 1
	var size [257]int
	others := [257]int{}
	for i := range others {
		others[i] = -1
	}
	for {
		v1, v2 := -1, -1
		for i := range f {
			if f[i] > 0 && (v1 < 0 || f[i] <= f[v1]) {
				v1 = i
			}
		}
		for i := range f {
			if f[i] > 0 && i != v1 && (v2 < 0 || f[i] <= f[v2]) {
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
	var bits [40]int
	for _, s := range size {
		if s > 0 {
			bits[s]++
		}
	}
	for i := 39; i > 16; i-- {
		for bits[i] > 0 {
			j := i - 2
			for bits[j] == 0 {
				j--
			}
			bits[i] -= 2
			bits[i-1]++
			bits[j+1] += 2
			bits[j]--
		}
	}
	i := 16
	for bits[i] == 0 {
		i--
	}
	bits[i]-- // drop the reserved code
	// Symbols by increasing code size (the reserved one last, dropped).
	syms := make([]int, 0, 256)
	for s := range 256 {
		if size[s] > 0 {
			syms = append(syms, s)
		}
	}
	sort.SliceStable(syms, func(a, b int) bool { return size[syms[a]] < size[syms[b]] })
	var hc huffCode
	k, code := 0, uint16(0)
	for l := 1; l <= 16; l++ {
		hc.counts[l] = byte(bits[l])
		for range bits[l] {
			s := syms[k]
			hc.vals = append(hc.vals, byte(s))
			hc.code[s], hc.size[s] = code, uint8(l)
			code++
			k++
		}
		code <<= 1
	}
	return hc
}

// bitWriter packs bits MSB first with JPEG byte stuffing.
type bitWriter struct {
	buf  []byte
	acc  uint32
	bits uint
}

func (b *bitWriter) put(v uint32, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		b.acc = b.acc<<1 | (v>>uint(i))&1
		b.bits++
		if b.bits == 8 {
			b.buf = append(b.buf, byte(b.acc))
			if byte(b.acc) == 0xFF {
				b.buf = append(b.buf, 0)
			}
			b.acc, b.bits = 0, 0
		}
	}
}

// flush pads the last byte with ones.
func (b *bitWriter) flush() {
	if b.bits > 0 {
		b.put(1<<(8-b.bits)-1, 8-b.bits)
	}
}

// restart flushes and writes marker RSTn (n mod 8).
func (b *bitWriter) restart(n int) {
	b.flush()
	b.buf = append(b.buf, 0xFF, byte(0xD0+n%8))
}
