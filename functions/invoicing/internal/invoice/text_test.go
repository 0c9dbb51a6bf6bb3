package invoice

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-pdf/fpdf"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"plain", "Widget", 100, "Widget"},
		{"any script passes", "发票 Zoë Привет مرحبا שלום", 100, "发票 Zoë Привет مرحبا שלום"},
		{"combining marks pass", "e\u0301", 100, "e\u0301"},
		{"white space collapses and trims", " \t a \r\n\n b\u00a0\u2028c  ", 100, "a b c"},
		{"controls dropped", "a\x00b\x07c\x1b[31md\x7f\u0085e", 100, "abc[31md e"},
		{"format characters dropped", "a\u202eb\u200bc\ufeffd\u00ade\u2066f", 100, "abcdef"},
		{"invalid bytes become one U+FFFD per run", "a\xff\xfe\xfdb\xc3(c", 100, "a\ufffdb\ufffd(c"},
		{"a real U+FFFD stays", "a\ufffd\ufffdb", 100, "a\ufffd\ufffdb"},
		{"beyond the BMP becomes U+FFFD", "a😀b𠀋c", 100, "a\ufffdb\ufffdc"},
		{"noncharacters become U+FFFD", "a\ufffeb\uffffc\ufdd0d", 100, "a\ufffdb\ufffdc\ufffdd"},
		{"cut with an ellipsis", "abcdef", 3, "abc…"},
		{"cut exactly at a space", "abc def", 3, "abc…"},
		{"no space before the ellipsis", "abc def", 4, "abc…"},
		{"fits exactly", "abc", 3, "abc"},
		{"empty", "", 3, ""},
		{"only junk", "\x00\t\u200b ", 3, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sanitize(tt.in, tt.max); got != tt.want {
				t.Errorf("sanitize(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func TestSanitizeBounded(t *testing.T) {
	in := strings.Repeat("\xff ab \x00", 10000)
	got := sanitize(in, maxTextRunes)
	if !utf8.ValidString(got) || utf8.RuneCountInString(got) > maxTextRunes+1 {
		t.Errorf("sanitize(%d bytes) = %d runes (valid %v), want at most %d valid runes", len(in), utf8.RuneCountInString(got), utf8.ValidString(got), maxTextRunes+1)
	}
}

// unitWidth makes every character one unit wide and marks zero wide, so
// that wrap tests count characters.
func unitWidth(r rune) float64 {
	if isMark(r) {
		return 0
	}
	return 1
}

func TestWrap(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		width    float64
		maxLines int
		want     []string
	}{
		{"fits", "abc def", 10, 0, []string{"abc def"}},
		{"breaks at the space", "abc def ghi", 7, 0, []string{"abc def", "ghi"}},
		{"swallows the space at the break", "abc defg", 4, 0, []string{"abc", "defg"}},
		{"long word breaks inside", "abcdefghij", 4, 0, []string{"abcd", "efgh", "ij"}},
		{"amount breaks after a separator", "1,234,567.89 USD", 10, 0, []string{"1,234,", "567.89 USD"}},
		{"CJK breaks between characters", "发票张伟测试", 4, 0, []string{"发票张伟", "测试"}},
		{"CJK then Latin", "发票 invoice", 4, 0, []string{"发票", "invo", "ice"}},
		{"mark stays with its base", "abce\u0301f", 4, 0, []string{"abce\u0301", "f"}},
		{"mark at the break moves its base", "abcde\u0301", 4, 0, []string{"abcd", "e\u0301"}},
		{"cut to max lines with an ellipsis", "aaa bbb ccc ddd", 3, 2, []string{"aaa", "bb…"}},
		{"last line fits", "aaa bbb", 3, 2, []string{"aaa", "bbb"}},
		{"ellipsis drops the space", "aaa b cc", 3, 2, []string{"aaa", "b…"}},
		{"one line", "abcdefgh", 4, 1, []string{"abc…"}},
		{"narrower than a character", "abc", 0.5, 0, []string{"a", "b", "c"}},
		{"empty", "", 4, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wrap(tt.in, tt.width, tt.maxLines, unitWidth)
			if !slices.Equal(got, tt.want) {
				t.Errorf("wrap(%q, %v, %d) = %q, want %q", tt.in, tt.width, tt.maxLines, got, tt.want)
			}
		})
	}
}

func TestWrapLongInput(t *testing.T) {
	for _, in := range []string{strings.Repeat("x", 10000), strings.Repeat("发", 10000), strings.Repeat("ab ", 3000)} {
		got := wrap(in, 40, nameMaxLines, unitWidth)
		if len(got) != nameMaxLines || !strings.HasSuffix(got[len(got)-1], "…") {
			t.Errorf("wrap(%d runes, 40, %d) = %d lines ending %q, want %d lines ending with an ellipsis", utf8.RuneCountInString(in), nameMaxLines, len(got), got[len(got)-1], nameMaxLines)
		}
	}
}

