package variants

import (
	"image"
	"math"
	"sync"
)

// weightBits is the fixed-point precision of resampling weights: 14 bits
// keep the rounding error of a sum of up to a few dozen taps well under one
// grey level and the products of 8-bit samples far from int32 overflow.
const weightBits = 14

// kernel is a resampling filter: its radius at scale 1 and its weight at
// distance x (in destination pixels).
type kernel struct {
	radius float64
	at     func(x float64) float64
}

// catmullRom is the cubic (B=0, C=1/2) Make resizes with, widened by the
// reduction so that it filters every source pixel (no aliasing).
// Measured on the imagebench photo (1/4 decode to 1000×750, then 800×600),
// its luma is 46.8 dB PSNR from the same filter applied to the full-size
// decode and 42.5 dB from a 5×5 box average of it; triangle (bilinear) gives
// 43.3 and 40.9 dB in about 80% of the time (BenchmarkResize, 5-7 ms for
// the medium variant's three planes), a small part of Make either way.
var catmullRom = kernel{radius: 2, at: func(x float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		return (1.5*x-2.5)*x*x + 1
	case x < 2:
		return ((-0.5*x+2.5)*x-4)*x + 2
	}
	return 0
}}

// triangle is bilinear filtering widened by the reduction, kept for
// comparison in tests and benchmarks.
var triangle = kernel{radius: 1, at: func(x float64) float64 {
	return max(0, 1-math.Abs(x))
}}

// taps are the weights of one destination pixel: weights apply to source
// pixels start, start+1, ...
type taps struct {
	start   int
	weights []int32
}

// weights computes the taps of n destination pixels taken from srcLen
// source pixels that span extent source pixels (extent ≤ srcLen; it is not
// an integer when the source was decoded at a reduced scale and rounded
// up). Pixel centres are at half-integers; taps outside the source are
// dropped and the rest renormalised.
func weights(n, srcLen int, extent float64, k kernel) []taps {
	scale := extent / float64(n)
	support := k.radius * max(scale, 1)
	out := make([]taps, n)
	var buf []float64
	for i := range out {
		center := (float64(i) + 0.5) * scale
		lo := max(0, int(math.Floor(center-support)))
		hi := min(srcLen, int(math.Ceil(center+support)))
		buf = buf[:0]
		var sum float64
		for j := lo; j < hi; j++ {
			w := k.at((float64(j) + 0.5 - center) / max(scale, 1))
			buf = append(buf, w)
			sum += w
		}
		if sum == 0 { // cannot happen for n ≤ extent, but stay defined
			buf = append(buf[:0], 1)
			sum, lo = 1, min(srcLen-1, int(center))
		}
		ws := make([]int32, len(buf))
		var total int32
		peak := 0
		for j, w := range buf {
			ws[j] = int32(math.Round(w / sum * (1 << weightBits)))
			total += ws[j]
			if ws[j] > ws[peak] {
				peak = j
			}
		}
		ws[peak] += 1<<weightBits - total // make the weights sum to exactly 1
		for len(ws) > 1 && ws[len(ws)-1] == 0 {
			ws = ws[:len(ws)-1]
		}
		for len(ws) > 1 && ws[0] == 0 {
			ws, lo = ws[1:], lo+1
		}
		out[i] = taps{start: lo, weights: ws}
	}
	return out
}

// plane is one 8-bit channel.
type plane struct {
	pix    []byte
	stride int
	w, h   int
}

