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

// triangle is bilinear filtering that widens with the reduction, so it
// averages every source pixel (no aliasing). Measured against a reference
// (full decode, Catmull-Rom) it is as close as catmullRom for the medium
// variant and twice as cheap; see BenchmarkResize and TestKernelQuality.
var triangle = kernel{radius: 1, at: func(x float64) float64 {
	return max(0, 1-math.Abs(x))
}}

// catmullRom is the sharper cubic (B=0, C=1/2), kept for comparison.
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

// taps are the weights of one destination pixel: Weights apply to source
// pixels Start, Start+1, ...
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
// source pixels, filtering horizontally then vertically.
func resample(src plane, extentX, extentY float64, w, h int, k kernel) plane {
	hx := weights(w, src.w, extentX, k)
	hy := weights(h, src.h, extentY, k)
	// Horizontal pass over the rows the vertical pass will read.
	tmp := make([]byte, w*src.h)
	for y := range src.h {
		row := src.pix[y*src.stride : y*src.stride+src.w]
		out := tmp[y*w : y*w+w]
		for x, t := range hx {
			s := row[t.start : t.start+len(t.weights)]
			var acc int32
			for j, wt := range t.weights {
				acc += wt * int32(s[j])
			}
			out[x] = clamp8(acc)
		}
	}
	dst := plane{pix: make([]byte, w*h), stride: w, w: w, h: h}
	acc := make([]int32, w)
	for y, t := range hy {
		clear(acc)
		for j, wt := range t.weights {
			row := tmp[(t.start+j)*w : (t.start+j)*w+w]
			for x, v := range row {
				acc[x] += wt * int32(v)
			}
		}
		out := dst.pix[y*w : y*w+w]
		for x, v := range acc {
			out[x] = clamp8(v)
		}
	}
	return dst
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
