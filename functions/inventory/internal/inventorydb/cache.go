package inventorydb

import (
	"sync"
	"sync/atomic"

	"github.com/shopfn/shopfn/functions/inventory/internal/stock"
)

// cache keeps stock rows read by GetStock, the public read product pages
// make. It is coherent because this process is the only writer of its
// SQLite file: every transaction that wrote stock rows drops them once it
// has ended (committed or not), and a read that overlapped any such
// transaction's end does not fill the cache, so a row read before a commit
// is never kept after it. Reserve, Commit and the rest read inside their
// transactions and never use it.
type cache struct {
	max int
	gen atomic.Uint64 // bumped whenever written rows are dropped

	mu    sync.RWMutex
	bySKU map[string]stock.Stock
}

func newCache(max int) *cache {
	return &cache{max: max, bySKU: make(map[string]stock.Stock)}
}

// get returns the cached stock of sku and, on a miss, the generation to
// pass to fill after reading the database.
func (c *cache) get(sku string) (stock.Stock, uint64, bool) {
	if c.max <= 0 {
		return stock.Stock{}, 0, false
	}
	gen := c.gen.Load()
	c.mu.RLock()
	s, ok := c.bySKU[sku]
	c.mu.RUnlock()
	return s, gen, ok
}

// fill caches s, read from the database at generation gen, unless a write
// ended since.
func (c *cache) fill(s stock.Stock, gen uint64) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if len(c.bySKU) >= c.max {
		clear(c.bySKU) // rare, and reads refill it
	}
	c.bySKU[s.SKU] = s
}

// drop forgets the SKUs a transaction wrote, after it has ended.
func (c *cache) drop(skus []string) {
	if c.max <= 0 || len(skus) == 0 {
		return
	}
	c.gen.Add(1)
	c.mu.Lock()
	for _, sku := range skus {
		delete(c.bySKU, sku)
	}
	c.mu.Unlock()
}
