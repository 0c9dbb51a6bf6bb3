package invoice

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Rune limits applied by sanitize before any layout. They bound the work a
// hostile field can cause (a 10,000-character product name costs the same as
// a 300-character one) and are above what the layout shows: a name column
// holds about 40 characters a line and at most nameMaxLines lines.
const (
	maxTextRunes     = 300
	maxCurrencyRunes = 8
)

// ellipsis marks text cut short, by sanitize or by the layout.
const ellipsis = '…'

// sanitize makes user text safe to draw: invalid UTF-8 becomes U+FFFD;
// tabs, line breaks and other white space become one space, and runs of
// them collapse; other control and format characters (C0, C1, bidi
// overrides, zero-width characters, BOM) are dropped; characters outside the
// Basic Multilingual Plane (emoji, historic scripts), which fpdf cannot
// encode and panics on, become U+FFFD, as do noncharacters. The result is
// trimmed and cut to limit runes, with an ellipsis when cut.
func sanitize(s string, limit int) string {
	var b strings.Builder
	b.Grow(min(len(s), 4*limit))
	n := 0
	space := false   // a space is pending
	lastBad := false // the last rune written is U+FFFD for invalid bytes
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			if lastBad {
				continue
			}
		case unicode.IsSpace(r):
			space = n > 0
			continue
		case unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r):
			continue
		case r > 0xFFFF || r >= 0xFDD0 && r <= 0xFDEF || r&0xFFFE == 0xFFFE:
			r = utf8.RuneError
		}
		if n >= limit {
			b.WriteRune(ellipsis)
			return b.String()
		}
		if space {
			if n+1 >= limit {
				b.WriteRune(ellipsis)
				return b.String()
			}
			b.WriteByte(' ')
			space = false
			n++
		}
		b.WriteRune(r)
		n++
		lastBad = r == utf8.RuneError && size <= 1
	}
	return b.String()
}

// wrap breaks text into at most maxLines lines no wider than width, where
// runeWidth gives each character's advance. It breaks after spaces and
// commas (so a huge amount breaks at a thousands separator), around CJK
// characters, which take no spaces between words, and anywhere inside a word
// too long for a line, but never between a base character and its combining
// marks. The last line of text that does not fit ends with an ellipsis.
// maxLines < 1 means no limit. Lines are in logical order.
func wrap(text string, width float64, maxLines int, runeWidth func(rune) float64) []string {
	rs := []rune(text)
	var lines []string
	for len(rs) > 0 {
		if maxLines > 0 && len(lines) == maxLines-1 {
			lines = append(lines, fitEllipsis(rs, width, runeWidth))
			break
		}
		cut, next := breakLine(rs, width, runeWidth)
		lines = append(lines, string(rs[:cut]))
		rs = rs[next:]
	}
	return lines
}

// breakLine finds where the first line of rs ends: rs[:cut] is the line and
// rs[next:] the rest (next > cut when the break swallows spaces).
func breakLine(rs []rune, width float64, runeWidth func(rune) float64) (cut, next int) {
	w := 0.0
	brk := -1 // the last break opportunity: a line may end before rs[brk]
	for i, r := range rs {
		if i > 0 && (rs[i-1] == ' ' || rs[i-1] == ',' || r == ' ' || isIdeographic(rs[i-1]) || isIdeographic(r)) && !isMark(r) {
			brk = i
		}
		w += runeWidth(r)
		if w <= width || i == 0 {
			continue
		}
		if r == ' ' {
			brk = i
		}
		cut = brk
		if cut <= 0 {
			// No opportunity: break inside the word, before this
			// character's base, keeping at least one character.
			cut = i
			for cut > 1 && isMark(rs[cut]) {
				cut--
			}
			if isMark(rs[cut]) {
				cut = i
			}
		}
		next = cut
		for cut > 0 && rs[cut-1] == ' ' {
			cut--
		}
		for next < len(rs) && rs[next] == ' ' {
			next++
		}
		if cut == 0 { // only spaces before the break
			cut = next
		}
		return cut, next
	}
	return len(rs), len(rs)
}

