// Package variants makes the thumbnail, medium and watermarked variants of
// an uploaded product image.
//
// The work is done once: a JPEG is decoded at a reduced scale (jpegscale),
// resized to the medium size and turned upright; the thumbnail is made from
// the medium image, and the watermarked variant reuses the medium's DCT
// coefficients except under the mark (jpegenc). Pixels stay in YCbCr planes
// all the way, so there is no colour conversion, and the steps that can use
// both cores do. PNG, GIF and the JPEGs jpegscale does not handle
// (progressive, CMYK, ...) are decoded at full size by the standard library
// and box-filtered first when the reduction is large.
//
// The output is a pure function of the input bytes and options (pixels are
// computed in integer arithmetic; the few floating-point steps, filter
// weights and the font rasteriser, give the same results in every run of a
// binary): duplicate deliveries write identical objects.
package variants

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"

	"sync"
	"time"

	"golang.org/x/image/webp"

	"github.com/shopfn/shopfn/functions/imaging/internal/jpegenc"
	"github.com/shopfn/shopfn/functions/imaging/internal/jpegscale"
)

// Permanent failures: the same input always fails the same way, so the
// event must not be retried. Match them with errors.Is.
var (
	// ErrTooLarge means the declared dimensions exceed Options.MaxPixels;
	// it is decided from the header, before any pixel is decoded.
	ErrTooLarge = errors.New("variants: image too large")
	// ErrUnsupported means the data is not a JPEG, PNG, GIF or WebP (or uses a
	// feature no decoder here handles, such as arithmetic-coded JPEG).
	ErrUnsupported = errors.New("variants: unsupported image format")
	// ErrCorrupt means the data is truncated or malformed.
	ErrCorrupt = errors.New("variants: corrupt image")
)

// Variant names.
const (
	Thumbnail   = "thumbnail"
	Medium      = "medium"
	Watermarked = "watermarked"
)

// ContentType of every variant: PNG and GIF inputs also produce JPEGs, with
// any transparency flattened onto white.
const ContentType = "image/jpeg"

// Defaults for zero Options fields.
const (
	DefaultMaxPixels = 40_000_000
	DefaultThumbnail = 200
	DefaultMedium    = 800
	DefaultWatermark = "shopfn"
	DefaultQuality   = 82
)

// Options tunes Make; zero values mean the defaults.
type Options struct {
	// MaxPixels refuses images with more pixels (default 40,000,000).
	MaxPixels int64
	// Thumbnail is the longest side of the thumbnail (default 200).
	Thumbnail int
	// Medium is the longest side of the medium variant (default 800).
	Medium int
	// Watermark is the text drawn on the watermarked variant (default
	// "shopfn").
	Watermark string
	// Quality is the JPEG quality of the outputs, 1-100 (default 82).
	Quality int
	// Trace, if set, is called with the duration of each step ("sniff",
	// "decode", "resize" to medium, "encode": thumbnail, watermark and the
	// three JPEGs), for benchmarks.
	Trace func(step string, d time.Duration)
}

func (o Options) withDefaults() Options {
	if o.MaxPixels <= 0 {
		o.MaxPixels = DefaultMaxPixels
	}
	if o.Thumbnail <= 0 {
		o.Thumbnail = DefaultThumbnail
	}
	if o.Medium <= 0 {
		o.Medium = DefaultMedium
	}
	if o.Watermark == "" {
		o.Watermark = DefaultWatermark
	}
	if o.Quality <= 0 {
		o.Quality = DefaultQuality
	}
	o.Quality = min(o.Quality, 100)
	return o
}

// Variant is one encoded output image.
type Variant struct {
	// Name is Thumbnail, Medium or Watermarked.
	Name string
	// Width and Height are the variant's dimensions in pixels.
	Width, Height int
	// ContentType is always "image/jpeg".
	ContentType string
	// Data is the encoded image.
	Data []byte
}