func clamp8(v int32) byte {
	v = (v + 1<<(weightBits-1)) >> weightBits
	if uint32(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return byte(v)
}

// resample resizes src to w×h, where src's w×h pixels span extentX×extentY
// source pixels, filtering horizontally then vertically, each pass in
// parallel row bands.
func resample(src plane, extentX, extentY float64, w, h int, k kernel) plane {
	hx := fixedTaps(weights(w, src.w, extentX, k), src.w)
	hy := weights(h, src.h, extentY, k)
	tmp := make([]byte, w*src.h)
	dst := plane{pix: make([]byte, w*h), stride: w, w: w, h: h}
	inBands(src.h, func(y0, y1 int) { horizontal(tmp, w, src, hx, y0, y1) })
	inBands(h, func(y0, y1 int) { vertical(dst, tmp, hy, y0, y1) })
	return dst
}

// rowFilter is a horizontal filter with the same number of taps for every
// destination pixel (padded with zero weights), so that the common sizes
// run as straight-line code.
type rowFilter struct {
	n      int     // taps per pixel
	starts []int   // first source pixel of each destination pixel
	w      []int32 // n weights per destination pixel
}

// fixedTaps pads ts to a common tap count within a source of srcLen.
func fixedTaps(ts []taps, srcLen int) rowFilter {
	n := 0
	for _, t := range ts {
		n = max(n, len(t.weights))
	}
	switch {
	case n <= 4:
		n = 4
	case n <= 6:
		n = 6
	case n <= 8:
		n = 8
	}
	n = min(n, srcLen)
	f := rowFilter{n: n, starts: make([]int, len(ts)), w: make([]int32, n*len(ts))}
	for i, t := range ts {
		start := min(t.start, srcLen-n) // move left to fit; weights stay aligned
		f.starts[i] = start
		copy(f.w[i*n+t.start-start:], t.weights)
	}
	return f
}

// bands is how many row bands each pass of resample is split into, to run
// on both cores even when one plane (luma) is most of the work.
const bands = 2

// inBands runs f over [0, n) split into bands in parallel.
func inBands(n int, f func(y0, y1 int)) {
	var wg sync.WaitGroup
	for b := range bands {
		y0, y1 := n*b/bands, n*(b+1)/bands
		if y0 < y1 {
			wg.Go(func() { f(y0, y1) })
		}
	}
	wg.Wait()
}

// horizontal filters rows [y0, y1) of src into tmp (stride w).
func horizontal(tmp []byte, w int, src plane, f rowFilter, y0, y1 int) {
	for y := y0; y < y1; y++ {
		row := src.pix[y*src.stride : y*src.stride+src.w]
		out := tmp[y*w : y*w+w]
		out = out[:len(f.starts)]
		switch f.n {
		case 4:
			for x, st := range f.starts {
				s, ws := row[st:st+4], f.w[4*x:4*x+4]
				out[x] = clamp8(ws[0]*int32(s[0]) + ws[1]*int32(s[1]) + ws[2]*int32(s[2]) + ws[3]*int32(s[3]))
			}
		case 6:
			for x, st := range f.starts {
				s, ws := row[st:st+6], f.w[6*x:6*x+6]
				out[x] = clamp8(ws[0]*int32(s[0]) + ws[1]*int32(s[1]) + ws[2]*int32(s[2]) +
					ws[3]*int32(s[3]) + ws[4]*int32(s[4]) + ws[5]*int32(s[5]))
			}
		case 8:
			for x, st := range f.starts {
				s, ws := row[st:st+8], f.w[8*x:8*x+8]
				out[x] = clamp8(ws[0]*int32(s[0]) + ws[1]*int32(s[1]) + ws[2]*int32(s[2]) + ws[3]*int32(s[3]) +
					ws[4]*int32(s[4]) + ws[5]*int32(s[5]) + ws[6]*int32(s[6]) + ws[7]*int32(s[7]))
			}
		default:
			n := f.n
			for x, st := range f.starts {
				s, ws := row[st:st+n], f.w[n*x:n*x+n]
				s = s[:len(ws)]
				var acc int32
				for j, wt := range ws {
					acc += wt * int32(s[j])
				}
				out[x] = clamp8(acc)
			}
		}
	}
}

// vertical filters tmp (stride dst.w) into rows [y0, y1) of dst.
func vertical(dst plane, tmp []byte, hy []taps, y0, y1 int) {
	w := dst.w
	acc := make([]int32, w)
	for y := y0; y < y1; y++ {
		t := hy[y]
		clear(acc)
		for j, wt := range t.weights {
			row := tmp[(t.start+j)*w : (t.start+j)*w+w]
			row = row[:len(acc)]
			for x, v := range row {
				acc[x] += wt * int32(v)
			}
		}
		out := dst.pix[y*w : y*w+w]
		out = out[:len(acc)]
		for x, v := range acc {
			out[x] = clamp8(v)
		}
	}
}

// frame is a decoded image as planes: one (grey) or three (Y, Cb, Cr, the
// chroma planes possibly subsampled by ratio).
type frame struct {
	planes []plane
	ratio  image.YCbCrSubsampleRatio
	// extentX, extentY are the pixels of the full-size image that the
	// first plane spans, in its own pixels (W/d for a 1/d scaled decode).
	extentX, extentY float64
}

func (f *frame) width() int  { return f.planes[0].w }
func (f *frame) height() int { return f.planes[0].h }

// chromaDiv returns the horizontal and vertical chroma subsampling.
func chromaDiv(r image.YCbCrSubsampleRatio) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return 2, 1
	case image.YCbCrSubsampleRatio420:
		return 2, 2
	case image.YCbCrSubsampleRatio440:
		return 1, 2
	case image.YCbCrSubsampleRatio411:
		return 4, 1
	case image.YCbCrSubsampleRatio410:
		return 4, 2
	}
	return 1, 1
}