// fitEllipsis returns rs on one line if it fits in width, or as much of it as
// fits followed by an ellipsis.
func fitEllipsis(rs []rune, width float64, runeWidth func(rune) float64) string {
	total := 0.0
	for _, r := range rs {
		total += runeWidth(r)
	}
	if total <= width {
		return string(rs)
	}
	avail := width - runeWidth(ellipsis)
	w, n := 0.0, 0
	for n < len(rs) && w+runeWidth(rs[n]) <= avail {
		w += runeWidth(rs[n])
		n++
	}
	// Keep a base character with its marks, and drop the space before the
	// ellipsis.
	for n > 0 && n < len(rs) && isMark(rs[n]) {
		n--
	}
	for n > 0 && rs[n-1] == ' ' {
		n--
	}
	return string(rs[:n]) + string(ellipsis)
}

// isIdeographic reports whether a line may break before or after r without a
// space: Han, kana and Hangul, and their fullwidth punctuation.
func isIdeographic(r rune) bool {
	return r >= 0x2E80 && (unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Bopomofo) ||
		r >= 0x3000 && r <= 0x303F || r >= 0xFF00 && r <= 0xFFEF)
}

// isMark reports whether r is a combining mark, drawn over the character
// before it.
func isMark(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me)
}

// Bidirectional classes, a simplification of the Unicode Bidirectional
// Algorithm's (UAX #9) for single lines of plain text without explicit
// embeddings: strong left-to-right, strong right-to-left, numbers, and
// neutrals (spaces, punctuation, symbols).
type bidiClass uint8

const (
	bidiNeutral bidiClass = iota
	bidiL
	bidiR
	bidiEN // European digits: left-to-right after L, a number after R
	bidiAN // Arabic-Indic digits
)

// classOf returns the bidirectional class of r.
func classOf(r rune) bidiClass {
	switch {
	case r >= 0x0660 && r <= 0x0669 || r >= 0x06F0 && r <= 0x06F9:
		return bidiAN
	case unicode.IsDigit(r):
		return bidiEN
	case unicode.IsLetter(r) && unicode.In(r, unicode.Hebrew, unicode.Arabic, unicode.Syriac, unicode.Thaana, unicode.Nko, unicode.Samaritan, unicode.Mandaic):
		return bidiR
	case unicode.IsLetter(r) || unicode.Is(unicode.Mc, r):
		return bidiL
	}
	return bidiNeutral
}

// rtlBase reports whether a paragraph is right-to-left: its first strong
// character is (UAX #9 rules P2 and P3).
func rtlBase(text string) bool {
	for _, r := range text {
		switch classOf(r) {
		case bidiL:
			return false
		case bidiR:
			return true
		}
	}
	return false
}

