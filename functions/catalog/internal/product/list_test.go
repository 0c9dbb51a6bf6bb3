package product

import (
	"slices"
	"testing"
)

func TestWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Red MUG", []string{"red", "mug"}},
		{"  red, red; mug!! ", []string{"red", "mug"}},
		{`"mug" OR NOT tea*`, []string{"mug", "or", "not", "tea"}},
		{"Café au-lait 300ml", []string{"café", "au", "lait", "300ml"}},
		{"茶 杯", []string{"茶", "杯"}},
		{"!!! ...", nil},
	}
	for _, tt := range tests {
		if got := Words(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Words(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []cursor{
		{},
		{name: "Red mug", id: "prd_abc", filter: 42},
		{name: "Zoë Ñandú 茶杯 — a long name", id: "prd_x", filter: 1 << 63},
	} {
		got, err := decodeCursor(c.encode())
		if err != nil || got != c {
			t.Errorf("decodeCursor(encode(%+v)) = %+v, %v", c, got, err)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(cursor{name: "n", id: "i", filter: 7}.encode())
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := decodeCursor(token)
		if err == nil && c.encode() != token {
			// Any accepted token must be one the service could have made.
			if _, err2 := decodeCursor(c.encode()); err2 != nil {
				t.Errorf("re-encoded cursor of %q does not decode: %v", token, err2)
			}
		}
	})
}
