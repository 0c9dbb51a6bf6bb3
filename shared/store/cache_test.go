package store_test

import (
	"testing"

	"github.com/shopfn/shopfn/shared/store"
)

func TestCache(t *testing.T) {
	c := store.NewCache[string, int](2)
	_, gen, ok := c.Get("a")
	if ok {
		t.Fatal("Get on an empty cache hit")
	}
	c.Fill("a", 1, gen)
	if v, _, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("Get(a) = %v, %v; want 1", v, ok)
	}

	// A read that overlapped a write must not fill.
	_, gen, _ = c.Get("b")
	c.Invalidate("a")
	c.Fill("b", 2, gen)
	if _, _, ok := c.Get("b"); ok {
		t.Error("a value read before a write was kept after it")
	}
	if _, _, ok := c.Get("a"); ok {
		t.Error("an invalidated key is still cached")
	}

	// Full: emptied, then refilled.
	for _, k := range []string{"x", "y", "z"} {
		_, gen, _ := c.Get(k)
		c.Fill(k, 0, gen)
	}
	if _, _, ok := c.Get("z"); !ok {
		t.Error("the newest fill is not cached")
	}
	c.InvalidateAll()
	if _, _, ok := c.Get("z"); ok {
		t.Error("InvalidateAll left an entry")
	}

	off := store.NewCache[string, int](0)
	_, gen, _ = off.Get("a")
	off.Fill("a", 1, gen)
	if _, _, ok := off.Get("a"); ok {
		t.Error("a disabled cache cached")
	}
}
