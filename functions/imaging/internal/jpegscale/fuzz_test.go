package jpegscale

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// fuzzMaxPixels keeps fuzzed images small enough to decode quickly.
const fuzzMaxPixels = 1 << 20

// maxAlloc is what Decode may allocate for input data: a clean copy of the
// entropy-coded data and restart offsets (a few times the input), the
// planes and coefficient buffers (bounded by the pixel limit, here at most
// ~20 bytes per allowed pixel at full scale) and the fixed tables.
func maxAlloc(data []byte) uint64 {
	return 8*uint64(len(data)) + 20*fuzzMaxPixels + 1<<20
}

func FuzzDecode(f *testing.F) {
	specs := []encodeSpec{
		{sampling: [][2]int{{1, 1}}, quality: 90},
		{sampling: [][2]int{{2, 2}, {1, 1}, {1, 1}}, restart: 2, quality: 80},
		{sampling: [][2]int{{2, 1}, {1, 1}, {1, 1}}, quality: 95},
		{sampling: [][2]int{{1, 1}, {1, 1}, {1, 1}}, restart: 1, quality: 60},
	}
	for i, spec := range specs {
		data := encodeTest(testPicture(19+i*7, 13+i*5, uint64(i)), spec)
		f.Add(data)
		f.Add(data[:len(data)/2])
		f.Add(data[:len(data)-3])
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, testPicture(24, 17, 9), &jpeg.Options{Quality: 75}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	files, _ := filepath.Glob("testdata/*.jpg")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		denom := 1 << (len(data) % 4)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m, err := Decode(context.Background(), data, denom, fuzzMaxPixels)
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > maxAlloc(data) {
			t.Errorf("Decode(%d bytes) allocated %d bytes, want ≤ %d", len(data), alloc, maxAlloc(data))
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrTooLarge) {
				t.Errorf("Decode = %v, want one of the package's errors", err)
			}
			return
		}
		if b := m.Bounds(); b.Empty() {
			t.Errorf("Decode returned an empty image %v", b)
		}
	})
}
