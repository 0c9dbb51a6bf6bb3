package jpegscale

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"os"
	"testing"
	"time"
)

func TestScratchPhoto(t *testing.T) {
	data, err := os.ReadFile("/tmp/imgwork/test.jpg")
	if err != nil {
		t.Skip(err)
	}
	ref, _ := jpeg.Decode(bytes.NewReader(data))
	for _, den := range []int{1, 2, 4, 8} {
		st := time.Now()
		m, err := Decode(context.Background(), data, den, 0)
		if err != nil {
			t.Fatal(err)
		}
		el := time.Since(st)
		got := m.(*image.YCbCr)
		r := ref.(*image.YCbCr)
		t.Logf("denom %d: %v %v maeY=%.3f", den, el, got.Rect, planeMAE(r.Y, r.YStride, r.Rect.Dx(), r.Rect.Dy(), got.Y, got.YStride, den))
	}
}

func planeMAE(ref []byte, rs, w, h int, got []byte, gs, d int) float64 {
	ow, oh := (w+d-1)/d, (h+d-1)/d
	var sum float64
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			s, c := 0, 0
			for yy := y * d; yy < min(y*d+d, h); yy++ {
				for xx := x * d; xx < min(x*d+d, w); xx++ {
					s += int(ref[yy*rs+xx])
					c++
				}
			}
			diff := float64(s)/float64(c) - float64(got[y*gs+x])
			if diff < 0 {
				diff = -diff
			}
			sum += diff
		}
	}
	return sum / float64(ow*oh)
}

func BenchmarkScratchDecode(b *testing.B) {
	data, err := os.ReadFile("/tmp/imgwork/test.jpg")
	if err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		if _, err := Decode(context.Background(), data, 4, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func TestScratchMin(t *testing.T) {
	data, err := os.ReadFile("/tmp/imgwork/test.jpg")
	if err != nil {
		t.Skip(err)
	}
	for _, den := range []int{4, 8} {
		best := time.Hour
		for range 25 {
			st := time.Now()
			if _, err := Decode(context.Background(), data, den, 0); err != nil {
				t.Fatal(err)
			}
			best = min(best, time.Since(st))
		}
		t.Logf("denom %d min %v", den, best)
	}
}
