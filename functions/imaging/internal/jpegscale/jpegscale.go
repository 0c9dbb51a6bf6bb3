// Package jpegscale decodes baseline JPEG images at 1/1, 1/2, 1/4 or 1/8 of
// their size ("DCT scaling", like libjpeg's scale_denom): from each 8×8 block
// of coefficients it computes only an 8×8, 4×4, 2×2 or 1×1 block of pixels
// with a reduced inverse DCT over the block's lowest frequencies, so a
// 12-megapixel photo that will become an 800-pixel variant never exists at
// full size.
//
// It handles what photos use: baseline and extended sequential Huffman
// JPEGs, 8-bit samples, one interleaved scan, grayscale or YCbCr with 4:4:4,
// 4:2:2, 4:2:0, 4:4:0, 4:1:1 or 4:1:0 chroma, and restart markers. Anything
// else (progressive, arithmetic coding, lossless, 12-bit, CMYK/YCCK, RGB
// JPEGs, several scans) is reported as [ErrUnsupported] so the caller can fall
// back to image/jpeg.
//
// Huffman decoding runs on the calling goroutine; at 1/1 and 1/2 scale the
// inverse DCT runs on a second one, a few MCU rows behind, so the two
// overlap on two cores (at smaller scales the IDCT is too cheap to be worth
// the hand-off).
package jpegscale

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
)

// Errors returned by [Decode]; match them with errors.Is.
var (
	// ErrUnsupported means the data is a JPEG this decoder does not handle
	// (progressive, arithmetic, 12-bit, CMYK, ...); image/jpeg may.
	ErrUnsupported = errors.New("jpegscale: unsupported JPEG")
	// ErrCorrupt means the data is malformed or truncated.
	ErrCorrupt = errors.New("jpegscale: corrupt JPEG")
	// ErrTooLarge means the image has more pixels than the caller allows.
	ErrTooLarge = errors.New("jpegscale: image too large")
)

// Denom returns the largest reduction d in {1, 2, 4, 8} for which the longer
// side of a w×h image, divided by d, is still at least minSide pixels, so
// that an image resized to minSide from the reduced decode is never
// upscaled.
func Denom(w, h, minSide int) int {
	long := max(w, h)
	for _, d := range [...]int{8, 4, 2} {
		if long >= minSide*d {
			return d
		}
	}
	return 1
}

// Decode decodes the JPEG in data at 1/denom of its size in each dimension
// (denom is 1, 2, 4 or 8), rounding the size up. The result is an
// *image.YCbCr or, for one-component JPEGs, an *image.Gray; their planes
// are padded to whole blocks, so Stride may exceed the width.
//
// maxPixels bounds the full-size image, rounded up to whole MCUs, before
// anything large is allocated. Decode checks ctx between groups of MCU rows.
func Decode(ctx context.Context, data []byte, denom int, maxPixels int64) (image.Image, error) {
	n := 8 / denom
	if denom*n != 8 || n < 1 {
		return nil, fmt.Errorf("jpegscale: denominator %d not 1, 2, 4 or 8", denom)
	}
	d := decoder{data: data, n: n, maxPixels: maxPixels}
	return d.decode(ctx)
}

// Marker codes (ITU T.81 table B.1) that the parser acts on.
const (
	markerSOF0 = 0xC0 // baseline DCT
	markerSOF1 = 0xC1 // extended sequential DCT, Huffman
	markerDHT  = 0xC4
	markerDAC  = 0xCC // arithmetic conditioning: never in a Huffman JPEG
	markerRST0 = 0xD0
	markerRST7 = 0xD7
	markerSOI  = 0xD8
	markerEOI  = 0xD9
	markerSOS  = 0xDA
	markerDQT  = 0xDB
	markerDNL  = 0xDC
	markerDRI  = 0xDD
	markerAPPE = 0xEE // Adobe: tells RGB from YCbCr
	markerTEM  = 0x01
)

// component is one colour component of the frame.
type component struct {
	id     uint8
	h, v   int // sampling factors
	tq     int // quantisation table
	td, ta int // DC and AC Huffman tables, from the scan header
	bw     int // blocks per MCU row across the padded width: mcusX*h
}

// decoder holds the state of one Decode call.
type decoder struct {
	data      []byte
	pos       int
	n         int // output pixels per block side: 8/denom
	maxPixels int64

	quant    [4][64]uint16 // natural order
	quantSet [4]bool
	dc, ac   [4]*huffTable

	frame      bool
	w, h       int
	comps      []component
	hmax, vmax int
	mcusX      int
	mcusY      int
	restart    int
	adobe      bool
	adobeXform uint8
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

func unsupportedf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
}

