package variants

import (
	"fmt"
	"image"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Watermark look. The text is white at textAlpha over a black shadow at
// shadowAlpha offset down-right, so it reads on light and dark photos while
// leaving the product visible; its height is a tenth of the shorter side,
// never below minFontPx (still legible), margins half the font size.
const (
	textAlpha   = 150 // of 255
	shadowAlpha = 90  // of 255
	minFontPx   = 10
)

// goRegular is the parsed Go Regular font, parsed once per process on first
// use: it is immutable and parsing it costs about a millisecond.
var goRegular = sync.OnceValues(func() (*opentype.Font, error) {
	return opentype.Parse(goregular.TTF)
})

// textMask renders text at size px into an alpha mask.
func textMask(text string, px float64) (*image.Alpha, error) {
	f, err := goRegular()
	if err != nil {
		return nil, fmt.Errorf("parse font: %w", err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: px, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		return nil, fmt.Errorf("font face: %w", err)
	}
	defer face.Close()
	m := face.Metrics()
	width := font.MeasureString(face, text).Ceil()
	height := (m.Ascent + m.Descent).Ceil()
	mask := image.NewAlpha(image.Rect(0, 0, max(1, width), max(1, height)))
	d := font.Drawer{Dst: mask, Src: image.Opaque, Face: face, Dot: fixed.Point26_6{Y: m.Ascent}}
	d.DrawString(text)
	return mask, nil
}

// watermark draws text semi-transparently into the bottom-right corner of
// f, in place, and returns the rectangle it changed. White and black over
// YCbCr are the same blend as over RGB (the conversion is affine and both
// have neutral chroma), so the planes are blended directly: luma toward 255
// or 0, chroma toward 128 with the mean alpha of the luma pixels each chroma
// sample covers.
func watermark(f *frame, text string) (image.Rectangle, error) {
	if text == "" {
		return image.Rectangle{}, nil
	}
	w, h := f.width(), f.height()
	px := max(minFontPx, float64(min(w, h))/10)
	mask, err := textMask(text, px)
	if err != nil {
		return image.Rectangle{}, err
	}
	mb := mask.Bounds()
	margin := int(px / 2)
	shadow := max(1, int(px/16))
	x0 := max(0, w-margin-mb.Dx()-shadow)
	y0 := max(0, h-margin-mb.Dy()-shadow)
	blend(f, mask, x0+shadow, y0+shadow, 0, shadowAlpha)
	blend(f, mask, x0, y0, 255, textAlpha)
	changed := image.Rect(x0, y0, x0+mb.Dx()+shadow, y0+mb.Dy()+shadow)
	return changed.Intersect(image.Rect(0, 0, w, h)), nil
}

// blend paints the grey level luma through mask at (x0, y0) with the given
// opacity (of 255).
func blend(f *frame, mask *image.Alpha, x0, y0 int, luma, opacity int32) {
	mw, mh := mask.Rect.Dx(), mask.Rect.Dy()
	alpha := func(x, y int) int32 { // opacity-scaled mask alpha at image (x, y), 0..255·255
		mx, my := x-x0, y-y0
		if mx < 0 || my < 0 || mx >= mw || my >= mh {
			return 0
		}
		return int32(mask.Pix[my*mask.Stride+mx]) * opacity
	}
	mix := func(p *byte, target, a int32) { // a in 0..255·255
		v := int32(*p)
		*p = byte(v + ((target-v)*a+255*255/2)/(255*255))
	}
	y := f.planes[0]
	for py := max(0, y0); py < min(y.h, y0+mh); py++ {
		for px := max(0, x0); px < min(y.w, x0+mw); px++ {
			if a := alpha(px, py); a > 0 {
				mix(&y.pix[py*y.stride+px], luma, a)
			}
		}
	}
	if len(f.planes) == 1 {
		return
	}
	dx, dy := chromaDiv(f.ratio)
	cb, cr := f.planes[1], f.planes[2]
	for cy := max(0, y0/dy); cy < min(cb.h, (y0+mh+dy-1)/dy); cy++ {
		for cx := max(0, x0/dx); cx < min(cb.w, (x0+mw+dx-1)/dx); cx++ {
			var sum int32
			for j := range dy {
				for i := range dx {
					sum += alpha(cx*dx+i, cy*dy+j)
				}
			}
			if a := sum / int32(dx*dy); a > 0 {
				mix(&cb.pix[cy*cb.stride+cx], 128, a)
				mix(&cr.pix[cy*cr.stride+cx], 128, a)
			}
		}
	}
}
