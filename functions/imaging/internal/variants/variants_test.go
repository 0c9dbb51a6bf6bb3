package variants

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// picture returns a deterministic w×h photo-like picture.
func picture(w, h int) *image.RGBA {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			n := (rng.Float64() - 0.5) * 12
			c := color.RGBA{sat(60 + 150*fx + n), sat(200 - 120*fy + n), sat(120 + 60*math.Sin(9*fx) + n), 255}
			if x > w/3 && x < w/2 && y > h/3 && y < 2*h/3 {
				c = color.RGBA{220, 40, 30, 255}
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

func sat(v float64) uint8 { return uint8(max(0, min(255, math.Round(v)))) }

func encodeJPEG(t testing.TB, m image.Image, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func grey(m *image.RGBA) *image.Gray {
	g := image.NewGray(m.Bounds())
	for i := range g.Pix {
		g.Pix[i] = m.Pix[4*i+1]
	}
	return g
}

// transparentPNG is a w×h PNG whose left half is fully transparent.
func transparentPNG(t testing.TB, w, h int) []byte {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			if x >= w/2 {
				m.SetNRGBA(x, y, color.NRGBA{10, 20, 200, 255})
			}
		}
	}
	return encodePNG(t, m)
}

func palettedGIF(t testing.TB, w, h int) []byte {
	m := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.Black, color.White, color.RGBA{200, 0, 0, 255}})
	for i := range m.Pix {
		m.Pix[i] = uint8(i % 3)
	}
	var b bytes.Buffer
	if err := gif.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMake(t *testing.T) {
	tests := []struct {
		name   string
		src    []byte
		opt    Options
		sizes  [3][2]int // thumbnail, medium, watermarked
		greyed bool
	}{
		{"large JPEG, 1/2 scale decode", encodeJPEG(t, picture(1700, 1000), 90), Options{},
			[3][2]int{{200, 118}, {800, 471}, {800, 471}}, false},
		{"JPEG, 1/4 scale decode", encodeJPEG(t, picture(3300, 2475), 85), Options{},
			[3][2]int{{200, 150}, {800, 600}, {800, 600}}, false},
		{"portrait JPEG, odd size", encodeJPEG(t, picture(601, 901), 90), Options{},
			[3][2]int{{133, 200}, {534, 800}, {534, 800}}, false},
		{"small JPEG is never upscaled", encodeJPEG(t, picture(150, 100), 90), Options{},
			[3][2]int{{150, 100}, {150, 100}, {150, 100}}, false},
		{"between thumbnail and medium", encodeJPEG(t, picture(500, 300), 90), Options{},
			[3][2]int{{200, 120}, {500, 300}, {500, 300}}, false},
		{"grey JPEG stays grey", encodeJPEG(t, grey(picture(900, 700)), 90), Options{},
			[3][2]int{{200, 156}, {800, 622}, {800, 622}}, true},
		{"progressive JPEG falls back to image/jpeg", readFile(t, "progressive.jpg"), Options{},
			[3][2]int{{117, 83}, {117, 83}, {117, 83}}, false},
		{"CMYK JPEG falls back to image/jpeg", readFile(t, "cmyk.jpg"), Options{},
			[3][2]int{{117, 83}, {117, 83}, {117, 83}}, false},
		{"large PNG, box prefilter", encodePNG(t, picture(3300, 1000)), Options{},
			[3][2]int{{200, 61}, {800, 242}, {800, 242}}, false},
		{"PNG with transparency", transparentPNG(t, 400, 300), Options{Thumbnail: 100, Medium: 300},
			[3][2]int{{100, 75}, {300, 225}, {300, 225}}, false},
		{"lossy WebP", readFile(t, "lossy.webp"), Options{Thumbnail: 60},
			[3][2]int{{60, 40}, {150, 100}, {150, 100}}, false},
		{"lossless WebP", readFile(t, "lossless.webp"), Options{Thumbnail: 60},
			[3][2]int{{60, 40}, {150, 100}, {150, 100}}, false},
		{"GIF", palettedGIF(t, 260, 130), Options{},
			[3][2]int{{200, 100}, {260, 130}, {260, 130}}, false},
		{"custom sizes", encodeJPEG(t, picture(1000, 1000), 90), Options{Thumbnail: 64, Medium: 256, Quality: 60},
			[3][2]int{{64, 64}, {256, 256}, {256, 256}}, false},
	}
	names := []string{Thumbnail, Medium, Watermarked}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Make(context.Background(), tt.src, tt.opt)
			if err != nil {
				t.Fatalf("Make() = %v", err)
			}
			if len(got) != 3 {
				t.Fatalf("Make() returned %d variants, want 3", len(got))
			}
			for i, v := range got {
				want := tt.sizes[i]
				if v.Name != names[i] || v.Width != want[0] || v.Height != want[1] || v.ContentType != "image/jpeg" {
					t.Errorf("Make() variant %d = %s %d×%d %s, want %s %d×%d image/jpeg", i, v.Name, v.Width, v.Height, v.ContentType, names[i], want[0], want[1])
				}
				cfg, format, err := image.DecodeConfig(bytes.NewReader(v.Data))
				if err != nil || format != "jpeg" || cfg.Width != want[0] || cfg.Height != want[1] {
					t.Errorf("Make() %s data = %s %d×%d (%v), want jpeg %d×%d", v.Name, format, cfg.Width, cfg.Height, err, want[0], want[1])
				}
				if isGrey := cfg.ColorModel == color.GrayModel; isGrey != tt.greyed {
					t.Errorf("Make() %s grey = %v, want %v", v.Name, isGrey, tt.greyed)
				}
			}
		})
	}
}

