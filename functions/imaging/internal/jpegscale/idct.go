package jpegscale

import "math"

// The reduced inverse DCT. An 8×8 block's coefficients F(u,v) describe
//
//	f(x,y) = Σu Σv a(u) a(v) F(u,v) cos((2x+1)uπ/16) cos((2y+1)vπ/16)
//
// with a(0) = 1/(2√2) and a(u) = 1/2 otherwise (T.81 A.3.3). Keeping only the
// N×N lowest frequencies and evaluating the same sum on an N-point grid,
// cos((2x+1)uπ/2N), gives an N×N image of the block whose pixels are close to
// the means of (8/N)×(8/N) pixel squares: it keeps exactly the frequencies
// the smaller grid can hold and drops the rest, an ideal low-pass. (libjpeg's
// jidctred instead evaluates the 8-point sum between pixel pairs, which folds
// the dropped frequencies back in as aliases; an exact box average would
// also attenuate the kept ones by sin(dθ)/(d·sin θ). Measured on the
// imagebench photo, the medium variant made from this decode is closer to a
// full-size reference than one made with that attenuation: 46.8 dB against
// 46.2 dB PSNR of luma.)
// The factor a(u)a(v) and the quantiser are folded into one integer
// multiplier per coefficient; the sums are separable, so each block is N
// one-dimensional transforms over columns then N over rows, each split into
// even and odd halves. Everything is integer arithmetic, so the output is the
// same on every platform.

// fracBits is the fixed-point precision of the multipliers and of the
// cosines: 13 bits keeps the rounding error of a pixel far below 1/2 while
// three products still fit in int64 for any valid coefficient.
const fracBits = 13

// Cosines scaled by 2^fracBits: cK is cos(Kπ/16).
const (
	c1 = 8035 // cos(π/16)
	c2 = 7568 // cos(2π/16)
	c3 = 6811 // cos(3π/16)
	c4 = 5793 // cos(4π/16)
	c5 = 4551 // cos(5π/16)
	c6 = 3135 // cos(6π/16)
	c7 = 1598 // cos(7π/16)
	c0 = 1 << fracBits
)

// outShift removes the three fixed-point factors; outBias rounds and adds
// the level shift of 128 (T.81 A.3.1).
const (
	outShift = 3 * fracBits
	outBias  = 1<<(outShift-1) + 128<<outShift
)

// multipliers returns the per-coefficient factors of an n×n reduced IDCT
// for quantisation table q (natural order), indexed v*n+u.
func multipliers(q *[64]uint16, n int) [64]int64 {
	var m [64]int64
	a := func(u int) float64 {
		if u == 0 {
			return 1 / (2 * math.Sqrt2)
		}
		return 0.5
	}
	for v := range n {
		for u := range n {
			m[v*n+u] = int64(math.Round(float64(q[v*8+u]) * a(u) * a(v) * (1 << fracBits)))
		}
	}
	return m
}

func clamp(v int64) uint8 {
	v = (v + outBias) >> outShift
	if uint64(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return uint8(v)
}

// idct1 writes the 1×1 image of a block: its mean.
func idct1(dst []byte, _ int, src []int16, m *[64]int64) {
	dst[0] = clamp(int64(src[0]) * m[0] * c0 * c0)
}

// idct2 writes the 2×2 image of a block.
func idct2(dst []byte, stride int, src []int16, m *[64]int64) {
	src = src[:4]
	var ws [4]int64
	for u := range 2 {
		z0 := int64(src[u]) * m[u] * c0
		z1 := int64(src[2+u]) * m[2+u] * c4
		ws[u], ws[2+u] = z0+z1, z0-z1
	}
	for y := range 2 {
		z0, z1 := ws[2*y]*c0, ws[2*y+1]*c4
		row := dst[y*stride : y*stride+2]
		row[0], row[1] = clamp(z0+z1), clamp(z0-z1)
	}
}

// idct4 writes the 4×4 image of a block.
func idct4(dst []byte, stride int, src []int16, m *[64]int64) {
	src = src[:16]
	var ws [16]int64
	for u := range 4 {
		z0 := int64(src[u]) * m[u]
		z1 := int64(src[4+u]) * m[4+u]
		z2 := int64(src[8+u]) * m[8+u]
		z3 := int64(src[12+u]) * m[12+u]
		e0, e1 := z0*c0+z2*c4, z0*c0-z2*c4
		o0, o1 := z1*c2+z3*c6, z1*c6-z3*c2
		ws[u], ws[12+u] = e0+o0, e0-o0
		ws[4+u], ws[8+u] = e1+o1, e1-o1
	}
	for y := range 4 {
		w := ws[4*y : 4*y+4]
		e0, e1 := w[0]*c0+w[2]*c4, w[0]*c0-w[2]*c4
		o0, o1 := w[1]*c2+w[3]*c6, w[1]*c6-w[3]*c2
		row := dst[y*stride : y*stride+4]
		row[0], row[3] = clamp(e0+o0), clamp(e0-o0)
		row[1], row[2] = clamp(e1+o1), clamp(e1-o1)
	}
}

// idct8 writes the full 8×8 image of a block.
func idct8(dst []byte, stride int, src []int16, m *[64]int64) {
	src = src[:64]
	var ws [64]int64
	for u := range 8 {
		if src[8+u]|src[16+u]|src[24+u]|src[32+u]|src[40+u]|src[48+u]|src[56+u] == 0 {
			// Only the DC of this column: a constant column, common in
			// smooth areas.
			z := int64(src[u]) * m[u] * c0
			for y := range 8 {
				ws[8*y+u] = z
			}
			continue
		}
		var z [8]int64
		for v := range 8 {
			z[v] = int64(src[8*v+u]) * m[8*v+u]
		}
		g := idct8x1(&z)
		for y := range 8 {
			ws[8*y+u] = g[y]
		}
	}
	for y := range 8 {
		g := idct8x1((*[8]int64)(ws[8*y : 8*y+8]))
		row := dst[y*stride : y*stride+8]
		for x := range 8 {
			row[x] = clamp(g[x])
		}
	}
}

// idct8x1 is the one-dimensional 8-point transform: the even coefficients
// form a 4-point transform, the odd ones a 4×4 product.
func idct8x1(z *[8]int64) [8]int64 {
	e0, e1 := z[0]*c0+z[4]*c4, z[0]*c0-z[4]*c4
	o0, o1 := z[2]*c2+z[6]*c6, z[2]*c6-z[6]*c2
	E0, E3 := e0+o0, e0-o0
	E1, E2 := e1+o1, e1-o1
	O0 := z[1]*c1 + z[3]*c3 + z[5]*c5 + z[7]*c7
	O1 := z[1]*c3 - z[3]*c7 - z[5]*c1 - z[7]*c5
	O2 := z[1]*c5 - z[3]*c1 + z[5]*c7 + z[7]*c3
	O3 := z[1]*c7 - z[3]*c5 + z[5]*c3 - z[7]*c1
	return [8]int64{E0 + O0, E1 + O1, E2 + O2, E3 + O3, E3 - O3, E2 - O2, E1 - O1, E0 - O0}
}
