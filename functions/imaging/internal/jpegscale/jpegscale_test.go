package jpegscale

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestDenom(t *testing.T) {
	tests := []struct {
		name       string
		w, h, side int
		want       int
	}{
		{"12 MP to 800", 4000, 3000, 800, 4},
		{"portrait", 3000, 4000, 800, 4},
		{"exactly 8×", 6400, 100, 800, 8},
		{"just under 8×", 6399, 100, 800, 4},
		{"small", 1000, 700, 800, 1},
		{"2×", 1600, 1200, 800, 2},
		{"smaller than side", 150, 100, 800, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Denom(tt.w, tt.h, tt.side); got != tt.want {
				t.Errorf("Denom(%d, %d, %d) = %d, want %d", tt.w, tt.h, tt.side, got, tt.want)
			}
		})
	}
}

// maxMAE bounds the mean absolute error, per plane, between a reduced
// decode and image/jpeg's full decode box-averaged to the same size. The
// two are different low-pass filters: the reduced IDCT keeps the block's low
// frequencies exactly and drops the rest (sharper than a box, with some
// ringing), so they differ on edges and texture. On these deliberately hard
// pictures (noise, a 5-pixel checkerboard, a saturated red disc) the
// measured error is 0.6-2.2 levels, 2.6 at worst (the Cr plane of 4:1:1 at
// 1/4, a 6×6 plane dominated by the disc's edge). A wrong block position,
// DC, quantiser or plane is off by tens of levels; the exact check of the
// reduced IDCT is TestDecodeMatchesLowPass.
const maxMAE = 3.0

// maxMAEFull bounds the same error at full size, where both decoders
// compute the same IDCT and differ only in rounding.
const maxMAEFull = 0.1

func TestDecodeMatchesReference(t *testing.T) {
	tests := []struct {
		name string
		w, h int
		spec encodeSpec
	}{
		{"grey", 61, 45, encodeSpec{sampling: [][2]int{{1, 1}}, quality: 90}},
		{"grey with declared 2×2 sampling", 37, 29, encodeSpec{sampling: [][2]int{{2, 2}}, quality: 80}},
		{"4:4:4", 67, 33, encodeSpec{sampling: [][2]int{{1, 1}, {1, 1}, {1, 1}}, quality: 90}},
		{"4:2:2", 75, 41, encodeSpec{sampling: [][2]int{{2, 1}, {1, 1}, {1, 1}}, quality: 85}},
		{"4:2:0", 99, 57, encodeSpec{sampling: [][2]int{{2, 2}, {1, 1}, {1, 1}}, quality: 90}},
		{"4:4:0", 53, 70, encodeSpec{sampling: [][2]int{{1, 2}, {1, 1}, {1, 1}}, quality: 90}},
		{"4:1:1", 90, 23, encodeSpec{sampling: [][2]int{{4, 1}, {1, 1}, {1, 1}}, quality: 90}},
		{"4:2:0 restart every MCU", 47, 35, encodeSpec{sampling: [][2]int{{2, 2}, {1, 1}, {1, 1}}, restart: 1, quality: 90}},
		{"4:2:0 restart every 3 MCUs", 83, 61, encodeSpec{sampling: [][2]int{{2, 2}, {1, 1}, {1, 1}}, restart: 3, quality: 75}},
		{"4:4:4 restart 9 (RST wraps past 7)", 96, 80, encodeSpec{sampling: [][2]int{{1, 1}, {1, 1}, {1, 1}}, restart: 9, quality: 90}},
		{"grey restart every 5 blocks", 71, 39, encodeSpec{sampling: [][2]int{{1, 1}}, restart: 5, quality: 95}},
		{"1×1 pixel", 1, 1, encodeSpec{sampling: [][2]int{{2, 2}, {1, 1}, {1, 1}}, quality: 90}},
		{"one row", 203, 1, encodeSpec{sampling: [][2]int{{2, 2}, {1, 1}, {1, 1}}, quality: 90}},
		{"one column", 1, 150, encodeSpec{sampling: [][2]int{{2, 1}, {1, 1}, {1, 1}}, quality: 90}},
		{"multiple of 16", 128, 64, encodeSpec{sampling: [][2]int{{2, 2}, {1, 1}, {1, 1}}, quality: 100}},
		{"high quality, long codes", 120, 90, encodeSpec{sampling: [][2]int{{2, 2}, {1, 1}, {1, 1}}, quality: 99}},
	}
	for i, tt := range tests {
		data := encodeTest(testPicture(tt.w, tt.h, uint64(i)), tt.spec)
		ref, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: image/jpeg cannot decode the test file: %v", tt.name, err)
		}
		for _, denom := range []int{1, 2, 4, 8} {
			t.Run(fmt.Sprintf("%s/1:%d", tt.name, denom), func(t *testing.T) {
				got, err := Decode(context.Background(), data, denom, 0)
				if err != nil {
					t.Fatalf("Decode(1/%d) = %v", denom, err)
				}
				wantRect := image.Rect(0, 0, (tt.w+denom-1)/denom, (tt.h+denom-1)/denom)
				if got.Bounds() != wantRect {
					t.Fatalf("Decode(1/%d) bounds = %v, want %v", denom, got.Bounds(), wantRect)
				}
				bound := maxMAE
				if denom == 1 {
					bound = maxMAEFull
				}
				for _, p := range comparePlanes(t, ref, got, denom) {
					if p.mae > bound {
						t.Errorf("Decode(1/%d) plane %s: mean abs error %.3f vs box-averaged image/jpeg, want ≤ %.1f", denom, p.name, p.mae, bound)
					}
				}
			})
		}
	}
}

