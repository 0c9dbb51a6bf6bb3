package variants

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
)

func FuzzMake(f *testing.F) {
	jpg := encodeJPEG(f, picture(40, 30), 80)
	f.Add(jpg)
	f.Add(jpg[:len(jpg)/2])
	f.Add(withExif(jpg, exifAPP1(binary.BigEndian, 6)))
	f.Add(encodePNG(f, picture(20, 12)))
	f.Add(transparentPNG(f, 16, 16))
	f.Add(palettedGIF(f, 9, 7))
	f.Add(readFile(f, "progressive.jpg"))
	f.Add(readFile(f, "cmyk.jpg"))
	f.Add(pngBomb(100_000, 100_000))
	f.Add(jpegBomb(300, 200, false))
	f.Fuzz(func(t *testing.T, src []byte) {
		// A small pixel limit keeps each run fast; bigger images are refused.
		vs, err := Make(context.Background(), src, Options{MaxPixels: 1 << 16})
		if err != nil {
			if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrCorrupt) {
				t.Errorf("Make = %v, want a permanent error", err)
			}
			return
		}
		if len(vs) != 3 {
			t.Fatalf("Make returned %d variants", len(vs))
		}
		for _, v := range vs {
			if v.Width < 1 || v.Height < 1 || len(v.Data) == 0 {
				t.Errorf("variant %s is %d×%d with %d bytes", v.Name, v.Width, v.Height, len(v.Data))
			}
		}
	})
}

func FuzzExifOrientation(f *testing.F) {
	jpg := encodeJPEG(f, picture(8, 8), 80)
	f.Add(withExif(jpg, exifAPP1(binary.BigEndian, 6)))
	f.Add(withExif(jpg, exifAPP1(binary.LittleEndian, 3)))
	f.Fuzz(func(t *testing.T, src []byte) {
		if o := exifOrientation(src); o < 1 || o > 8 {
			t.Errorf("exifOrientation = %d, want 1-8", o)
		}
	})
}
