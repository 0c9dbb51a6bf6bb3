package invoice

import (
	"math"
	"testing"

	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
)

func TestFormatMoney(t *testing.T) {
	tests := []struct {
		name     string
		currency string
		minor    int64
		want     string
	}{
		{"USD cents", "USD", 1234, "12.34 USD"},
		{"USD zero", "USD", 0, "0.00 USD"},
		{"USD one cent", "USD", 1, "0.01 USD"},
		{"USD ten cents", "USD", 10, "0.10 USD"},
		{"USD thousands", "USD", 123456789, "1,234,567.89 USD"},
		{"EUR exact thousand", "EUR", 100000, "1,000.00 EUR"},
		{"EUR below a thousand", "EUR", 99999, "999.99 EUR"},
		{"JPY has no decimals", "JPY", 1235, "1,235 JPY"},
		{"JPY zero", "JPY", 0, "0 JPY"},
		{"JPY millions", "JPY", 12345678, "12,345,678 JPY"},
		{"KWD has three decimals", "KWD", 1234, "1.234 KWD"},
		{"KWD below one", "KWD", 5, "0.005 KWD"},
		{"CLF has four decimals", "CLF", 12345, "1.2345 CLF"},
		{"unknown code has two", "XYZ", 1234, "12.34 XYZ"},
		{"no code", "", 1234, "12.34"},
		{"largest amount", "USD", math.MaxInt64, "92,233,720,368,547,758.07 USD"},
		{"largest JPY", "JPY", math.MaxInt64, "9,223,372,036,854,775,807 JPY"},
		// Render rejects negative amounts (the proto forbids them); the
		// formatter is exact for them anyway, down to the smallest int64.
		{"negative", "EUR", -1234, "-12.34 EUR"},
		{"smallest amount", "USD", math.MinInt64, "-92,233,720,368,547,758.08 USD"},
		{"hostile code is sanitised and cut", "US\x00D\n<script>alert(1)", 100, "1.00 USD <scr…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &commonv1.Money{CurrencyCode: tt.currency, AmountMinor: tt.minor}
			if got := formatMoney(m); got != tt.want {
				t.Errorf("formatMoney(%v) = %q, want %q", m, got, tt.want)
			}
		})
	}
}