// testPlane is one plane of a decoded image.
type testPlane struct {
	name   string
	pix    []byte
	stride int
	w, h   int
}

// testPlanes returns the planes of an *image.Gray or *image.YCbCr.
func testPlanes(t *testing.T, m image.Image) []testPlane {
	t.Helper()
	switch m := m.(type) {
	case *image.Gray:
		return []testPlane{{"Y", m.Pix, m.Stride, m.Rect.Dx(), m.Rect.Dy()}}
	case *image.YCbCr:
		cw, ch := m.COffset(m.Rect.Max.X-1, 0)+1, (m.COffset(0, m.Rect.Max.Y-1))/m.CStride+1
		return []testPlane{
			{"Y", m.Y, m.YStride, m.Rect.Dx(), m.Rect.Dy()},
			{"Cb", m.Cb, m.CStride, cw, ch},
			{"Cr", m.Cr, m.CStride, cw, ch},
		}
	}
	t.Fatalf("unexpected image type %T", m)
	return nil
}

type planeError struct {
	name string
	mae  float64
}

// comparePlanes box-averages each plane of the full-size ref by denom and
// returns the mean absolute error of got's plane against it.
func comparePlanes(t *testing.T, ref, got image.Image, denom int) []planeError {
	t.Helper()
	rp, gp := testPlanes(t, ref), testPlanes(t, got)
	if len(rp) != len(gp) {
		t.Fatalf("%d planes, reference has %d", len(gp), len(rp))
	}
	if r, ok := ref.(*image.YCbCr); ok && r.SubsampleRatio != got.(*image.YCbCr).SubsampleRatio {
		t.Fatalf("subsample ratio %v, reference has %v", got.(*image.YCbCr).SubsampleRatio, r.SubsampleRatio)
	}
	var out []planeError
	for i, r := range rp {
		g := gp[i]
		ow, oh := (r.w+denom-1)/denom, (r.h+denom-1)/denom
		if g.w != ow || g.h != oh {
			t.Fatalf("plane %s is %d×%d, want %d×%d", r.name, g.w, g.h, ow, oh)
		}
		var sum float64
		for y := range oh {
			for x := range ow {
				var s, n int
				for yy := y * denom; yy < min(y*denom+denom, r.h); yy++ {
					for xx := x * denom; xx < min(x*denom+denom, r.w); xx++ {
						s += int(r.pix[yy*r.stride+xx])
						n++
					}
				}
				sum += math.Abs(float64(s)/float64(n) - float64(g.pix[y*g.stride+x]))
			}
		}
		out = append(out, planeError{r.name, sum / float64(ow*oh)})
	}
	return out
}

// maxMAELowPass bounds the error of a reduced decode against the ideal
// low-pass of image/jpeg's decoded blocks (forward DCT in float64, the
// n×n lowest frequencies kept, inverse on the n-point grid): the same
// computation, differing only by the rounding of image/jpeg's pixels and of
// our fixed point (measured: below 0.2).
const maxMAELowPass = 0.35