// decode walks the marker segments up to the first scan and decodes it.
func (d *decoder) decode(ctx context.Context) (image.Image, error) {
	if len(d.data) < 2 || d.data[0] != 0xFF || d.data[1] != markerSOI {
		return nil, corruptf("missing SOI marker")
	}
	d.pos = 2
	for {
		marker, err := d.nextMarker()
		if err != nil {
			return nil, err
		}
		switch {
		case marker == markerEOI:
			return nil, corruptf("no image before EOI")
		case marker >= markerRST0 && marker <= markerRST7, marker == markerTEM, marker == markerSOI:
			continue // standalone markers without a length
		}
		seg, err := d.segment()
		if err != nil {
			return nil, err
		}
		switch {
		case marker == markerSOF0 || marker == markerSOF1:
			if err := d.parseSOF(seg); err != nil {
				return nil, err
			}
		case marker >= 0xC2 && marker <= 0xCF && marker != markerDHT && marker != markerDAC:
			return nil, unsupportedf("frame type SOF%d", marker-0xC0)
		case marker == markerDAC:
			return nil, unsupportedf("arithmetic coding")
		case marker == markerDHT:
			if err := d.parseDHT(seg); err != nil {
				return nil, err
			}
		case marker == markerDQT:
			if err := d.parseDQT(seg); err != nil {
				return nil, err
			}
		case marker == markerDRI:
			if len(seg) != 2 {
				return nil, corruptf("DRI length %d", len(seg))
			}
			d.restart = int(binary.BigEndian.Uint16(seg))
		case marker == markerDNL:
			return nil, unsupportedf("DNL marker")
		case marker == markerAPPE:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.adobe, d.adobeXform = true, seg[11]
			}
		case marker == markerSOS:
			if err := d.parseSOS(seg); err != nil {
				return nil, err
			}
			return d.decodeScan(ctx)
		}
		// APPn, COM and unknown segments are skipped.
	}
}

// nextMarker skips to the next marker and returns its code. Bytes other
// than fill bytes between segments are tolerated the way libjpeg does.
func (d *decoder) nextMarker() (byte, error) {
	for {
		for d.pos < len(d.data) && d.data[d.pos] != 0xFF {
			d.pos++
		}
		for d.pos < len(d.data) && d.data[d.pos] == 0xFF {
			d.pos++
		}
		if d.pos >= len(d.data) {
			return 0, corruptf("unexpected end of data")
		}
		m := d.data[d.pos]
		d.pos++
		if m != 0 {
			return m, nil
		}
	}
}

// segment returns the payload of the marker segment at d.pos and skips it.
func (d *decoder) segment() ([]byte, error) {
	if d.pos+2 > len(d.data) {
		return nil, corruptf("unexpected end of data")
	}
	n := int(binary.BigEndian.Uint16(d.data[d.pos:]))
	if n < 2 || d.pos+n > len(d.data) {
		return nil, corruptf("bad segment length %d", n)
	}
	seg := d.data[d.pos+2 : d.pos+n]
	d.pos += n
	return seg, nil
}

