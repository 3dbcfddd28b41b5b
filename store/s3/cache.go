package s3

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// cache is the local disk cache of hot objects: one file per key, named by
// the key's hash, the least recently used removed first once the files
// exceed the limit. A file is replaced by a rename and removed by an unlink,
// so a File opened from it keeps reading the content it opened.
type cache struct {
	objects, spoolDir string
	limit             int64

	mu   sync.Mutex
	size int64
	lru  list.List // of *entry, most recently used first
	m    map[string]*entry
}

type entryInfo struct {
	etag string
	size int64
	mod  time.Time
}

type entry struct {
	entryInfo
	key  string
	name string
	elem *list.Element
}

// newCache returns an empty cache in dir, removing what an earlier Store
// left there.
func newCache(dir string, limit int64) (*cache, error) {
	c := &cache{
		objects:  filepath.Join(dir, "objects"),
		spoolDir: filepath.Join(dir, "spool"),
		limit:    limit,
		m:        map[string]*entry{},
	}
	for _, d := range []string{c.objects, c.spoolDir} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *cache) name(key string) string {
	h := sha256.Sum256([]byte(key))
	x := hex.EncodeToString(h[:])
	return filepath.Join(c.objects, x[:2], x[2:])
}

// spool creates a file for content on its way into the cache (or to the
// bucket), on the cache's file system so that add is a rename.
func (c *cache) spool() (*os.File, error) {
	f, err := os.CreateTemp(c.spoolDir, "spool-")
	if err != nil {
		return nil, fmt.Errorf("store: local spool file: %w (is the cache directory's disk full?)", err)
	}
	return f, nil
}

// peek returns key's entry without touching its recency.
func (c *cache) peek(key string) (entryInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		return e.entryInfo, true
	}
	return entryInfo{}, false
}

// open opens key's cached file, of ETag etag unless etag is empty, and marks
// it used.
func (c *cache) open(key, etag string) (*os.File, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || (etag != "" && e.etag != etag) {
		return nil, false
	}
	f, err := os.Open(e.name)
	if err != nil {
		c.drop(e)
		return nil, false
	}
	c.lru.MoveToFront(e.elem)
	return f, true
}

// add moves the file named tmp into the cache as key's content and evicts
// the least recently used files beyond the limit. It reports false, leaving
// tmp where it is, when the content alone exceeds the limit.
func (c *cache) add(key, tmp string, info entryInfo) bool {
	if info.size > c.limit {
		c.remove(key)
		return false
	}
	name := c.name(key)
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Renamed under the lock, so that the file and the entry agree.
	if err := os.Rename(tmp, name); err != nil {
		return false
	}
	if old, ok := c.m[key]; ok {
		c.size -= old.size
		c.lru.Remove(old.elem)
	}
	e := &entry{entryInfo: info, key: key, name: name}
	e.elem = c.lru.PushFront(e)
	c.m[key] = e
	c.size += info.size
	for c.size > c.limit {
		last := c.lru.Back().Value.(*entry)
		if last == e {
			break
		}
		c.drop(last)
		os.Remove(last.name)
	}
	return true
}

// bytes returns the size of the cached files.
func (c *cache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// remove forgets key and removes its file.
func (c *cache) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.drop(e)
		os.Remove(e.name)
	}
}

func (c *cache) drop(e *entry) {
	if c.m[e.key] == e {
		delete(c.m, e.key)
		c.lru.Remove(e.elem)
		c.size -= e.size
	}
}
