package fsstore_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/shopfn/shopfn/shared/store/fsstore"
)

func TestDocID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain", in: "usr_abc123", want: "usr_abc123"},
		{name: "plain with dash", in: "ord-1_A", want: "ord-1_A"},
		{name: "one underscore", in: "_x", want: "_x"},
		{name: "empty", in: "", want: "~"},
		{name: "slash", in: "a/b", want: "~YS9i"},
		{name: "dot", in: ".", want: "~Lg"},
		{name: "dot dot", in: "..", want: "~Li4"},
		{name: "dot inside", in: "a.b", want: "~YS5i"},
		{name: "reserved", in: "__x__", want: "~X194X18"},
		{name: "leading double underscore", in: "__x", want: "~X194"},
		{name: "tilde", in: "~", want: "~fg"},
		{name: "tilde prefix", in: "~YS9i", want: "~fllTOWk"},
		{name: "unicode", in: "café", want: "~Y2Fmw6k"},
		{name: "space", in: "a b", want: "~YSBi"},
		{name: "invalid utf-8", in: "\xff", want: "~_w"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fsstore.DocID(tt.in); got != tt.want {
				t.Errorf("DocID(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestDocIDOneToOne checks that distinct ids, plain or not, never share a
// name, and that every name is one Firestore accepts.
func TestDocIDOneToOne(t *testing.T) {
	reserved := regexp.MustCompile(`(?s)^__.*__$`)
	ids := []string{"", "~", "~~", "a", "A", "_", "-", "__", "___", "____", "__x__", "__x", ".", "..", "...",
		"a/b", "a.b", "/", "~Lg", "~YS9i", "~fg", "Lg", "YS9i", "café", "cafe", "日本", "\x00", "\xff", "a\nb",
		"usr_abc", "usr_abc ", " usr_abc", strings.Repeat("z", 1500), strings.Repeat("é", 562)}
	seen := map[string]string{}
	for _, id := range ids {
		got := fsstore.DocID(id)
		if prev, ok := seen[got]; ok {
			t.Errorf("DocID(%q) = DocID(%q) = %q", id, prev, got)
		}
		seen[got] = id
		if got == "" || got == "." || got == ".." || strings.Contains(got, "/") || reserved.MatchString(got) || len(got) > 1500 {
			t.Errorf("DocID(%q) = %q, not a valid document name", id, got)
		}
	}
}
