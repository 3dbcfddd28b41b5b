package cache

import (
	"sync"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

const (
	prefetchWorkers = 8    // lookups ahead of clients at once
	prefetchQueue   = 4096 // more waiting than this are dropped
	// defaultPrefetchMinRTT is the average lookup time from which looking up
	// requirements ahead pays: measured with a 40 ms upstream it saved 2.5 s
	// of a 19 s cold graph download; with a 4 ms one it cost 0.75 s of CPU.
	defaultPrefetchMinRTT = 15 * time.Millisecond
)

// lookahead reads, in the background, the checksum-database lookup answers
// of the modules a fetched go.mod requires, before the go command asks for
// them. It reads the answers only: their proofs (tiles) are read when a
// module is fetched, while its body downloads, so a guess never downloaded
// (a test dependency of a dependency, a version below the one selected) costs
// one upstream request, not also the tiles of a proof (1.6 a record on
// bench/proxy/graph).
type lookahead struct {
	queue chan module.Version

	mu        sync.Mutex             // guards newest, required and lookupRTT
	newest    map[string]string      // highest version of each module path looked ahead
	required  map[module.Version]int // how many fetched go.mods required each version
	lookupRTT time.Duration          // moving average of source lookup times
}

func (c *Cache) startLookahead() {
	c.ahead = &lookahead{queue: make(chan module.Version, prefetchQueue)}
	for range prefetchWorkers {
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			for {
				select {
				case mv := <-c.ahead.queue:
					c.verifier.Preload(c.ctx, mv.Path, mv.Version)
				case <-c.ctx.Done():
					return
				}
			}
		}()
	}
}

// noteLookupTime adds one source lookup time to the moving average.
func (c *Cache) noteLookupTime(d time.Duration) {
	a := c.ahead
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lookupRTT == 0 {
		a.lookupRTT = d
		return
	}
	a.lookupRTT += (d - a.lookupRTT) / 8
}

// worthLookingUp records that a fetched go.mod requires mv and reports
// whether to read its lookup ahead. Minimal version selection keeps one
// version of a path, the highest required, and the go command asks only for
// that one's go.mod in a pruned graph; a dependency graph names several
// versions of popular paths (golang.org/x/net at v0.24.0, v0.51.0, v0.59.0
// and v0.60.0 in bench/proxy/graph). So: the first version of a path
// required is looked up at once; a higher one once a second go.mod requires
// it too; a lower one never.
func (a *lookahead) worthLookingUp(mv module.Version) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.newest == nil || len(a.newest) >= 100000 || len(a.required) >= 100000 {
		a.newest, a.required = map[string]string{}, map[module.Version]int{}
	}
	a.required[mv]++
	cur, ok := a.newest[mv.Path]
	if ok && (semver.Compare(mv.Version, cur) <= 0 || a.required[mv] < 2) {
		return false
	}
	a.newest[mv.Path] = mv.Version
	return true
}

// lookAhead queues the lookups of the modules a verified go.mod requires,
// and returns how many it queued. The queue is bounded; when it is full the
// rest are skipped (their lookups then happen when they are fetched, as
// without looking ahead).
func (c *Cache) lookAhead(gomod []byte) int {
	a := c.ahead
	if a == nil {
		return 0
	}
	a.mu.Lock()
	rtt := a.lookupRTT
	a.mu.Unlock()
	if rtt < c.cfg.PrefetchMinRTT {
		// A near upstream answers a lookup about as fast as the cache could
		// look it up ahead; lookups of versions never asked for would then
		// cost CPU and gain nothing.
		return 0
	}
	f, err := modfile.ParseLax("go.mod", gomod, nil)
	if err != nil {
		return 0
	}
	n := 0
	for _, r := range f.Require {
		if !c.Checked(r.Mod.Path) || !a.worthLookingUp(r.Mod) {
			continue
		}
		select {
		case a.queue <- r.Mod:
			n++
		default:
			return n
		}
	}
	return n
}