func TestVisual(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"left to right unchanged", "Zoë (Ñandú) 12", "Zoë (Ñandú) 12"},
		{"Hebrew word reversed", "שלום", "םולש"},
		{"Hebrew words in a right-to-left line", "שלום עולם", "םלוע םולש"},
		{"number stays left to right in Hebrew", "שלום 12", "12 םולש"},
		{"Arabic in a left-to-right line", "Shop مرحبا here", "Shop ابحرم here"},
		// UAX #9 W2: digits after Arabic letters are Arabic numbers, which
		// stay on the right-to-left side.
		{"digits after Arabic", "Shop مرحبا 5", "Shop 5 ابحرم"},
		{"Latin island in Arabic", "مرحبا abc", "abc ابحرم"},
		{"brackets mirror in right-to-left text", "שלום (עולם)", "(םלוע) םולש"},
		{"bracket pair takes its context", "مرحبا (hello) 123", "123 (hello) ابحرم"},
		{"Arabic-Indic digits keep their order", "رقم ١٢٣", "١٢٣ مقر"},
		// Without L3: a right-to-left mark is drawn left of its base, where
		// the font's outline for it reaches over the base.
		{"marks come before their base", "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd", "\u05dd\u05b9\u05d5\u05dc\u05c1\u05b8\u05e9"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := visual(tt.in, rtlBase(tt.in)); got != tt.want {
				t.Errorf("visual(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestFontsCoverScripts checks that every character of the scripts the
// brief names is drawn with a font that has its glyph. pdftotext cannot
// check this: fpdf maps every code back to its character, so text extraction
// succeeds even for characters drawn as empty boxes.
func TestFontsCoverScripts(t *testing.T) {
	fonts, err := loadFonts()
	if err != nil {
		t.Fatalf("loadFonts() = %v", err)
	}
	r := &renderer{fonts: fonts, registered: allRegistered(fonts)}
	tests := []struct {
		name string
		in   string
	}{
		{"ASCII", "Invoice INV-2026-0123456789 Qty 1,234.56 USD #@&*()[]{}<>"},
		{"Latin accents", "Zoë Ñandú Ægir Łódź Straße çà ő ř ș"},
		{"Greek", "Ελληνικά"},
		{"Cyrillic", "Привет Ёжик Україна"},
		{"Hebrew", "שלום"},
		{"Arabic", "مرحبا ١٢٣"},
		{"Chinese", "发票 张伟 測試"},
		{"Japanese", "日本語 ひらがな カタカナ"},
		{"Korean", "한국어 주문서 감사합니다 김민준 서울특별시 강남구"},
		{"layout marks", "… — – · € £ ¥ ₽ U+FFFD:\ufffd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range tt.in {
				if f := r.fontOf(c); !f.cover.has(c) {
					t.Errorf("fontOf(%q %U) = %s, which has no glyph for it", c, c, f.family)
				}
			}
		})
	}
	// Droid Sans Fallback alone has no Latin or Cyrillic letters: this is
	// why there is a primary font.
	for _, c := range "AZaz Ñ П" {
		if c != ' ' && fonts.fallbacks[0].cover.has(c) {
			t.Errorf("%s.cover.has(%q) = true, want false (fonts/README.md says it has none)", fonts.fallbacks[0].family, c)
		}
	}
	// And it has almost no Hangul syllables: this is why there is a third.
	for _, c := range "한국어" {
		if fonts.fallbacks[0].cover.has(c) {
			t.Errorf("%s.cover.has(%q) = true, want false (fonts/README.md says it has none)", fonts.fallbacks[0].family, c)
		}
	}
}

// allRegistered is a renderer's registered fallbacks when every one is.
func allRegistered(fonts *fontSet) []bool {
	all := make([]bool, len(fonts.fallbacks))
	for i := range all {
		all[i] = true
	}
	return all
}

func TestParseCoverageRejectsGarbage(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("not a font"), make([]byte, 64)} {
		if _, err := parseCoverage(in); err == nil {
			t.Errorf("parseCoverage(%q) = nil error, want one", in)
		}
	}
}

// TestFallbackSubsetKeepsGlyphs checks that each fallback font gets the
// characters it is the first to have, and that the subset of it a document
// embeds still maps every one of them.
func TestFallbackSubsetKeepsGlyphs(t *testing.T) {
	fonts, err := loadFonts()
	if err != nil {
		t.Fatalf("loadFonts() = %v", err)
	}
	r := &renderer{fonts: fonts, m: newModel(testOrder("ord_cut", "发票 Widget", "日本語 カタカナ", "한국 머그"), testSeller, Buyer{Name: "張偉 김민준"})}
	used := r.fallbackRunes()
	want := []string{"发票日本語カタナ張偉", "한국머그김민준"}
	if len(used) != len(want) {
		t.Fatalf("fallbackRunes() = %q, want one string per fallback: %q", used, want)
	}
	for i, f := range fonts.fallbacks {
		if !sameRunes(used[i], want[i]) {
			t.Errorf("fallbackRunes()[%s] = %q, want the runes of %q", f.family, used[i], want[i])
		}
		cover, err := parseCoverage(fpdf.UTF8CutFont(f.data, used[i]))
		if err != nil {
			t.Fatalf("parseCoverage(UTF8CutFont(%s, %q)) = %v", f.family, used[i], err)
		}
		for _, c := range used[i] {
			if !cover.has(c) {
				t.Errorf("UTF8CutFont(%s, %q) has no glyph for %q", f.family, used[i], c)
			}
		}
	}
}

func sameRunes(a, b string) bool {
	ra, rb := []rune(a), []rune(b)
	slices.Sort(ra)
	slices.Sort(rb)
	return slices.Equal(ra, rb)
}
