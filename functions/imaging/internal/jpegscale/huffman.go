package jpegscale

// lutBits is the number of bits looked up at once. Codes up to this length
// (nearly all of them in photos) decode with one table read, and so do their
// extra bits when both fit; with 10 bits a table is 4 KiB of fast entries
// plus 2 KiB of symbols, so the four tables of a colour scan stay in L1.
// Measured on the imagebench photo at 1/4 scale, fastest of 30: 9 bits is
// 12% slower (34.2 against 30.5 ms), 11 bits no faster.
const lutBits = 10

// huffTable is one Huffman table prepared for decoding.
type huffTable struct {
	// fast holds, for each lutBits-bit prefix whose code and extra bits
	// both fit in it, the decoded result: value<<16 | run<<8 | bits used.
	// DC tables use run 0. Zero means "not fast": use sym.
	fast [1 << lutBits]int32
	// sym holds, for each prefix that starts with a code of at most lutBits
	// bits, length<<8 | symbol; zero means the code is longer.
	sym [1 << lutBits]uint16
	// maxcode[l] is the largest code of length l, or -1; valptr[l] is the
	// index into vals of code 0 of length l (it may be negative).
	maxcode [17]int32
	valptr  [17]int32
	vals    [256]uint8
	n       int32
}

// extend converts the s extra bits v of a coefficient into its value
// (T.81 F.2.2.1).
func extend(v int32, s uint) int32 {
	if v < 1<<(s-1) {
		return v - (1 << s) + 1
	}
	return v
}

// build prepares t from the DHT counts and values.
func (t *huffTable) build(counts *[16]uint8, vals []uint8, ac bool) error {
	*t = huffTable{n: int32(len(vals))}
	copy(t.vals[:], vals)
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		c := int32(counts[l-1])
		t.maxcode[l] = -1
		if c > 0 {
			t.valptr[l] = k - code
			for range c {
				if code >= 1<<l {
					return corruptf("over-subscribed Huffman table")
				}
				if l <= lutBits {
					t.fill(code, uint(l), vals[k], ac)
				}
				code++
				k++
			}
			t.maxcode[l] = code - 1
		}
		code <<= 1
	}
	return nil
}

// fill writes the lookup entries of one code of length l ≤ lutBits.
func (t *huffTable) fill(code int32, l uint, symbol uint8, ac bool) {
	base := int(code) << (lutBits - l)
	run, size := uint(symbol>>4), uint(symbol&15)
	if !ac {
		run, size = 0, uint(symbol)
	}
	for j := range 1 << (lutBits - l) {
		idx := base | j
		t.sym[idx] = uint16(l)<<8 | uint16(symbol)
		if ac && size == 0 || size > 15 || l+size > lutBits {
			continue // EOB, ZRL, invalid DC size or extra bits beyond the prefix
		}
		var v int32
		if size > 0 {
			v = extend(int32(idx>>(lutBits-l-size))&(1<<size-1), size)
		}
		t.fast[idx] = v<<16 | int32(run)<<8 | int32(l+size)
	}
}

// decode decodes one code at the top of acc and returns its symbol and
// length; length 0 means an invalid code.
func (t *huffTable) decode(acc uint64) (uint8, uint) {
	if e := t.sym[acc>>(64-lutBits)]; e != 0 {
		return uint8(e), uint(e >> 8)
	}
	for l := uint(lutBits + 1); l <= 16; l++ {
		code := int32(acc >> (64 - l))
		if code <= t.maxcode[l] {
			i := t.valptr[l] + code
			if i < 0 || i >= t.n {
				return 0, 0
			}
			return t.vals[i], l
		}
	}
	return 0, 0
}
