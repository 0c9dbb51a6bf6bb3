package store_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/shopfn/shopfn/shared/store"
)

func TestNewIDIsOpaqueUniqueAndSortsByTime(t *testing.T) {
	shape := regexp.MustCompile(`^ord_[0-9a-v]{24}$`)
	seen := map[string]bool{}
	prev := ""
	for i := range 2000 {
		id := store.NewID("ord")
		if !shape.MatchString(id) {
			t.Fatalf("NewID = %q, want ord_ and 24 characters of 0-9a-v", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
		if i%500 == 0 {
			time.Sleep(2 * time.Millisecond) // a later millisecond sorts later
			next := store.NewID("ord")
			if prev != "" && next <= prev {
				t.Errorf("id %q made later sorts before %q", next, prev)
			}
			prev = next
		}
	}
}