// visual reorders one line from logical order (the order typed) to the order
// its glyphs are drawn left to right, so that Hebrew and Arabic read
// correctly in a PDF, whose text operators draw strictly left to right. It
// follows UAX #9 for lines without explicit embeddings: W1 (marks take the
// class of their base), W7 (digits after L are L), N0 (a bracket pair takes
// the direction of its content and context), N1/N2 (neutrals between
// two runs of one direction take it, others the paragraph's), I1/I2 (levels),
// L2 (reverse runs from the highest level down) and L4 (mirrored brackets in
// right-to-left runs). Not L3: without a shaping engine a right-to-left mark
// must be drawn before (left of) its base, because right-to-left fonts place
// a zero-width mark's outline to the right of its origin, over the base drawn
// after it. Arabic letters are not shaped: they are drawn in their isolated
// forms.
func visual(line string, rtl bool) string {
	rs := []rune(line)
	if len(rs) == 0 {
		return line
	}
	hasR := false
	cls := make([]bidiClass, len(rs))
	base := bidiL
	if rtl {
		base = bidiR
	}
	lastStrong := base
	for i, r := range rs {
		c := classOf(r)
		switch {
		case isMark(r):
			c = base // W1 at the start of the line
			if i > 0 {
				c = cls[i-1]
			}
		case c == bidiEN && lastStrong == bidiL:
			c = bidiL // W7
		}
		if c == bidiL || c == bidiR {
			lastStrong = c
		}
		hasR = hasR || c == bidiR || c == bidiAN
		cls[i] = c
	}
	if !hasR && !rtl {
		return line
	}
	pairBrackets(rs, cls, base)
	// N1/N2: resolve each run of neutrals from its neighbours, with numbers
	// counting as right-to-left and the line's ends as the paragraph's
	// direction.
	dir := func(c bidiClass) bidiClass {
		if c == bidiEN || c == bidiAN {
			return bidiR
		}
		return c
	}
	for i := 0; i < len(rs); {
		if cls[i] != bidiNeutral {
			i++
			continue
		}
		j := i
		for j < len(rs) && cls[j] == bidiNeutral {
			j++
		}
		before, after := base, base
		if i > 0 {
			before = dir(cls[i-1])
		}
		if j < len(rs) {
			after = dir(cls[j])
		}
		c := base
		if before == after {
			c = before
		}
		for k := i; k < j; k++ {
			cls[k] = c
		}
		i = j
	}
	// I1/I2: embedding levels.
	levels := make([]int, len(rs))
	maxLevel := 0
	for i, c := range cls {
		lv := 0
		switch {
		case !rtl && c == bidiR:
			lv = 1
		case !rtl && (c == bidiEN || c == bidiAN):
			lv = 2
		case rtl && c == bidiR:
			lv = 1
		case rtl:
			lv = 2
		}
		levels[i] = lv
		maxLevel = max(maxLevel, lv)
	}
	// L4, before reordering: mirror brackets at odd levels.
	for i, r := range rs {
		if levels[i]%2 == 1 {
			rs[i] = mirror(r)
		}
	}
	// L2.
	for lv := maxLevel; lv >= 1; lv-- {
		for i := 0; i < len(rs); {
			if levels[i] < lv {
				i++
				continue
			}
			j := i
			for j < len(rs) && levels[j] >= lv {
				j++
			}
			reverse(rs[i:j])
			reverse(levels[i:j])
			i = j
		}
	}
	return string(rs)
}

// pairBrackets applies UAX #9 rule N0 to the round, square and curly bracket
// pairs of a line: a pair whose content has a strong character of the
// embedding direction takes that direction; one whose content is only of the
// opposite direction takes it when the context before the pair does too,
// else the embedding direction. Numbers count as right-to-left.
func pairBrackets(rs []rune, cls []bidiClass, base bidiClass) {
	strong := func(c bidiClass) bidiClass {
		if c == bidiEN || c == bidiAN {
			return bidiR
		}
		return c
	}
	var open []int // positions of unmatched opening brackets
	for i, r := range rs {
		switch r {
		case '(', '[', '{':
			open = append(open, i)
			continue
		case ')', ']', '}':
		default:
			continue
		}
		want := mirror(r)
		k := len(open) - 1
		for k >= 0 && rs[open[k]] != want {
			k--
		}
		if k < 0 {
			continue
		}
		o := open[k]
		open = open[:k]
		found := bidiNeutral
		for _, c := range cls[o+1 : i] {
			if c := strong(c); c == base {
				found = base
				break
			} else if c != bidiNeutral {
				found = c
			}
		}
		if found == bidiNeutral {
			continue
		}
		if found != base {
			before := base
			for j := o - 1; j >= 0; j-- {
				if c := strong(cls[j]); c != bidiNeutral {
					before = c
					break
				}
			}
			if before != found {
				found = base
			}
		}
		cls[o], cls[i] = found, found
	}
}

// mirror returns the mirror image of a bracket (Unicode BidiMirroring for
// the common pairs), drawn in right-to-left runs, and any other r unchanged.
// For a closing bracket it is also the opening one it pairs with.
func mirror(r rune) rune {
	switch r {
	case '(':
		return ')'
	case ')':
		return '('
	case '[':
		return ']'
	case ']':
		return '['
	case '{':
		return '}'
	case '}':
		return '{'
	case '<':
		return '>'
	case '>':
		return '<'
	case '«':
		return '»'
	case '»':
		return '«'
	case '‹':
		return '›'
	case '›':
		return '‹'
	}
	return r
}

func reverse[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}