func TestDecodeMatchesLowPass(t *testing.T) {
	tests := []struct {
		name string
		spec encodeSpec
	}{
		{"grey", encodeSpec{sampling: [][2]int{{1, 1}}, quality: 90}},
		{"4:2:0", encodeSpec{sampling: [][2]int{{2, 2}, {1, 1}, {1, 1}}, quality: 90}},
		{"4:2:2 restarts", encodeSpec{sampling: [][2]int{{2, 1}, {1, 1}, {1, 1}}, restart: 4, quality: 75}},
	}
	for i, tt := range tests {
		data := encodeTest(testPicture(93, 77, uint64(10+i)), tt.spec)
		ref, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, denom := range []int{2, 4, 8} {
			t.Run(fmt.Sprintf("%s/1:%d", tt.name, denom), func(t *testing.T) {
				got, err := Decode(context.Background(), data, denom, 0)
				if err != nil {
					t.Fatalf("Decode(1/%d) = %v", denom, err)
				}
				n := 8 / denom
				rp, gp := testPlanes(t, ref), testPlanes(t, got)
				for pi, r := range rp {
					g := gp[pi]
					var sum float64
					var count int
					for by := 0; (by+1)*8 <= r.h; by++ {
						for bx := 0; (bx+1)*8 <= r.w; bx++ {
							want := lowPass(r.pix[by*8*r.stride+bx*8:], r.stride, n)
							for y := range n {
								for x := range n {
									sum += math.Abs(want[y*n+x] - float64(g.pix[(by*n+y)*g.stride+bx*n+x]))
									count++
								}
							}
						}
					}
					if mae := sum / float64(count); mae > maxMAELowPass {
						t.Errorf("Decode(1/%d) plane %s: mean abs error %.3f vs the ideal low-pass, want ≤ %.2f", denom, r.name, mae, maxMAELowPass)
					}
				}
			})
		}
	}
}

// lowPass returns the n×n ideal low-pass image of the 8×8 block at pix.
func lowPass(pix []byte, stride, n int) []float64 {
	a := func(u int) float64 {
		if u == 0 {
			return 1 / (2 * math.Sqrt2)
		}
		return 0.5
	}
	var f [8][8]float64 // F(v, u)
	for v := range n {
		for u := range n {
			var sum float64
			for y := range 8 {
				for x := range 8 {
					sum += (float64(pix[y*stride+x]) - 128) * math.Cos(float64((2*x+1)*u)*math.Pi/16) * math.Cos(float64((2*y+1)*v)*math.Pi/16)
				}
			}
			f[v][u] = a(u) * a(v) * sum
		}
	}
	out := make([]float64, n*n)
	for y := range n {
		for x := range n {
			var sum float64
			for v := range n {
				for u := range n {
					sum += a(u) * a(v) * f[v][u] * math.Cos(float64((2*x+1)*u)*math.Pi/float64(2*n)) * math.Cos(float64((2*y+1)*v)*math.Pi/float64(2*n))
				}
			}
			out[y*n+x] = max(0, min(255, math.Round(sum+128)))
		}
	}
	return out
}