// Make produces the thumbnail, medium and watermarked variants of src, a
// JPEG, PNG, GIF or WebP (the format is sniffed from the bytes, never taken from
// metadata), in that order. Images are never upscaled and keep their aspect
// ratio; JPEGs are turned upright per their Exif orientation. Errors other
// than ErrTooLarge, ErrUnsupported and ErrCorrupt (for instance ctx's) are
// transient.
func Make(ctx context.Context, src []byte, opt Options) ([]Variant, error) {
	opt = opt.withDefaults()
	step := stepper(opt.Trace)

	cfg, format, err := sniff(src)
	if err != nil {
		return nil, err
	}
	if int64(cfg.Width)*int64(cfg.Height) > opt.MaxPixels {
		return nil, fmt.Errorf("%w: %d×%d is over %d pixels", ErrTooLarge, cfg.Width, cfg.Height, opt.MaxPixels)
	}
	step("sniff")

	f, err := decode(ctx, src, format, cfg, opt)
	if err != nil {
		return nil, err
	}
	step("decode")
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	mw, mh := fit(cfg.Width, cfg.Height, opt.Medium)
	medium := f.resize(mw, mh, catmullRom)
	upright := image.Pt(cfg.Width, cfg.Height)
	if format == "jpeg" {
		o := exifOrientation(src)
		medium = medium.orient(o)
		if o >= 5 {
			upright = image.Pt(cfg.Height, cfg.Width)
		}
	}
	mw, mh = medium.width(), medium.height()
	step("resize")
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Three encodes, sharing work: the thumbnail on its own goroutine; the
	// medium's coefficients once (on both cores), then its entropy coding
	// alongside the watermarked copy, which recomputes only the blocks
	// under the mark.
	out := []Variant{
		{Name: Thumbnail, ContentType: ContentType},
		{Name: Medium, Width: mw, Height: mh, ContentType: ContentType},
		{Name: Watermarked, Width: mw, Height: mh, ContentType: ContentType},
	}
	tw, th := fit(upright.X, upright.Y, opt.Thumbnail)
	out[0].Width, out[0].Height = tw, th
	var wg sync.WaitGroup
	var thumbErr, markErr error
	thumbSrc := medium // read by the goroutine while medium420 is made
	wg.Go(func() {
		thumb := thumbSrc
		if tw != mw || th != mh {
			thumb = thumbSrc.resize(tw, th, catmullRom)
		}
		out[0].Data, thumbErr = encode(thumb.to420(), opt.Quality)
	})
	medium420 := medium.to420()
	coef, err := jpegenc.Quantize(medium420.image(), opt.Quality)
	if err != nil {
		wg.Wait()
		return nil, fmt.Errorf("encode: %w", err)
	}
	wg.Go(func() { out[1].Data = coef.Encode() })
	marked := medium420.clone()
	changed, err := watermark(marked, opt.Watermark)
	if err == nil {
		markCoef := coef.Clone()
		if err = markCoef.Requantize(marked.image(), changed); err == nil {
			out[2].Data = markCoef.Encode()
		}
	}
	markErr = err
	wg.Wait()
	step("encode")
	if err := errors.Join(thumbErr, markErr); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return out, nil
}

// encode writes f as a JPEG.
func encode(f *frame, quality int) ([]byte, error) {
	c, err := jpegenc.Quantize(f.image(), quality)
	if err != nil {
		return nil, err
	}
	return c.Encode(), nil
}

// stepper returns a function that reports the time since its previous call.
func stepper(trace func(string, time.Duration)) func(string) {
	if trace == nil {
		return func(string) {}
	}
	last := time.Now()
	return func(name string) {
		now := time.Now()
		trace(name, now.Sub(last))
		last = now
	}
}

// fit returns the size of a w×h image scaled so that its longer side is
// at most side, never upscaled, at least 1×1.
func fit(w, h, side int) (int, int) {
	long := max(w, h)
	if long <= side {
		return w, h
	}
	// Rounded to nearest: (w·side + long/2) / long.
	sw := max(1, int((int64(w)*int64(side)+int64(long)/2)/int64(long)))
	sh := max(1, int((int64(h)*int64(side)+int64(long)/2)/int64(long)))
	return sw, sh
}

// Formats Make accepts, by their magic numbers.
var magics = []struct {
	format string
	magic  string
}{
	{"jpeg", "\xff\xd8\xff"},
	{"png", "\x89PNG\r\n\x1a\n"},
	{"gif", "GIF87a"},
	{"gif", "GIF89a"},
}

// isWebP reports a RIFF container of WebP: "RIFF", a size, "WEBP".
func isWebP(src []byte) bool {
	return len(src) >= 12 && string(src[:4]) == "RIFF" && string(src[8:12]) == "WEBP"
}

