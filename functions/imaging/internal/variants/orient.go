package variants

import (
	"bytes"
	"encoding/binary"
	"image"
)

// Phones store photos as the sensor saw them and say in the Exif
// Orientation tag (TIFF tag 0x0112) how to turn them for display; browsers
// honour it for the original but not for variants without the tag, so Make
// applies it (as vipsthumbnail does) and writes upright variants without
// metadata.

// exifOrientation returns the Exif orientation (1-8) of a JPEG, or 1 when
// it has none or it cannot be read. It reads only the marker segments
// before the first scan and never allocates.
func exifOrientation(src []byte) int {
	pos := 2 // after SOI
	for pos+4 <= len(src) {
		if src[pos] != 0xFF {
			return 1
		}
		marker := src[pos+1]
		if marker == 0xFF { // fill byte
			pos++
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // SOS, EOI: no more metadata
			return 1
		}
		n := int(binary.BigEndian.Uint16(src[pos+2:]))
		if n < 2 || pos+2+n > len(src) {
			return 1
		}
		seg := src[pos+4 : pos+2+n]
		if marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return tiffOrientation(seg[6:])
		}
		pos += 2 + n
	}
	return 1
}

// tiffOrientation reads the Orientation tag from IFD0 of a TIFF header.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var order binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		order = binary.LittleEndian
	case "MM\x00*":
		order = binary.BigEndian
	default:
		return 1
	}
	ifd := int64(order.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > int64(len(t)) {
		return 1
	}
	count := int64(order.Uint16(t[ifd:]))
	for i := range count {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(t)) {
			return 1
		}
		const tagOrientation, typeShort = 0x0112, 3
		if order.Uint16(t[e:]) == tagOrientation && order.Uint16(t[e+2:]) == typeShort {
			if o := int(order.Uint16(t[e+8:])); o >= 1 && o <= 8 {
				return o
			}
			return 1
		}
	}
	return 1
}

// orient returns f turned for display per Exif orientation o: 2 mirror,
// 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse,
// 8 rotate 90° anticlockwise. Orientations 5-8 swap width and height (and
// 4:2:2 with 4:4:0 chroma).
func (f *frame) orient(o int) *frame {
	if o < 2 || o > 8 {
		return f
	}
	swap := o >= 5
	ratio := f.ratio
	if swap && len(f.planes) == 3 {
		switch f.ratio {
		case image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio420:
		case image.YCbCrSubsampleRatio422:
			ratio = image.YCbCrSubsampleRatio440
		case image.YCbCrSubsampleRatio440:
			ratio = image.YCbCrSubsampleRatio422
		default: // 4:1:1 and 4:1:0 have no transposed form: go through 4:4:4
			f = f.to444()
			ratio = image.YCbCrSubsampleRatio444
		}
	}
	out := &frame{planes: make([]plane, len(f.planes)), ratio: ratio, extentX: f.extentX, extentY: f.extentY}
	if swap {
		out.extentX, out.extentY = f.extentY, f.extentX
	}
	for i, p := range f.planes {
		out.planes[i] = orientPlane(p, o)
	}
	return out
}

// orientPlane applies Exif orientation o to one plane.
func orientPlane(p plane, o int) plane {
	w, h := p.w, p.h
	if o >= 5 {
		w, h = h, w
	}
	out := plane{pix: make([]byte, w*h), stride: w, w: w, h: h}
	for y := range h {
		row := out.pix[y*w : y*w+w]
		for x := range row {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = p.w-1-x, y
			case 3:
				sx, sy = p.w-1-x, p.h-1-y
			case 4:
				sx, sy = x, p.h-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, p.h-1-x
			case 7:
				sx, sy = p.w-1-y, p.h-1-x
			case 8:
				sx, sy = p.w-1-y, x
			}
			row[x] = p.pix[sy*p.stride+sx]
		}
	}
	return out
}

// to444 returns f with full-resolution chroma (each sample repeated).
func (f *frame) to444() *frame {
	if len(f.planes) == 1 || f.ratio == image.YCbCrSubsampleRatio444 {
		return f
	}
	dx, dy := chromaDiv(f.ratio)
	w, h := f.width(), f.height()
	out := &frame{planes: []plane{f.planes[0]}, ratio: image.YCbCrSubsampleRatio444, extentX: f.extentX, extentY: f.extentY}
	for _, c := range f.planes[1:] {
		p := plane{pix: make([]byte, w*h), stride: w, w: w, h: h}
		for y := range h {
			for x := range w {
				p.pix[y*w+x] = c.pix[(y/dy)*c.stride+x/dx]
			}
		}
		out.planes = append(out.planes, p)
	}
	return out
}

// to420 returns f with 4:2:0 chroma (each sample the mean of the 2×2 it
// covers), what jpegenc writes; grey and 4:2:0 frames are returned as they
// are.
func (f *frame) to420() *frame {
	if len(f.planes) == 1 || f.ratio == image.YCbCrSubsampleRatio420 {
		return f
	}
	full := f.to444()
	out := &frame{planes: []plane{f.planes[0]}, ratio: image.YCbCrSubsampleRatio420, extentX: f.extentX, extentY: f.extentY}
	for _, c := range full.planes[1:] {
		out.planes = append(out.planes, boxShrink(c, 2))
	}
	return out
}