func TestDecodeGoEncoded(t *testing.T) {
	// image/jpeg's own encoder: standard Huffman tables, 4:2:0 and grey.
	pic := testPicture(333, 251, 99)
	var color, grey bytes.Buffer
	if err := jpeg.Encode(&color, pic, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	g := image.NewGray(pic.Bounds())
	for i := range g.Pix {
		g.Pix[i] = pic.Pix[4*i+1]
	}
	if err := jpeg.Encode(&grey, g, &jpeg.Options{Quality: 75}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		data []byte
	}{{"4:2:0", color.Bytes()}, {"grey", grey.Bytes()}} {
		ref, err := jpeg.Decode(bytes.NewReader(tt.data))
		if err != nil {
			t.Fatal(err)
		}
		for _, denom := range []int{1, 2, 4, 8} {
			t.Run(fmt.Sprintf("%s/1:%d", tt.name, denom), func(t *testing.T) {
				got, err := Decode(context.Background(), tt.data, denom, 0)
				if err != nil {
					t.Fatalf("Decode(1/%d) = %v", denom, err)
				}
				bound := maxMAE
				if denom == 1 {
					bound = maxMAEFull
				}
				for _, p := range comparePlanes(t, ref, got, denom) {
					if p.mae > bound {
						t.Errorf("Decode(1/%d) plane %s: mean abs error %.3f, want ≤ %.1f", denom, p.name, p.mae, bound)
					}
				}
			})
		}
	}
}

func TestDecodeLibjpegFixtures(t *testing.T) {
	// Files written by libjpeg-turbo (through libvips); see testdata/README.md.
	tests := []struct {
		file string
		want error
	}{
		{"444-restart.jpg", nil},
		{"420.jpg", nil},
		{"grey.jpg", nil},
		{"progressive.jpg", ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			for _, denom := range []int{1, 2, 4, 8} {
				got, err := Decode(context.Background(), data, denom, 0)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Decode(%s, 1/%d) error = %v, want %v", tt.file, denom, err, tt.want)
				}
				if err != nil {
					continue
				}
				ref, err := jpeg.Decode(bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				bound := maxMAE
				if denom == 1 {
					bound = maxMAEFull
				}
				for _, p := range comparePlanes(t, ref, got, denom) {
					if p.mae > bound {
						t.Errorf("Decode(%s, 1/%d) plane %s: mean abs error %.3f, want ≤ %.1f", tt.file, denom, p.name, p.mae, bound)
					}
				}
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := encodeTest(testPicture(40, 30, 1), encodeSpec{sampling: [][2]int{{2, 2}, {1, 1}, {1, 1}}, restart: 2, quality: 90})
	sosEnd := bytes.Index(valid, []byte{0xFF, 0xDA})
	patch := func(at int, b ...byte) []byte {
		out := bytes.Clone(valid)
		copy(out[at:], b)
		return out
	}
	sof := bytes.Index(valid, []byte{0xFF, 0xC0})
	tests := []struct {
		name      string
		data      []byte
		maxPixels int64
		want      error
	}{
		{"empty", nil, 0, ErrCorrupt},
		{"not a JPEG", []byte("%PDF-1.7\n"), 0, ErrCorrupt},
		{"headers only", valid[:sosEnd], 0, ErrCorrupt},
		{"truncated in the scan", valid[:sosEnd+40], 0, ErrCorrupt},
		{"truncated before the last interval", valid[:len(valid)-30], 0, ErrCorrupt},
		{"progressive", patch(sof+1, 0xC2), 0, ErrUnsupported},
		{"arithmetic", patch(sof+1, 0xC9), 0, ErrUnsupported},
		{"12-bit", patch(sof+4, 12), 0, ErrUnsupported},
		{"zero width", patch(sof+7, 0, 0), 0, ErrCorrupt},
		{"too large", valid, 40 * 30, ErrTooLarge},
		{"wrong restart marker", bytes.Replace(valid, []byte{0xFF, 0xD1}, []byte{0xFF, 0xD5}, 1), 0, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(context.Background(), tt.data, 4, tt.maxPixels)
			if !errors.Is(err, tt.want) {
				t.Errorf("Decode(%s) = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
}

func TestDecodeTruncatedNeverSucceedsWrongly(t *testing.T) {
	files := map[string][]byte{
		"restarts": encodeTest(testPicture(50, 34, 3), encodeSpec{sampling: [][2]int{{2, 2}, {1, 1}, {1, 1}}, restart: 2, quality: 90}),
		"plain":    encodeTest(testPicture(50, 34, 4), encodeSpec{sampling: [][2]int{{2, 1}, {1, 1}, {1, 1}}, quality: 90}),
	}
	for name, data := range files {
		full, err := Decode(context.Background(), data, 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		start := bytes.Index(data, []byte{0xFF, 0xDA})
		for n := start; n < len(data); n++ {
			got, err := Decode(context.Background(), data[:n], 2, 0)
			switch {
			case err == nil && len(data)-n > 2:
				// Only the EOI marker may be missing from a complete scan.
				t.Errorf("%s: Decode(first %d of %d bytes) succeeded", name, n, len(data))
			case err == nil:
				if !bytes.Equal(got.(*image.YCbCr).Y, full.(*image.YCbCr).Y) {
					t.Errorf("%s: Decode(without EOI) differs from the full decode", name)
				}
			case !errors.Is(err, ErrCorrupt):
				t.Errorf("%s: Decode(first %d of %d bytes) = %v, want ErrCorrupt", name, n, len(data), err)
			}
		}
	}
}

func TestDecodeCancelled(t *testing.T) {
	data := encodeTest(testPicture(64, 200, 5), encodeSpec{sampling: [][2]int{{1, 1}}, quality: 90})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Decode(ctx, data, 2, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Decode(cancelled) = %v, want context.Canceled", err)
	}
}
