package cache

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/store"
)

// evictor keeps the store under a size limit by removing whole module
// versions (.info, .mod and .zip together), least recently used first.
// Checksum-database data and lists are small and are never evicted; a
// module's stored list drops the versions evicted from it.
type evictor struct {
	max int64

	mu      sync.Mutex
	total   int64
	entries map[string]*evictEntry // version prefix "<esc mod>/@v/<esc ver>"
	ready   bool                   // the initial walk is done
}

type evictEntry struct {
	files map[string]int64 // key -> size
	size  int64
	used  time.Time
}

// versionPrefix returns "<esc mod>/@v/<esc ver>" for a module file key, or "".
func versionPrefix(key string) string {
	vp, _, _, _ := proto.VersionOf(key)
	return vp
}

func (e *evictor) add(key string, size int64, used time.Time) {
	vp := versionPrefix(key)
	if vp == "" {
		return
	}
	ent := e.entries[vp]
	if ent == nil {
		ent = &evictEntry{files: map[string]int64{}}
		e.entries[vp] = ent
	}
	if old, ok := ent.files[key]; ok {
		ent.size -= old
		e.total -= old
	}
	ent.files[key] = size
	ent.size += size
	e.total += size
	if used.After(ent.used) {
		ent.used = used
	}
}

func (e *evictor) touch(key string) {
	vp := versionPrefix(key)
	if vp == "" {
		return
	}
	e.mu.Lock()
	if ent := e.entries[vp]; ent != nil {
		ent.used = time.Now()
	}
	e.mu.Unlock()
}

// startEvictor indexes the store in the background and enables eviction.
func (c *Cache) startEvictor() {
	if c.cfg.MaxStoreSize <= 0 {
		return
	}
	if _, ok := c.st.(store.Walker); !ok {
		c.log.Warn("this store cannot list its keys; --max-store-size is not applied")
		return
	}
	c.evict = &evictor{max: c.cfg.MaxStoreSize, entries: map[string]*evictEntry{}}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		type file struct {
			key  string
			size int64
			mod  time.Time
		}
		var files []file
		err := store.Walk(c.ctx, c.st, "", func(key string, info store.Info) error {
			files = append(files, file{key, info.Size, info.ModTime})
			return nil
		})
		if err != nil && c.ctx.Err() == nil {
			c.log.Warn("eviction: cannot list the store; sizes are counted from new files only", "err", err)
		}
		c.evict.mu.Lock()
		for _, f := range files {
			c.evict.add(f.key, f.size, f.mod)
		}
		c.evict.ready = true
		total := c.evict.total
		c.evict.mu.Unlock()
		c.log.Info("store indexed for eviction", "module_versions", len(c.evict.entries), "bytes", total, "max", c.cfg.MaxStoreSize)
		c.evictIfNeeded(c.ctx)
	}()
}

// committed records a new file and evicts if the store is over its limit.
func (c *Cache) committed(ctx context.Context, key string, size int64) {
	if c.evict == nil {
		return
	}
	c.evict.mu.Lock()
	c.evict.add(key, size, time.Now())
	over := c.evict.ready && c.evict.total > c.evict.max
	c.evict.mu.Unlock()
	if over {
		c.evictIfNeeded(ctx)
	}
}

// evictIfNeeded removes least recently used module versions until the store
// is at 90% of its limit. Versions being fetched are left alone.
func (c *Cache) evictIfNeeded(ctx context.Context) {
	e := c.evict
	e.mu.Lock()
	if e.total <= e.max {
		e.mu.Unlock()
		return
	}
	target := e.max / 10 * 9
	type cand struct {
		vp  string
		ent *evictEntry
	}
	cands := make([]cand, 0, len(e.entries))
	for vp, ent := range e.entries {
		cands = append(cands, cand{vp, ent})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].ent.used.Before(cands[j].ent.used) })
	var victims []cand
	total := e.total
	for _, cd := range cands {
		if total <= target {
			break
		}
		busy := false
		for k := range cd.ent.files {
			busy = busy || c.busy(k)
		}
		if busy {
			continue
		}
		victims = append(victims, cd)
		total -= cd.ent.size
		delete(e.entries, cd.vp)
	}
	e.total = total
	e.mu.Unlock()

	var freed int64
	lists := map[string][]string{} // list key -> versions to drop
	for _, v := range victims {
		for k := range v.ent.files {
			if c.cfg.Removed != nil {
				c.cfg.Removed(k)
			}
			if err := c.st.Remove(ctx, k); err != nil {
				c.log.Warn("eviction: cannot remove a file", "key", k, "err", err)
			}
		}
		freed += v.ent.size
		for k := range v.ent.files {
			if _, lk, ver, ok := proto.VersionOf(k); ok {
				lists[lk] = append(lists[lk], ver)
				break
			}
		}
	}
	for lk, drop := range lists {
		c.dropFromList(ctx, lk, drop)
	}
	if len(victims) > 0 {
		c.m.evicted.Add(float64(len(victims)))
		c.log.Info("evicted least recently used module versions", "versions", len(victims), "bytes", freed, "store_bytes", total, "max", e.max)
	}
}

// dropFromList rewrites a stored version list without the given versions, so
// that what the store lists stays what it has when served offline. The list
// keeps its age: it was not confirmed by an upstream just now.
func (c *Cache) dropFromList(ctx context.Context, key string, drop []string) {
	b, modTime, err := c.readStored(ctx, key, maxMutable)
	if err != nil || b == nil {
		return
	}
	gone := map[string]bool{}
	for _, v := range drop {
		gone[v] = true
	}
	var out strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && !gone[f[0]] {
			out.WriteString(line + "\n")
		}
	}
	c.put(ctx, key, []byte(out.String()), modTime)
}
