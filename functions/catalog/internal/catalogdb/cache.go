package catalogdb

import (
	"sync"
	"sync/atomic"

	"github.com/shopfn/shopfn/functions/catalog/internal/product"
)

// cache keeps products read by id, and pages of listings. It is coherent
// because this process is the only writer of its SQLite file (one instance
// owns one file): every write bumps the generation and drops what it
// touched after it commits (any page may hold any product, so every page),
// and a read that overlapped any write does not fill the cache, so rows
// read before a commit are never kept after it.
type cache struct {
	max, maxPages int
	gen           atomic.Uint64 // bumped by every write

	mu    sync.RWMutex
	byID  map[string]product.Product
	pages map[string][]product.Product
}

func newCache(max, maxPages int) *cache {
	return &cache{max: max, maxPages: maxPages, byID: make(map[string]product.Product), pages: make(map[string][]product.Product)}
}

// get returns the cached product and, on a miss, the generation to pass to
// fill after reading the database.
func (c *cache) get(id string) (product.Product, uint64, bool) {
	if c.max <= 0 {
		return product.Product{}, 0, false
	}
	gen := c.gen.Load()
	c.mu.RLock()
	p, ok := c.byID[id]
	c.mu.RUnlock()
	return p, gen, ok
}

// fill caches p, read from the database when the generation was gen, if no
// write happened since.
func (c *cache) fill(p product.Product, gen uint64) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if len(c.byID) >= c.max {
		clear(c.byID) // simple and rare: the cache refills from reads
	}
	c.byID[p.ID] = p
}

// page returns the cached listing page of key and, on a miss, the
// generation to pass to fillPage after reading the database.
func (c *cache) page(key string) ([]product.Product, uint64, bool) {
	if c.maxPages <= 0 {
		return nil, 0, false
	}
	gen := c.gen.Load()
	c.mu.RLock()
	ps, ok := c.pages[key]
	c.mu.RUnlock()
	return ps, gen, ok
}

// fillPage caches the page ps of key, read when the generation was gen, if
// no write happened since.
func (c *cache) fillPage(key string, ps []product.Product, gen uint64) {
	if c.maxPages <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if len(c.pages) >= c.maxPages {
		clear(c.pages)
	}
	c.pages[key] = ps
}

// wrote drops ids, and every page, after a write (committed or not:
// whether it happened may be unknown).
func (c *cache) wrote(ids ...string) {
	c.gen.Add(1)
	c.mu.Lock()
	for _, id := range ids {
		delete(c.byID, id)
	}
	clear(c.pages)
	c.mu.Unlock()
}
