package invoice

import (
	"strconv"

	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
)

// minorDigits lists the ISO 4217 currencies whose minor unit is not 1/100 of
// the major unit; every other code has 2 decimals. Money on the wire is
// integer minor units, so the exponent only matters for display.
var minorDigits = map[string]int{
	// No minor unit.
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0,
	"KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0,
	"XAF": 0, "XOF": 0, "XPF": 0,
	// Thousandths.
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// Ten-thousandths (units of account).
	"CLF": 4, "UYW": 4,
}

// defaultMinorDigits is the exponent of a currency missing from minorDigits:
// most currencies (USD, EUR, GBP, …) have cents.
const defaultMinorDigits = 2

// formatMoney spells an amount for people: the major units grouped by
// thousands with ",", the minor units after ".", then the currency code, e.g.
// "1,234.56 EUR" or "1,235 JPY". It works on the integer digits only (no
// floating point) and is exact for every int64, negative ones included,
// although an order never carries a negative amount.
func formatMoney(m *commonv1.Money) string {
	code := sanitize(m.GetCurrencyCode(), maxCurrencyRunes)
	digits, ok := minorDigits[code]
	if !ok {
		digits = defaultMinorDigits
	}
	amount := m.GetAmountMinor()
	// The magnitude as uint64 so that math.MinInt64 has one too.
	mag := uint64(amount)
	if amount < 0 {
		mag = -mag
	}
	s := strconv.FormatUint(mag, 10)
	for len(s) <= digits {
		s = "0" + s
	}
	major, minor := s[:len(s)-digits], s[len(s)-digits:]

	b := make([]byte, 0, len(s)+len(s)/3+len(code)+3)
	if amount < 0 {
		b = append(b, '-')
	}
	for i := range len(major) {
		if i > 0 && (len(major)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, major[i])
	}
	if digits > 0 {
		b = append(b, '.')
		b = append(b, minor...)
	}
	if code != "" {
		b = append(b, ' ')
		b = append(b, code...)
	}
	return string(b)
}