func (d *decoder) parseSOF(seg []byte) error {
	if d.frame {
		return corruptf("second frame header")
	}
	d.frame = true
	if len(seg) < 6 {
		return corruptf("short SOF")
	}
	if seg[0] != 8 {
		return unsupportedf("%d-bit samples", seg[0])
	}
	d.h = int(binary.BigEndian.Uint16(seg[1:]))
	d.w = int(binary.BigEndian.Uint16(seg[3:]))
	nc := int(seg[5])
	if d.h == 0 {
		return unsupportedf("height defined by DNL")
	}
	if d.w == 0 {
		return corruptf("zero width")
	}
	if len(seg) != 6+3*nc {
		return corruptf("SOF length %d for %d components", len(seg), nc)
	}
	switch nc {
	case 1, 3:
	case 4:
		return unsupportedf("4-component (CMYK) JPEG")
	default:
		return corruptf("%d components", nc)
	}
	d.comps = make([]component, nc)
	for i := range d.comps {
		c := &d.comps[i]
		c.id = seg[6+3*i]
		c.h, c.v = int(seg[7+3*i]>>4), int(seg[7+3*i]&15)
		c.tq = int(seg[8+3*i])
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 {
			return corruptf("sampling factors %d×%d", c.h, c.v)
		}
		if c.tq > 3 {
			return corruptf("quantisation table %d", c.tq)
		}
		for j := range i {
			if d.comps[j].id == c.id {
				return corruptf("duplicate component id %d", c.id)
			}
		}
	}
	if nc == 1 {
		// A single component is never interleaved: its MCU is one block
		// whatever its sampling factors say (T.81 A.2.2).
		d.comps[0].h, d.comps[0].v = 1, 1
	} else {
		if d.adobe && d.adobeXform == 0 || d.comps[0].id == 'R' && d.comps[1].id == 'G' && d.comps[2].id == 'B' {
			return unsupportedf("RGB JPEG")
		}
		y, cb, cr := d.comps[0], d.comps[1], d.comps[2]
		if cb.h != cr.h || cb.v != cr.v || y.h%cb.h != 0 || y.v%cb.v != 0 {
			return unsupportedf("sampling %d×%d, %d×%d, %d×%d", y.h, y.v, cb.h, cb.v, cr.h, cr.v)
		}
		if _, ok := subsampleRatio(y.h/cb.h, y.v/cb.v); !ok {
			return unsupportedf("sampling %d×%d, %d×%d, %d×%d", y.h, y.v, cb.h, cb.v, cr.h, cr.v)
		}
	}
	for _, c := range d.comps {
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	d.mcusX = (d.w + 8*d.hmax - 1) / (8 * d.hmax)
	d.mcusY = (d.h + 8*d.vmax - 1) / (8 * d.vmax)
	padded := int64(d.mcusX*8*d.hmax) * int64(d.mcusY*8*d.vmax)
	if d.maxPixels > 0 && padded > d.maxPixels {
		return fmt.Errorf("%w: %d×%d", ErrTooLarge, d.w, d.h)
	}
	return nil
}

// subsampleRatio maps luma-to-chroma sampling ratios to image's names.
func subsampleRatio(h, v int) (image.YCbCrSubsampleRatio, bool) {
	switch [2]int{h, v} {
	case [2]int{1, 1}:
		return image.YCbCrSubsampleRatio444, true
	case [2]int{2, 1}:
		return image.YCbCrSubsampleRatio422, true
	case [2]int{2, 2}:
		return image.YCbCrSubsampleRatio420, true
	case [2]int{1, 2}:
		return image.YCbCrSubsampleRatio440, true
	case [2]int{4, 1}:
		return image.YCbCrSubsampleRatio411, true
	case [2]int{4, 2}:
		return image.YCbCrSubsampleRatio410, true
	}
	return 0, false
}

// zigzag maps the zig-zag index of a coefficient to its natural (row-major)
// index in the 8×8 block (T.81 figure A.6).
var zigzag = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

func (d *decoder) parseDQT(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		if tq > 3 || pq > 1 {
			return corruptf("DQT table %d precision %d", tq, pq)
		}
		seg = seg[1:]
		size := 64 << pq
		if len(seg) < size {
			return corruptf("short DQT")
		}
		for k := range 64 {
			q := uint16(seg[k])
			if pq == 1 {
				q = binary.BigEndian.Uint16(seg[2*k:])
			}
			d.quant[tq][zigzag[k]] = q
		}
		d.quantSet[tq] = true
		seg = seg[size:]
	}
	return nil
}

func (d *decoder) parseDHT(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return corruptf("short DHT")
		}
		tc, th := seg[0]>>4, int(seg[0]&15)
		if tc > 1 || th > 3 {
			return corruptf("DHT class %d table %d", tc, th)
		}
		var counts [16]uint8
		copy(counts[:], seg[1:17])
		total := 0
		for _, c := range counts {
			total += int(c)
		}
		seg = seg[17:]
		if total > 256 || len(seg) < total {
			return corruptf("DHT with %d codes", total)
		}
		slot := &d.dc[th]
		if tc == 1 {
			slot = &d.ac[th]
		}
		if *slot == nil {
			// One table per slot, rebuilt in place when redefined, so
			// that a stream of DHT segments cannot make Decode allocate
			// more than eight tables.
			*slot = new(huffTable)
		}
		if err := (*slot).build(&counts, seg[:total], tc == 1); err != nil {
			*slot = nil
			return err
		}
		seg = seg[total:]
	}
	return nil
}

func (d *decoder) parseSOS(seg []byte) error {
	if !d.frame {
		return corruptf("scan before frame header")
	}
	if len(seg) < 1 {
		return corruptf("short SOS")
	}
	ns := int(seg[0])
	if len(seg) != 4+2*ns {
		return corruptf("SOS length %d for %d components", len(seg), ns)
	}
	if ns != len(d.comps) {
		return unsupportedf("%d of %d components in a scan", ns, len(d.comps))
	}
	for i := range ns {
		cs, t := seg[1+2*i], seg[2+2*i]
		c := &d.comps[i]
		if c.id != cs {
			return unsupportedf("scan component order")
		}
		c.td, c.ta = int(t>>4), int(t&15)
		if c.td > 3 || c.ta > 3 || d.dc[c.td] == nil || d.ac[c.ta] == nil {
			return corruptf("undefined Huffman table")
		}
		if !d.quantSet[c.tq] {
			return corruptf("undefined quantisation table %d", c.tq)
		}
	}
	ss, se, a := seg[1+2*ns], seg[2+2*ns], seg[3+2*ns]
	if ss != 0 || se != 63 || a != 0 {
		return corruptf("sequential scan with Ss=%d Se=%d A=%#x", ss, se, a)
	}
	for i := range d.comps {
		d.comps[i].bw = d.mcusX * d.comps[i].h
	}
	return nil
}