func TestMakeFlattensTransparencyOnWhite(t *testing.T) {
	got, err := Make(context.Background(), transparentPNG(t, 400, 300), Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := jpeg.Decode(bytes.NewReader(got[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	r, g, b, _ := m.At(20, 75).RGBA() // in the transparent half
	if r>>8 < 245 || g>>8 < 245 || b>>8 < 245 {
		t.Errorf("transparent pixel = (%d, %d, %d), want white", r>>8, g>>8, b>>8)
	}
	r, g, b, _ = m.At(180, 75).RGBA() // in the opaque blue half
	if b>>8 < 150 || r>>8 > 60 {
		t.Errorf("opaque pixel = (%d, %d, %d), want blue (10, 20, 200)", r>>8, g>>8, b>>8)
	}
}

func TestMakeMatchesFullDecode(t *testing.T) {
	// The medium variant from the 1/4 scale decode must look like the one
	// made from image/jpeg's full decode with the same resize.
	src := encodeJPEG(t, picture(3300, 2475), 90)
	got, err := Make(context.Background(), src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	full, err := jpeg.Decode(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	want := toFrame(full, 3300, 2475).resize(800, 600, catmullRom).image()
	m, err := jpeg.Decode(bytes.NewReader(got[1].Data))
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for y := range 600 {
		for x := range 800 {
			r1, g1, b1, _ := m.At(x, y).RGBA()
			r2, g2, b2, _ := want.At(x, y).RGBA()
			sum += math.Abs(float64(r1>>8)-float64(r2>>8)) + math.Abs(float64(g1>>8)-float64(g2>>8)) + math.Abs(float64(b1>>8)-float64(b2>>8))
		}
	}
	// JPEG re-encoding at quality 82 alone accounts for about 2 levels.
	if mae := sum / (3 * 800 * 600); mae > 3.5 {
		t.Errorf("medium vs full decode: mean abs error %.2f per channel, want ≤ 3.5", mae)
	}
}

func TestMakeWatermarksOnlyTheCorner(t *testing.T) {
	got, err := Make(context.Background(), encodeJPEG(t, picture(1600, 1200), 90), Options{})
	if err != nil {
		t.Fatal(err)
	}
	medium, err := jpeg.Decode(bytes.NewReader(got[1].Data))
	if err != nil {
		t.Fatal(err)
	}
	marked, err := jpeg.Decode(bytes.NewReader(got[2].Data))
	if err != nil {
		t.Fatal(err)
	}
	diff := func(r image.Rectangle) (n int) {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				if medium.At(x, y) != marked.At(x, y) {
					n++
				}
			}
		}
		return n
	}
	if n := diff(image.Rect(0, 0, 400, 300)); n != 0 {
		t.Errorf("watermarked differs from medium in %d pixels of the top-left quarter, want 0", n)
	}
	if n := diff(image.Rect(600, 500, 800, 600)); n < 2000 {
		t.Errorf("watermarked differs from medium in %d pixels of the bottom-right corner, want a visible mark", n)
	}
}

func TestMakeIsDeterministic(t *testing.T) {
	src := encodeJPEG(t, picture(2000, 1500), 90)
	want, err := Make(context.Background(), src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			got, err := Make(context.Background(), src, Options{})
			if err != nil {
				t.Error(err)
				return
			}
			for i := range want {
				if !bytes.Equal(got[i].Data, want[i].Data) {
					t.Errorf("Make() %s differs between calls on the same input", want[i].Name)
				}
			}
		})
	}
	wg.Wait()
}

// pngBomb is a tiny PNG that declares w×h pixels.
func pngBomb(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	chunk("IHDR", append(ihdr, 8, 2, 0, 0, 0))
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

// jpegBomb is a tiny JPEG whose frame header declares w×h pixels, with a
// JFIF header or, without one, followed by a scan header (image/jpeg reads
// up to one of them to learn the colour model).
func jpegBomb(w, h uint16, jfif bool) []byte {
	b := []byte{0xFF, 0xD8}
	if jfif {
		b = append(b, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0)
	}
	b = append(b, 0xFF, 0xC0, 0, 17, 8, byte(h>>8), byte(h), byte(w>>8), byte(w), 3,
		1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0)
	b = append(b, 0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0)
	return append(b, 0x12, 0x34, 0xFF, 0xD9)
}

// gifBomb is a tiny GIF whose screen declares w×h pixels.
func gifBomb(w, h uint16) []byte {
	b := []byte("GIF89a")
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	return append(b, 0, 0, 0, 0x3B)
}

func TestMakeErrors(t *testing.T) {
	valid := encodeJPEG(t, picture(300, 200), 90)
	sof := bytes.Index(valid, []byte{0xFF, 0xC0})
	arithmetic := bytes.Clone(valid)
	arithmetic[sof+1] = 0xC9
	validPNG := encodePNG(t, picture(64, 48))
	tests := []struct {
		name string
		src  []byte
		opt  Options
		want error
	}{
		{"PNG bomb", pngBomb(100_000, 100_000), Options{}, ErrTooLarge},
		{"JPEG bomb", jpegBomb(65_000, 65_000, true), Options{}, ErrTooLarge},
		{"JPEG bomb without JFIF", jpegBomb(65_000, 65_000, false), Options{}, ErrTooLarge},
		{"GIF bomb", gifBomb(65_535, 65_535), Options{}, ErrTooLarge},
		{"over a lower limit", valid, Options{MaxPixels: 300*200 - 1}, ErrTooLarge},
		{"PDF", []byte("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"), Options{}, ErrUnsupported},
		{"text", []byte("just some text uploaded as an image"), Options{}, ErrUnsupported},
		{"empty", nil, Options{}, ErrUnsupported},
		{"truncated WebP", []byte("RIFF\x24\x00\x00\x00WEBPVP8 "), Options{}, ErrCorrupt},
		{"arithmetic-coded JPEG", arithmetic, Options{}, ErrUnsupported},
		{"truncated JPEG", valid[:len(valid)/2], Options{}, ErrCorrupt},
		{"truncated JPEG header", valid[:sof+5], Options{}, ErrCorrupt},
		{"JPEG magic and garbage", append([]byte{0xFF, 0xD8, 0xFF}, bytes.Repeat([]byte{0x42}, 100)...), Options{}, ErrCorrupt},
		{"truncated PNG", validPNG[:len(validPNG)-40], Options{}, ErrCorrupt},
		{"zero-size GIF", gifBomb(0, 10), Options{}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Make(context.Background(), tt.src, tt.opt)
			if !errors.Is(err, tt.want) {
				t.Errorf("Make(%s) = %v, %v, want %v", tt.name, len(got), err, tt.want)
			}
		})
	}
}

func TestMakeRefusesBombsWithoutAllocating(t *testing.T) {
	tests := []struct {
		name string
		src  []byte
	}{
		{"PNG 100,000×100,000", pngBomb(100_000, 100_000)},
		{"JPEG 65,000×65,000", jpegBomb(65_000, 65_000, true)},
		{"JPEG 65,000×65,000 without JFIF", jpegBomb(65_000, 65_000, false)},
		{"GIF 65,535×65,535", gifBomb(65_535, 65_535)},
	}
	const maxBytes = 1 << 20
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Make(context.Background(), tt.src, Options{})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Make(%s) = %v, want ErrTooLarge", tt.name, err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n >= maxBytes {
				t.Errorf("Make(%s) allocated %d bytes, want < %d", tt.name, n, maxBytes)
			}
		})
	}
}

func TestMakeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Make(ctx, encodeJPEG(t, picture(900, 600), 90), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Make(cancelled) = %v, want context.Canceled", err)
	}
	for _, permanent := range []error{ErrTooLarge, ErrUnsupported, ErrCorrupt} {
		if errors.Is(err, permanent) {
			t.Errorf("Make(cancelled) = %v, which is permanent (%v)", err, permanent)
		}
	}
}

func TestFit(t *testing.T) {
	tests := []struct {
		name         string
		w, h, side   int
		wantW, wantH int
	}{
		{"landscape", 4000, 3000, 800, 800, 600},
		{"portrait", 3000, 4000, 800, 600, 800},
		{"rounds to nearest", 1700, 1000, 800, 800, 471},
		{"never upscales", 150, 100, 800, 150, 100},
		{"exact", 800, 200, 800, 800, 200},
		{"thin stays at least 1", 10000, 3, 800, 800, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if w, h := fit(tt.w, tt.h, tt.side); w != tt.wantW || h != tt.wantH {
				t.Errorf("fit(%d, %d, %d) = %d, %d, want %d, %d", tt.w, tt.h, tt.side, w, h, tt.wantW, tt.wantH)
			}
		})
	}
}

func BenchmarkMake(b *testing.B) {
	src := encodeJPEG(b, picture(4000, 3000), 90)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Make(context.Background(), src, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