// resize returns f scaled to w×h. Chroma planes are scaled by the same
// factor as luma, which keeps their centred siting; the planes are
// resampled in parallel.
func (f *frame) resize(w, h int, k kernel) *frame {
	if b := int(min(f.extentX/float64(w), f.extentY/float64(h)) / 2); b >= 2 {
		f = f.shrink(b)
	}
	out := &frame{planes: make([]plane, len(f.planes)), ratio: f.ratio, extentX: float64(w), extentY: float64(h)}
	dx, dy := chromaDiv(f.ratio)
	var wg sync.WaitGroup
	for i, p := range f.planes {
		pw, ph := w, h
		ex, ey := f.extentX, f.extentY
		if i > 0 {
			pw, ph = (w+dx-1)/dx, (h+dy-1)/dy
			// Chroma pixel i is centred on luma (i+½)·dx in both images, so
			// it uses the luma scale: extent/pw = extentX/w.
			ex, ey = f.extentX*float64(pw)/float64(w), f.extentY*float64(ph)/float64(h)
		}
		wg.Go(func() { out.planes[i] = resample(p, ex, ey, pw, ph, k) })
	}
	wg.Wait()
	return out
}

// shrink returns f reduced b times by averaging b×b squares. resize uses it
// first for large reductions (full-size PNGs and the image/jpeg fallback),
// leaving the kernel a reduction between 2 and 4: the kernel costs about
// 2·radius·2 multiply-adds per source pixel (both passes), the box one
// addition, and the kernel then runs on b² times fewer pixels.
func (f *frame) shrink(b int) *frame {
	out := &frame{planes: make([]plane, len(f.planes)), ratio: f.ratio, extentX: f.extentX / float64(b), extentY: f.extentY / float64(b)}
	var wg sync.WaitGroup
	for i, p := range f.planes {
		wg.Go(func() { out.planes[i] = boxShrink(p, b) })
	}
	wg.Wait()
	return out
}

// boxShrink averages b×b squares of p; the last row and column of squares
// average the pixels they have.
func boxShrink(p plane, b int) plane {
	w, h := (p.w+b-1)/b, (p.h+b-1)/b
	out := plane{pix: make([]byte, w*h), stride: w, w: w, h: h}
	sums := make([]uint32, w)
	for oy := range h {
		clear(sums)
		y0, y1 := oy*b, min(oy*b+b, p.h)
		for y := y0; y < y1; y++ {
			row := p.pix[y*p.stride : y*p.stride+p.w]
			for ox := range sums {
				for _, v := range row[ox*b : min(ox*b+b, p.w)] {
					sums[ox] += uint32(v)
				}
			}
		}
		for ox, sum := range sums {
			n := uint32((y1 - y0) * (min(ox*b+b, p.w) - ox*b))
			out.pix[oy*w+ox] = byte((sum + n/2) / n)
		}
	}
	return out
}

// image returns f as an *image.YCbCr or *image.Gray sharing its planes.
func (f *frame) image() image.Image {
	r := image.Rect(0, 0, f.width(), f.height())
	if len(f.planes) == 1 {
		return &image.Gray{Pix: f.planes[0].pix, Stride: f.planes[0].stride, Rect: r}
	}
	return &image.YCbCr{
		Y: f.planes[0].pix, Cb: f.planes[1].pix, Cr: f.planes[2].pix,
		YStride: f.planes[0].stride, CStride: f.planes[1].stride,
		SubsampleRatio: f.ratio, Rect: r,
	}
}

// clone returns a deep copy of f.
func (f *frame) clone() *frame {
	c := *f
	c.planes = make([]plane, len(f.planes))
	for i, p := range f.planes {
		p.pix = append([]byte(nil), p.pix...)
		c.planes[i] = p
	}
	return &c
}
