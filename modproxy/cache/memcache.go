package cache

import (
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/bounded"
)

// memCache is a small bounded in-memory cache for mutable answers: @latest,
// .info of a query, checksum-database latest and partial tiles, and negative
// answers. Entries keep their fetch time; callers decide what is fresh, so an
// old entry can still be served stale when every upstream fails.
type memCache struct {
	mu  sync.Mutex
	max int
	m   map[string]memEntry
}

type memEntry struct {
	body []byte
	at   time.Time
}

func newMemCache(max int) *memCache {
	return &memCache{max: max, m: make(map[string]memEntry)}
}

// get returns the entry for key if it is younger than ttl.
func (c *memCache) get(key string, ttl time.Duration) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || time.Since(e.at) > ttl {
		return nil, false
	}
	return e.body, true
}

// getStale returns the entry for key whatever its age.
func (c *memCache) getStale(key string) ([]byte, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return e.body, e.at, ok
}

func (c *memCache) put(key string, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		delete(c.m, bounded.SampleOldest(c.m, func(e memEntry) time.Time { return e.at }))
	}
	c.m[key] = memEntry{body: body, at: time.Now()}
}
