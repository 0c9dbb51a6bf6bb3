package variants

import (
	"bytes"
	"fmt"
	"image"
	"math/rand/v2"
	"testing"
)

func TestWeightsSumToOne(t *testing.T) {
	tests := []struct {
		name        string
		n, srcLen   int
		extent      float64
		k           kernel
		wantMaxTaps int
	}{
		{"identity", 10, 10, 10, catmullRom, 1},
		{"1.25× down, cubic", 800, 1000, 1000, catmullRom, 6},
		{"1.25× down, triangle", 800, 1000, 1000, triangle, 3},
		{"4× down", 200, 800, 800, catmullRom, 16},
		{"fractional extent", 800, 1001, 1000.25, catmullRom, 6},
		{"to one pixel", 1, 37, 37, catmullRom, 37},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := weights(tt.n, tt.srcLen, tt.extent, tt.k)
			if len(ws) != tt.n {
				t.Fatalf("weights(%d, ...) has %d entries, want %d", tt.n, len(ws), tt.n)
			}
			for i, w := range ws {
				var sum int32
				for _, v := range w.weights {
					sum += v
				}
				if sum != 1<<weightBits {
					t.Errorf("weights(%d, ...)[%d] sum to %d, want %d", tt.n, i, sum, 1<<weightBits)
				}
				if w.start < 0 || w.start+len(w.weights) > tt.srcLen {
					t.Errorf("weights(%d, ...)[%d] cover [%d, %d), outside [0, %d)", tt.n, i, w.start, w.start+len(w.weights), tt.srcLen)
				}
				if len(w.weights) > tt.wantMaxTaps {
					t.Errorf("weights(%d, ...)[%d] has %d taps, want ≤ %d", tt.n, i, len(w.weights), tt.wantMaxTaps)
				}
			}
		})
	}
}

func TestResample(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	noise := plane{pix: make([]byte, 64*48), stride: 64, w: 64, h: 48}
	for i := range noise.pix {
		noise.pix[i] = byte(rng.IntN(256))
	}
	flat := plane{pix: make([]byte, 64*48), stride: 64, w: 64, h: 48}
	for i := range flat.pix {
		flat.pix[i] = 77
	}
	tests := []struct {
		name string
		src  plane
		w, h int
		want func(out plane) error
	}{
		{"identity keeps every pixel", noise, 64, 48, func(out plane) error {
			for i, v := range out.pix {
				if v != noise.pix[i] {
					return fmt.Errorf("pixel %d = %d, want %d", i, v, noise.pix[i])
				}
			}
			return nil
		}},
		{"flat stays flat", flat, 23, 17, func(out plane) error {
			for i, v := range out.pix {
				if v != 77 {
					return fmt.Errorf("pixel %d = %d, want 77", i, v)
				}
			}
			return nil
		}},
		{"noise averages out", noise, 4, 3, func(out plane) error {
			for i, v := range out.pix {
				if v < 100 || v > 155 {
					return fmt.Errorf("pixel %d = %d, want about 128", i, v)
				}
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := resample(tt.src, float64(tt.src.w), float64(tt.src.h), tt.w, tt.h, catmullRom)
			if out.w != tt.w || out.h != tt.h {
				t.Fatalf("resample to %d×%d gave %d×%d", tt.w, tt.h, out.w, out.h)
			}
			if err := tt.want(out); err != nil {
				t.Errorf("resample(%s): %v", tt.name, err)
			}
		})
	}
}

func TestBoxShrink(t *testing.T) {
	tests := []struct {
		name string
		src  plane
		b    int
		want []byte
	}{
		{"2×2 squares", plane{pix: []byte{0, 2, 10, 20, 4, 6, 30, 40}, stride: 4, w: 4, h: 2}, 2, []byte{3, 25}},
		{"partial edges average what they have", plane{pix: []byte{
			10, 10, 90,
			10, 10, 90,
			50, 50, 200,
		}, stride: 3, w: 3, h: 3}, 2, []byte{10, 90, 50, 200}},
		{"stride beyond width", plane{pix: []byte{8, 8, 99, 8, 8, 99}, stride: 3, w: 2, h: 2}, 2, []byte{8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := boxShrink(tt.src, tt.b)
			if !bytes.Equal(got.pix, tt.want) {
				t.Errorf("boxShrink(%v, %d) = %v, want %v", tt.src.pix, tt.b, got.pix, tt.want)
			}
		})
	}
}

func BenchmarkResize(b *testing.B) {
	src := image.NewYCbCr(image.Rect(0, 0, 1000, 750), image.YCbCrSubsampleRatio420)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range [][]byte{src.Y, src.Cb, src.Cr} {
		for i := range p {
			p[i] = byte(rng.IntN(256))
		}
	}
	f := toFrame(src, 1000, 750)
	for _, k := range []struct {
		name string
		k    kernel
	}{{"catmullRom", catmullRom}, {"triangle", triangle}} {
		b.Run("medium/"+k.name, func(b *testing.B) {
			for b.Loop() {
				f.resize(800, 600, k.k)
			}
		})
	}
	medium := f.resize(800, 600, catmullRom)
	b.Run("thumbnail/catmullRom", func(b *testing.B) {
		for b.Loop() {
			medium.resize(200, 150, catmullRom)
		}
	})
}