// sniff identifies src by its magic number and reads its header with
// image.DecodeConfig, which allocates nothing proportional to the declared
// size.
func sniff(src []byte) (image.Config, string, error) {
	known := isWebP(src) // the catalog accepts WebP uploads
	for _, m := range magics {
		known = known || bytes.HasPrefix(src, []byte(m.magic))
	}
	if !known {
		return image.Config{}, "", ErrUnsupported
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(src))
	if err != nil {
		return image.Config{}, "", classify(err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return image.Config{}, "", fmt.Errorf("%w: %d×%d", ErrCorrupt, cfg.Width, cfg.Height)
	}
	return cfg, format, nil
}

// classify maps a decoder's error to a permanent one where it is.
func classify(err error) error {
	var jpegUnsupported jpeg.UnsupportedError
	var pngUnsupported png.UnsupportedError
	switch {
	case errors.As(err, &jpegUnsupported), errors.As(err, &pngUnsupported),
		errors.Is(err, image.ErrFormat), errors.Is(err, jpegscale.ErrUnsupported):
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	case errors.Is(err, jpegscale.ErrTooLarge):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	// Everything else a decoder of bytes in memory reports (FormatError,
	// io.ErrUnexpectedEOF, png's and gif's own errors) is about the data.
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// decode decodes src into planes, at reduced scale for the JPEGs jpegscale
// handles and at full size otherwise.
func decode(ctx context.Context, src []byte, format string, cfg image.Config, opt Options) (*frame, error) {
	if format == "jpeg" {
		d := jpegscale.Denom(cfg.Width, cfg.Height, opt.Medium)
		// jpegscale bounds the size rounded up to whole MCUs: allow for
		// up to 32 extra pixels in each direction.
		limit := opt.MaxPixels + 32*int64(cfg.Width+cfg.Height+32)
		img, err := jpegscale.Decode(ctx, src, d, limit)
		if err == nil {
			return toFrame(img, float64(cfg.Width)/float64(d), float64(cfg.Height)/float64(d)), nil
		}
		if !errors.Is(err, jpegscale.ErrUnsupported) {
			return nil, classify(err)
		}
		// Progressive and other JPEGs: image/jpeg, full size (slower).
	}
	var img image.Image
	var err error
	r := bytes.NewReader(src)
	switch format {
	case "jpeg":
		img, err = jpeg.Decode(r)
	case "png":
		img, err = png.Decode(r)
	case "gif":
		img, err = gif.Decode(r)
	case "webp":
		img, err = webp.Decode(r)
	}
	if err != nil {
		return nil, classify(err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := img.Bounds()
	return toFrame(img, float64(b.Dx()), float64(b.Dy())), nil
}

// toFrame returns img as planes, converting it (over white) unless it is
// already YCbCr or grey.
func toFrame(img image.Image, extentX, extentY float64) *frame {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	f := &frame{extentX: extentX, extentY: extentY}
	if b.Min == (image.Point{}) {
		switch m := img.(type) {
		case *image.Gray:
			f.planes = []plane{{pix: m.Pix, stride: m.Stride, w: w, h: h}}
			return f
		case *image.YCbCr:
			f.ratio = m.SubsampleRatio
			dx, dy := chromaDiv(m.SubsampleRatio)
			cw, ch := (w+dx-1)/dx, (h+dy-1)/dy
			f.planes = []plane{
				{pix: m.Y, stride: m.YStride, w: w, h: h},
				{pix: m.Cb, stride: m.CStride, w: cw, h: ch},
				{pix: m.Cr, stride: m.CStride, w: cw, h: ch},
			}
			return f
		}
	}
	// Anything else: composite over white into YCbCr 4:4:4.
	f.ratio = image.YCbCrSubsampleRatio444
	f.planes = make([]plane, 3)
	for i := range f.planes {
		f.planes[i] = plane{pix: make([]byte, w*h), stride: w, w: w, h: h}
	}
	put := func(i int, r, g, bl, a uint32) { // 16-bit premultiplied
		r, g, bl = r+0xffff-a, g+0xffff-a, bl+0xffff-a
		f.planes[0].pix[i], f.planes[1].pix[i], f.planes[2].pix[i] = color.RGBToYCbCr(uint8(r>>8), uint8(g>>8), uint8(bl>>8))
	}
	// Fast paths for what png and gif return; At() allocates per pixel.
	switch m := img.(type) {
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				c := color.NRGBA{row[4*x], row[4*x+1], row[4*x+2], row[4*x+3]}
				r, g, bl, a := c.RGBA()
				put(y*w+x, r, g, bl, a)
			}
		}
	case *image.RGBA:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				c := color.RGBA{row[4*x], row[4*x+1], row[4*x+2], row[4*x+3]}
				r, g, bl, a := c.RGBA()
				put(y*w+x, r, g, bl, a)
			}
		}
	case *image.CMYK: // image/jpeg's Adobe CMYK and YCCK files
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				r, g, bl := color.CMYKToRGB(row[4*x], row[4*x+1], row[4*x+2], row[4*x+3])
				i := y*w + x
				f.planes[0].pix[i], f.planes[1].pix[i], f.planes[2].pix[i] = color.RGBToYCbCr(r, g, bl)
			}
		}
	case *image.Paletted:
		type rgba struct{ r, g, b, a uint32 }
		pal := make([]rgba, 256)
		for i := range pal {
			if i < len(m.Palette) {
				pal[i].r, pal[i].g, pal[i].b, pal[i].a = m.Palette[i].RGBA()
			}
			// Indexes beyond the palette are transparent, as gif treats them.
		}
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				c := pal[row[x]]
				put(y*w+x, c.r, c.g, c.b, c.a)
			}
		}
	default:
		for y := range h {
			for x := range w {
				r, g, bl, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				put(y*w+x, r, g, bl, a)
			}
		}
	}
	return f
}
