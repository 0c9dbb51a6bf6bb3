package jpegenc

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"testing"
)

// testImage returns a deterministic photo-like w×h image: gradients, a hard
// edge and noise.
func testImage(w, h int, grey bool) image.Image {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	val := func(x, y, c int) byte {
		v := 40 + 150*float64(x)/float64(w) + 40*math.Sin(float64(y)/9+float64(c)) + (rng.Float64()-0.5)*10
		if x > w/2 && y > h/3 {
			v -= 50
		}
		return byte(max(0, min(255, v)))
	}
	r := image.Rect(0, 0, w, h)
	if grey {
		m := image.NewGray(r)
		for y := range h {
			for x := range w {
				m.Pix[y*m.Stride+x] = val(x, y, 0)
			}
		}
		return m
	}
	m := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
	for y := range h {
		for x := range w {
			m.Y[m.YOffset(x, y)] = val(x, y, 0)
			m.Cb[m.COffset(x, y)] = 128 + (val(x, y, 1)-128)/3
			m.Cr[m.COffset(x, y)] = 128 + (val(x, y, 2)-128)/3
		}
	}
	return m
}

// meanAbsError compares the planes of two images of the same kind.
func meanAbsError(t *testing.T, a, b image.Image) float64 {
	t.Helper()
	var pa, pb [][]byte
	var strides [2][]int
	switch a := a.(type) {
	case *image.Gray:
		pa, strides[0] = [][]byte{a.Pix}, []int{a.Stride}
		b := b.(*image.Gray)
		pb, strides[1] = [][]byte{b.Pix}, []int{b.Stride}
	case *image.YCbCr:
		pa, strides[0] = [][]byte{a.Y, a.Cb, a.Cr}, []int{a.YStride, a.CStride, a.CStride}
		b := b.(*image.YCbCr)
		pb, strides[1] = [][]byte{b.Y, b.Cb, b.Cr}, []int{b.YStride, b.CStride, b.CStride}
	}
	w, h := a.Bounds().Dx(), a.Bounds().Dy()
	var sum float64
	var n int
	for i := range pa {
		pw, ph := w, h
		if i > 0 {
			pw, ph = (w+1)/2, (h+1)/2
		}
		for y := range ph {
			for x := range pw {
				sum += math.Abs(float64(pa[i][y*strides[0][i]+x]) - float64(pb[i][y*strides[1][i]+x]))
				n++
			}
		}
	}
	return sum / float64(n)
}

func TestEncodeDecodesWithImageJPEG(t *testing.T) {
	tests := []struct {
		name    string
		w, h    int
		grey    bool
		quality int
		maxMAE  float64
	}{
		{"4:2:0 q82", 800, 600, false, 82, 2.5},
		{"4:2:0 odd size", 201, 149, false, 82, 2.5},
		{"4:2:0 q100", 97, 65, false, 100, 0.8},
		{"4:2:0 q10", 120, 90, false, 10, 8},
		{"grey q82", 333, 222, true, 82, 2.5},
		{"1×1", 1, 1, false, 82, 3},
		{"one row", 300, 1, true, 90, 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := testImage(tt.w, tt.h, tt.grey)
			c, err := Quantize(src, tt.quality)
			if err != nil {
				t.Fatal(err)
			}
			data := c.Encode()
			got, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("image/jpeg cannot decode Encode's output: %v", err)
			}
			if got.Bounds() != src.Bounds() {
				t.Fatalf("decoded bounds %v, want %v", got.Bounds(), src.Bounds())
			}
			if mae := meanAbsError(t, src, got); mae > tt.maxMAE {
				t.Errorf("decoded image differs from the source by %.2f on average, want ≤ %.1f", mae, tt.maxMAE)
			}
		})
	}
}

func TestEncodeIsSmallerThanImageJPEG(t *testing.T) {
	src := testImage(800, 600, false)
	c, err := Quantize(src, 82)
	if err != nil {
		t.Fatal(err)
	}
	var std bytes.Buffer
	if err := jpeg.Encode(&std, src, &jpeg.Options{Quality: 82}); err != nil {
		t.Fatal(err)
	}
	if got := len(c.Encode()); got > std.Len() {
		t.Errorf("Encode wrote %d bytes, image/jpeg %d at the same quality", got, std.Len())
	}
}

func TestRequantizeMatchesQuantize(t *testing.T) {
	for _, grey := range []bool{false, true} {
		src := testImage(203, 157, grey)
		c, err := Quantize(src, 82)
		if err != nil {
			t.Fatal(err)
		}
		// Paint a corner and requantise only that corner.
		r := image.Rect(150, 120, 203, 157)
		switch m := src.(type) {
		case *image.YCbCr:
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					m.Y[m.YOffset(x, y)] = 250
					m.Cb[m.COffset(x, y)] = 90
				}
			}
		case *image.Gray:
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					m.Pix[y*m.Stride+x] = 250
				}
			}
		}
		marked := c.Clone()
		if err := marked.Requantize(src, r); err != nil {
			t.Fatal(err)
		}
		want, err := Quantize(src, 82)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(marked.Encode(), want.Encode()) {
			t.Errorf("grey=%v: Requantize of the changed corner differs from a full Quantize", grey)
		}
		if bytes.Equal(c.Encode(), want.Encode()) {
			t.Errorf("grey=%v: Clone shares blocks with the original", grey)
		}
	}
}

func TestQuantizeRefuses(t *testing.T) {
	tests := []struct {
		name string
		m    image.Image
	}{
		{"4:4:4", image.NewYCbCr(image.Rect(0, 0, 8, 8), image.YCbCrSubsampleRatio444)},
		{"RGBA", image.NewRGBA(image.Rect(0, 0, 8, 8))},
		{"not at origin", image.NewGray(image.Rect(1, 1, 9, 9))},
		{"empty", image.NewGray(image.Rect(0, 0, 0, 0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Quantize(tt.m, 82); err == nil {
				t.Errorf("Quantize(%s) = nil error, want ErrFormat", tt.name)
			}
		})
	}
}

func TestOptimalCodeIsPrefixFreeAndShort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	var freq [257]int
	for s := range 256 {
		freq[s] = 1 + int(math.Pow(2, 20*rng.Float64())) // skewed, forcing long codes
	}
	hc := optimalCode(&freq)
	type code struct {
		bits uint16
		n    uint8
	}
	var codes []code
	for s := range 256 {
		if hc.size[s] == 0 || hc.size[s] > 16 {
			t.Fatalf("symbol %d has code length %d", s, hc.size[s])
		}
		if hc.code[s] == 1<<hc.size[s]-1 {
			t.Errorf("symbol %d has the all-ones code", s)
		}
		codes = append(codes, code{hc.code[s], hc.size[s]})
	}
	for i, a := range codes {
		for j, b := range codes {
			if i != j && a.n <= b.n && b.bits>>(b.n-a.n) == a.bits {
				t.Fatalf("code %d is a prefix of code %d", i, j)
			}
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	src := testImage(800, 600, false)
	b.Run("quantize+encode", func(b *testing.B) {
		for b.Loop() {
			c, _ := Quantize(src, 82)
			c.Encode()
		}
	})
	c, _ := Quantize(src, 82)
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			c.Encode()
		}
	})
	b.Run("image/jpeg", func(b *testing.B) {
		for b.Loop() {
			var buf bytes.Buffer
			jpeg.Encode(&buf, src, &jpeg.Options{Quality: 82})
		}
	})
}
