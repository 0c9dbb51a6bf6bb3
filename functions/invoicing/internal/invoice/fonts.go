package invoice

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// The fonts are compiled into the binary so that the function needs no font
// files at run time; fonts/README.md says where they come from and why there
// are three.
var (
	//go:embed fonts/DejaVuSans.ttf
	dejaVuSans []byte
	//go:embed fonts/DroidSansFallbackFull.ttf
	droidSansFallback []byte
	//go:embed fonts/NanumSquareR.ttf
	nanumSquare []byte
)

// font is one embedded font: the family name it is registered under in a
// document, its bytes, and which characters it has a glyph for.
type font struct {
	family string
	data   []byte
	cover  *coverage
}

// fontSet is the primary font and the fallbacks tried, in order, for
// characters the primary lacks.
type fontSet struct {
	primary   font
	fallbacks []font
}

// loadFonts parses the cmap of each embedded font, once per process, on the
// first Render (about 0.1 ms: BenchmarkParseFonts). That is all that can be
// shared: fpdf keeps parsed fonts inside one document and has no API to
// share them, so every document parses the fonts it registers again
// (BenchmarkFpdfAddFont: about 6 ms for DejaVu Sans, 25 ms for Droid Sans
// Fallback). render keeps that low by registering a fallback only in
// documents that draw one of its characters, and then only a subset of it.
var loadFonts = sync.OnceValues(parseFonts)

// parseFonts reads the coverage of the embedded fonts.
func parseFonts() (*fontSet, error) {
	parse := func(family, file string, data []byte) (font, error) {
		cover, err := parseCoverage(data)
		if err != nil {
			return font{}, fmt.Errorf("%s: %w", file, err)
		}
		return font{family: family, data: data, cover: cover}, nil
	}
	primary, err := parse("dejavu", "DejaVuSans.ttf", dejaVuSans)
	if err != nil {
		return nil, err
	}
	set := &fontSet{primary: primary}
	for _, f := range []struct {
		family, file string
		data         []byte
	}{
		{"droid", "DroidSansFallbackFull.ttf", droidSansFallback},
		{"nanum", "NanumSquareR.ttf", nanumSquare},
	} {
		fb, err := parse(f.family, f.file, f.data)
		if err != nil {
			return nil, err
		}
		set.fallbacks = append(set.fallbacks, fb)
	}
	return set, nil
}

// fontFor returns the index in fallbacks of the font that draws c, or -1
// for the primary: the primary when it has the glyph (or when no font has
// it: the primary's empty box), else the first fallback that has it.
func (s *fontSet) fontFor(c rune) int {
	if s.primary.cover.has(c) {
		return -1
	}
	for i, f := range s.fallbacks {
		if f.cover.has(c) {
			return i
		}
	}
	return -1
}

// coverage is the set of Basic Multilingual Plane characters a font has a
// glyph for. fpdf can only encode BMP characters, so nothing beyond U+FFFF is
// ever looked up.
type coverage [0x10000 / 64]uint64

// has reports whether the font has a glyph for r.
func (c *coverage) has(r rune) bool {
	return r >= 0 && r <= 0xFFFF && c[r/64]&(1<<(r%64)) != 0
}

func (c *coverage) add(r uint32) {
	c[r/64] |= 1 << (r % 64)
}

var errNoCmap = errors.New("no Unicode format 4 cmap subtable")

// parseCoverage reads the Unicode format 4 cmap subtable of a TrueType
// font, the one fpdf maps characters with (it ignores format 12, so must
// we). Characters mapped to glyph 0 (.notdef) do not count.
func parseCoverage(ttf []byte) (*coverage, error) {
	cmap, err := table(ttf, "cmap")
	if err != nil {
		return nil, err
	}
	if len(cmap) < 4 {
		return nil, errNoCmap
	}
	n := int(binary.BigEndian.Uint16(cmap[2:]))
	for i := range n {
		rec := 4 + 8*i
		if rec+8 > len(cmap) {
			break
		}
		platform := binary.BigEndian.Uint16(cmap[rec:])
		encoding := binary.BigEndian.Uint16(cmap[rec+2:])
		off := int(binary.BigEndian.Uint32(cmap[rec+4:]))
		unicode := platform == 0 || platform == 3 && encoding == 1
		if !unicode || off+2 > len(cmap) || binary.BigEndian.Uint16(cmap[off:]) != 4 {
			continue
		}
		c := new(coverage)
		return c, c.addFormat4(cmap[off:])
	}
	return nil, errNoCmap
}

// table returns the bytes of the named table of a TrueType font.
func table(ttf []byte, tag string) ([]byte, error) {
	if len(ttf) < 12 {
		return nil, errors.New("not a TrueType font")
	}
	n := int(binary.BigEndian.Uint16(ttf[4:]))
	for i := range n {
		rec := 12 + 16*i
		if rec+16 > len(ttf) {
			break
		}
		if string(ttf[rec:rec+4]) != tag {
			continue
		}
		off := int(binary.BigEndian.Uint32(ttf[rec+8:]))
		size := int(binary.BigEndian.Uint32(ttf[rec+12:]))
		if off < 0 || size < 0 || off+size > len(ttf) {
			return nil, fmt.Errorf("table %q out of bounds", tag)
		}
		return ttf[off : off+size], nil
	}
	return nil, fmt.Errorf("no %q table", tag)
}

var errTruncated = errors.New("truncated cmap subtable")

// addFormat4 adds the characters of a format 4 (segment mapping to delta
// values) cmap subtable.
func (c *coverage) addFormat4(sub []byte) error {
	if len(sub) < 14 {
		return errTruncated
	}
	segs := int(binary.BigEndian.Uint16(sub[6:])) / 2
	ends := 14
	starts := ends + 2*segs + 2
	deltas := starts + 2*segs
	rangeOffsets := deltas + 2*segs
	if rangeOffsets+2*segs > len(sub) {
		return errTruncated
	}
	u16 := func(pos int) uint16 { return binary.BigEndian.Uint16(sub[pos:]) }
	for i := range segs {
		end, start := uint32(u16(ends+2*i)), uint32(u16(starts+2*i))
		delta, ro := u16(deltas+2*i), int(u16(rangeOffsets+2*i))
		for r := start; r <= end && r != 0xFFFF; r++ {
			glyph := uint16(r) + delta
			if ro != 0 {
				pos := rangeOffsets + 2*i + ro + 2*int(r-start)
				if pos+2 > len(sub) {
					return errTruncated
				}
				glyph = u16(pos)
				if glyph != 0 {
					glyph += delta
				}
			}
			if glyph != 0 {
				c.add(r)
			}
		}
	}
	return nil
}
