package accountdb

import (
	"sync"
	"sync/atomic"

	"github.com/shopfn/shopfn/functions/user/internal/account"
)

// cache keeps accounts read by id. It stays coherent because this process is
// the only writer of its SQLite file (one instance owns one file): every
// write invalidates the entry after it commits, and a read that overlapped
// any write does not fill the cache, so a stale row read before a commit is
// never kept after it.
type cache struct {
	max int
	gen atomic.Uint64 // bumped by every write

	mu   sync.RWMutex
	byID map[string]account.Account
}

func newCache(max int) *cache {
	return &cache{max: max, byID: make(map[string]account.Account)}
}

// get returns the cached account and, on a miss, the generation to pass to
// fill after reading the database.
func (c *cache) get(id string) (account.Account, uint64, bool) {
	if c.max <= 0 {
		return account.Account{}, 0, false
	}
	gen := c.gen.Load()
	c.mu.RLock()
	a, ok := c.byID[id]
	c.mu.RUnlock()
	return a, gen, ok
}

// fill caches a, read from the database when the generation was gen, if no
// write happened since.
func (c *cache) fill(a account.Account, gen uint64) {
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
	c.byID[a.ID] = a
}

// wrote invalidates id after a committed write.
func (c *cache) wrote(id string) {
	c.gen.Add(1)
	c.mu.Lock()
	delete(c.byID, id)
	c.mu.Unlock()
}
