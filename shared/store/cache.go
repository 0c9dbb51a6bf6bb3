package store

import (
	"sync"
	"sync/atomic"
)

// Cache keeps values read from a store in memory. It is coherent only for a
// store whose process is the only writer of its data, as with one instance
// owning one SQLite file:
//
//   - every write calls Invalidate (or InvalidateAll) once it has ended,
//     committed or not, which also bumps the cache's generation;
//   - a read that misses takes the generation from Get and hands it to Fill,
//     which keeps the value only if no write ended meanwhile; so a value
//     read just before a commit is never kept after it.
//
// The cache holds at most max entries; when full it is emptied (simple, and
// rare: it refills from reads). max <= 0 disables it.
type Cache[K comparable, V any] struct {
	max int
	gen atomic.Uint64

	mu sync.RWMutex
	m  map[K]V
}

// NewCache returns a cache of at most max entries.
func NewCache[K comparable, V any](max int) *Cache[K, V] {
	return &Cache[K, V]{max: max, m: make(map[K]V)}
}

// Get returns the cached value of k and, on a miss, the generation to pass
// to Fill after reading the store.
func (c *Cache[K, V]) Get(k K) (v V, gen uint64, ok bool) {
	if c.max <= 0 {
		return v, 0, false
	}
	gen = c.gen.Load()
	c.mu.RLock()
	v, ok = c.m[k]
	c.mu.RUnlock()
	return v, gen, ok
}

// Fill caches v for k, read from the store at generation gen, unless a
// write has ended since.
func (c *Cache[K, V]) Fill(k K, v V, gen uint64) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = v
}

// Invalidate drops keys after a write to them has ended.
func (c *Cache[K, V]) Invalidate(keys ...K) {
	if c.max <= 0 {
		return
	}
	c.gen.Add(1)
	c.mu.Lock()
	for _, k := range keys {
		delete(c.m, k)
	}
	c.mu.Unlock()
}

// InvalidateAll drops everything after a write that may touch any entry.
func (c *Cache[K, V]) InvalidateAll() {
	if c.max <= 0 {
		return
	}
	c.gen.Add(1)
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}
