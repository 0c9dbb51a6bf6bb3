package variants

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// exifAPP1 returns an APP1 segment with an Orientation tag in IFD0.
func exifAPP1(order binary.AppendByteOrder, orientation uint16) []byte {
	t := []byte("MM\x00*")
	if order == binary.LittleEndian {
		t = []byte("II*\x00")
	}
	t = order.AppendUint32(t, 8)
	t = order.AppendUint16(t, 2) // two entries
	// ImageWidth (0x0100, LONG) first, then Orientation (SHORT).
	t = order.AppendUint16(t, 0x0100)
	t = order.AppendUint16(t, 4)
	t = order.AppendUint32(t, 1)
	t = order.AppendUint32(t, 400)
	t = order.AppendUint16(t, 0x0112)
	t = order.AppendUint16(t, 3)
	t = order.AppendUint32(t, 1)
	t = order.AppendUint16(t, orientation)
	t = order.AppendUint16(t, 0)
	t = order.AppendUint32(t, 0) // no next IFD
	payload := append([]byte("Exif\x00\x00"), t...)
	seg := []byte{0xFF, 0xE1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(payload)+2))
	return append(seg, payload...)
}

// withExif inserts an APP1 segment right after SOI.
func withExif(jpg, app1 []byte) []byte {
	return append(append(append([]byte(nil), jpg[:2]...), app1...), jpg[2:]...)
}

func TestExifOrientation(t *testing.T) {
	plain := encodeJPEG(t, picture(40, 30), 90)
	tests := []struct {
		name string
		src  []byte
		want int
	}{
		{"no Exif", plain, 1},
		{"big-endian 6", withExif(plain, exifAPP1(binary.BigEndian, 6)), 6},
		{"little-endian 8", withExif(plain, exifAPP1(binary.LittleEndian, 8)), 8},
		{"out of range", withExif(plain, exifAPP1(binary.BigEndian, 9)), 1},
		{"truncated segment", withExif(plain, exifAPP1(binary.BigEndian, 6))[:30], 1},
		{"not TIFF", withExif(plain, append([]byte{0xFF, 0xE1, 0, 12}, "Exif\x00\x00XXXX"...)), 1},
		{"only SOI", []byte{0xFF, 0xD8}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exifOrientation(tt.src); got != tt.want {
				t.Errorf("exifOrientation(%s) = %d, want %d", tt.name, got, tt.want)
			}
		})
	}
}

func TestMakeAppliesExifOrientation(t *testing.T) {
	// A 400×300 picture with a red square in its top-left corner.
	m := image.NewRGBA(image.Rect(0, 0, 400, 300))
	for i := range m.Pix {
		m.Pix[i] = 200
	}
	for y := 20; y < 80; y++ {
		for x := 20; x < 80; x++ {
			m.SetRGBA(x, y, color.RGBA{230, 20, 20, 255})
		}
	}
	plain := encodeJPEG(t, m, 95)
	tests := []struct {
		orientation uint16
		size        image.Point // of the medium variant
		red         image.Point // where the square's centre ends up
	}{
		{1, image.Pt(400, 300), image.Pt(50, 50)},
		{2, image.Pt(400, 300), image.Pt(349, 50)},
		{3, image.Pt(400, 300), image.Pt(349, 249)},
		{4, image.Pt(400, 300), image.Pt(50, 249)},
		{5, image.Pt(300, 400), image.Pt(50, 50)},
		{6, image.Pt(300, 400), image.Pt(249, 50)},
		{7, image.Pt(300, 400), image.Pt(249, 349)},
		{8, image.Pt(300, 400), image.Pt(50, 349)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("orientation ", tt.orientation), func(t *testing.T) {
			vs, err := Make(context.Background(), withExif(plain, exifAPP1(binary.BigEndian, tt.orientation)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			medium := vs[1]
			if got := image.Pt(medium.Width, medium.Height); got != tt.size {
				t.Errorf("medium size = %v, want %v", got, tt.size)
			}
			img, err := jpeg.Decode(bytes.NewReader(medium.Data))
			if err != nil {
				t.Fatal(err)
			}
			if got := img.Bounds().Size(); got != tt.size {
				t.Errorf("medium image size = %v, want %v", got, tt.size)
			}
			r, g, _, _ := img.At(tt.red.X, tt.red.Y).RGBA()
			if r>>8 < 180 || g>>8 > 80 {
				t.Errorf("pixel at %v = (%d, %d, …), want the red square", tt.red, r>>8, g>>8)
			}
			if thumb := vs[0]; (thumb.Width > thumb.Height) != (tt.size.X > tt.size.Y) {
				t.Errorf("thumbnail %d×%d is not oriented like the medium %v", thumb.Width, thumb.Height, tt.size)
			}
		})
	}
}

func TestOrientChroma(t *testing.T) {
	tests := []struct {
		name  string
		ratio image.YCbCrSubsampleRatio
		want  image.YCbCrSubsampleRatio
	}{
		{"4:2:0 stays", image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio420},
		{"4:2:2 becomes 4:4:0", image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio440},
		{"4:4:0 becomes 4:2:2", image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio422},
		{"4:1:1 goes through 4:4:4", image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio444},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := image.NewYCbCr(image.Rect(0, 0, 37, 21), tt.ratio)
			f := toFrame(src, 37, 21).orient(6)
			got := f.image().(*image.YCbCr)
			if got.SubsampleRatio != tt.want || got.Rect != image.Rect(0, 0, 21, 37) {
				t.Fatalf("orient(6) = %v %v, want %v %v", got.SubsampleRatio, got.Rect, tt.want, image.Rect(0, 0, 21, 37))
			}
			// Every pixel must be addressable in the new layout.
			for y := range 37 {
				for x := range 21 {
					_ = got.YCbCrAt(x, y)
				}
			}
		})
	}
}
