package modproxy

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
)

// walker is implemented by stores that can list their files (the disk store).
type walker interface {
	Walk(fn func(key string, size int64, mod time.Time)) error
}

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
	if strings.HasPrefix(key, "sumdb/") {
		return ""
	}
	for _, ext := range []string{".zip", ".mod", ".info"} {
		if strings.HasSuffix(key, ext) && strings.Contains(key, "/@v/") {
			return strings.TrimSuffix(key, ext)
		}
	}
	return ""
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
func (p *Proxy) startEvictor() {
	w, ok := p.st.(walker)
	if !ok || p.cfg.MaxStoreSize <= 0 {
		return
	}
	p.evict = &evictor{max: p.cfg.MaxStoreSize, entries: map[string]*evictEntry{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		type file struct {
			key  string
			size int64
			mod  time.Time
		}
		var files []file
		w.Walk(func(key string, size int64, mod time.Time) { files = append(files, file{key, size, mod}) })
		p.evict.mu.Lock()
		for _, f := range files {
			p.evict.add(f.key, f.size, f.mod)
		}
		p.evict.ready = true
		total := p.evict.total
		p.evict.mu.Unlock()
		p.log.Info("store indexed for eviction", "module_versions", len(p.evict.entries), "bytes", total, "max", p.cfg.MaxStoreSize)
		p.evictIfNeeded(p.ctx)
	}()
}

// committed records a new file and evicts if the store is over its limit.
func (p *Proxy) committed(ctx context.Context, key string, size int64) {
	if p.evict == nil {
		return
	}
	p.evict.mu.Lock()
	p.evict.add(key, size, time.Now())
	over := p.evict.ready && p.evict.total > p.evict.max
	p.evict.mu.Unlock()
	if over {
		p.evictIfNeeded(ctx)
	}
}

// evictIfNeeded removes least recently used module versions until the store
// is at 90% of its limit. Versions being fetched are left alone.
func (p *Proxy) evictIfNeeded(ctx context.Context) {
	e := p.evict
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
	p.mu.Lock()
	for _, c := range cands {
		if total <= target {
			break
		}
		busy := false
		for k := range c.ent.files {
			if p.flights[k] != nil {
				busy = true
			}
		}
		if busy {
			continue
		}
		victims = append(victims, c)
		total -= c.ent.size
		delete(e.entries, c.vp)
	}
	p.mu.Unlock()
	e.total = total
	e.mu.Unlock()

	var freed int64
	lists := map[string][]string{} // list key -> versions to drop
	for _, v := range victims {
		for k := range v.ent.files {
			p.hot.remove(k)
			if err := p.st.Remove(ctx, k); err != nil {
				p.log.Warn("eviction: cannot remove a file", "key", k, "err", err)
			}
		}
		freed += v.ent.size
		i := strings.LastIndex(v.vp, "/@v/")
		if ver, err := module.UnescapeVersion(v.vp[i+len("/@v/"):]); err == nil {
			lists[v.vp[:i]+"/@v/list"] = append(lists[v.vp[:i]+"/@v/list"], ver)
		}
	}
	for lk, drop := range lists {
		p.dropFromList(ctx, lk, drop)
	}
	if len(victims) > 0 {
		p.m.evicted.Add(float64(len(victims)))
		p.log.Info("evicted least recently used module versions", "versions", len(victims), "bytes", freed, "store_bytes", total, "max", e.max)
	}
}

// dropFromList rewrites a stored version list without the given versions, so
// that what the store lists stays what it has when served offline.
func (p *Proxy) dropFromList(ctx context.Context, key string, drop []string) {
	f, err := p.st.Open(ctx, key)
	if err != nil {
		return
	}
	info, _ := f.Stat()
	b := make([]byte, info.Size())
	_, err = f.ReadAt(b, 0)
	f.Close()
	if err != nil && info.Size() > 0 {
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
	p.saveMutable(ctx, key, []byte(out.String()))
	// Keep the list's age: it was not confirmed by an upstream just now.
	if d, ok := p.st.(interface{ Chtimes(string, time.Time) error }); ok {
		d.Chtimes(key, info.ModTime())
	}
}
