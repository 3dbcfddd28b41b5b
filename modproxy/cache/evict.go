package cache

import (
	"context"
	"maps"
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
//
// One replica alone counts the store once (a walk at start) and then its own
// commits, and evicts as soon as a commit takes it over the limit.
//
// Replicas sharing a store (Config.Lease set) cannot trust their own count:
// the others commit too. A pass (evictShared) is run by one replica at a time,
// the one holding the lease evictLeaseKey: it walks the store again, so that
// its total includes every replica's files, and removes each victim while
// holding the leases of the version's files, the ones a fetch takes, so that
// a version another replica is fetching a file of stays. A replica runs a pass
// when its own count goes over the limit and every evictCheckInterval, so
// that one that commits little still notices a bucket the others filled.
// Use is known only where it happened: the evicting replica orders by its own
// hits, and by modification time the versions it never served, so a version
// hot on another replica only counts from its commit. That replica may go on
// serving it from its local disk cache (store/s3 serves immutable keys from
// it), which is still the right answer, and fetches it again once it is gone
// from there too.
type evictor struct {
	max int64

	mu      sync.Mutex
	total   int64
	entries map[string]*evictEntry // version prefix "<esc mod>/@v/<esc ver>"
	ready   bool                   // the initial walk is done
	walking bool                   // a shared pass is walking the store
	during  []evictFile            // commits while walking, which the walk may miss

	kick  chan struct{} // Config.Lease: a commit took the count over the limit
	stuck bool          // over the limit with nothing removable: said once
}

type evictFile struct {
	key  string
	size int64
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

// evictLeaseKey is the lease of the replica evicting from a shared store (no
// store key starts with a dot).
const evictLeaseKey = ".berth-evict"

// A replica sharing its store runs an eviction pass every evictCheckInterval,
// and at most one every evictMinGap: commits over the limit in between are
// handled by one pass after it. Each pass walks the whole store (for S3, a
// listing and a HEAD per object).
var (
	evictCheckInterval = 5 * time.Minute
	evictMinGap        = 10 * time.Second
)

// evictVersionTimeout bounds the removal of one version's files: a pass that
// started on a version finishes it even when the cache closes, so that
// versions go whole.
const evictVersionTimeout = 30 * time.Second

// startEvictor indexes the store in the background and enables eviction.
func (c *Cache) startEvictor() {
	if c.cfg.MaxStoreSize <= 0 {
		return
	}
	if _, ok := c.st.(store.Walker); !ok {
		c.log.Warn("this store cannot list its keys; --max-store-size is not applied")
		return
	}
	c.evict = &evictor{max: c.cfg.MaxStoreSize, entries: map[string]*evictEntry{}, kick: make(chan struct{}, 1)}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		files, err := c.walkForEviction(c.ctx)
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
		c.m.storeBytes.Set(float64(total))
		c.log.Info("store indexed for eviction", "module_versions", len(c.evict.entries), "bytes", total, "max", c.cfg.MaxStoreSize)
		if c.cfg.Lease == nil {
			c.evictIfNeeded(c.ctx, "")
			return
		}
		if c.ctx.Err() != nil {
			return
		}
		// Added before this goroutine's Done, so before Close waits for bg.
		c.bg.Add(1)
		go c.evictLoop()
		if total > c.evict.max {
			c.evict.kickPass()
		}
	}()
}

type walkedFile struct {
	key  string
	size int64
	mod  time.Time
}

// walkForEviction lists the store's module files.
func (c *Cache) walkForEviction(ctx context.Context) ([]walkedFile, error) {
	var files []walkedFile
	err := store.Walk(ctx, c.st, "", func(key string, info store.Info) error {
		if versionPrefix(key) != "" {
			files = append(files, walkedFile{key, info.Size, info.ModTime})
		}
		return nil
	})
	return files, err
}

// kickPass asks the eviction loop for a pass, without waiting.
func (e *evictor) kickPass() {
	select {
	case e.kick <- struct{}{}:
	default: // one is pending already
	}
}

// committed records a new file and evicts if the store is over its limit.
func (c *Cache) committed(ctx context.Context, key string, size int64) {
	if c.evict == nil {
		return
	}
	e := c.evict
	e.mu.Lock()
	e.add(key, size, time.Now())
	if e.walking {
		e.during = append(e.during, evictFile{key, size})
	}
	over := e.ready && e.total > e.max
	total := e.total
	e.mu.Unlock()
	c.m.storeBytes.Set(float64(total))
	if !over {
		return
	}
	if c.cfg.Lease != nil {
		// A pass walks the shared store: not on the fetch's path.
		e.kickPass()
		return
	}
	c.evictIfNeeded(ctx, "")
}

// evictLoop runs the passes of a replica sharing its store, until Close.
func (c *Cache) evictLoop() {
	defer c.bg.Done()
	tick := time.NewTicker(evictCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.evict.kick:
		case <-tick.C:
		}
		c.evictShared(c.ctx)
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(evictMinGap):
		}
	}
}

// The results of an eviction pass of a replica sharing its store, as the
// berth_proxy_eviction_passes_total metric counts them.
const (
	passEvicted      = "evicted"       // removed at least one version
	passUnderLimit   = "under_limit"   // the walk found the store under its limit
	passAllBusy      = "all_busy"      // over the limit, but every candidate was held by a fetch
	passOtherReplica = "other_replica" // another replica held the eviction lease
	passLeaseDown    = "lease_down"    // the lease backend failed: evicted from this replica's count
	passWalkFailed   = "walk_failed"   // the store could not be listed
)

// evictShared is one eviction pass of a replica sharing its store with
// others (Config.Lease set), and returns its result (one of pass*, or "" when
// the cache closed).
//
// While the lease backend is down a pass evicts from this replica's own count,
// as a replica alone does, rather than not at all: an outage can last hours,
// and a shared bucket that grows past its limit fills a disk or a bill, while
// what per-replica eviction risks is only work: two replicas may each remove a
// share, and a version another replica is fetching may lose its .info or .mod;
// anything removed is fetched again when asked for, and the store's
// create-only commits keep every answer whole. The backend is asked with a
// short timeout (the lease's own), and passes run off the fetch path, so an
// outage never holds up serving.
func (c *Cache) evictShared(ctx context.Context) string {
	e := c.evict
	result := func(r string) string {
		c.m.evictPasses.WithLabelValues(r).Inc()
		return r
	}
	perReplica := func() string {
		c.log.Debug("eviction: the lease backend is down; evicting from this replica's own count")
		c.evictIfNeeded(ctx, "replica")
		return result(passLeaseDown)
	}
	if c.skipLease() {
		return perReplica()
	}
	held, release, err := c.cfg.Lease.Acquire(ctx, evictLeaseKey)
	switch {
	case err != nil && ctx.Err() != nil:
		return ""
	case err != nil:
		c.leaseFailed(err)
		return perReplica()
	}
	c.leaseAnswered()
	if !held {
		c.log.Debug("eviction: another replica is evicting; leaving it to it")
		return result(passOtherReplica)
	}
	defer release()

	e.mu.Lock()
	e.walking, e.during = true, nil
	e.mu.Unlock()
	files, err := c.walkForEviction(ctx)
	e.mu.Lock()
	during := e.during
	e.walking, e.during = false, nil
	e.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			return ""
		}
		c.log.Warn("eviction: cannot list the store, so --max-store-size is not applied this time; check that berth's credentials may list the bucket (eviction tries again later)",
			"err", err, "next_check", evictCheckInterval.String())
		return result(passWalkFailed)
	}

	// The walk is the store as all replicas made it; what this replica knows
	// of use (its own hits and commits) is kept where it is newer than the
	// files' modification times, which are all there is for the others'.
	fresh := &evictor{entries: map[string]*evictEntry{}}
	for _, f := range files {
		fresh.add(f.key, f.size, f.mod)
	}
	now := time.Now()
	for _, f := range during {
		fresh.add(f.key, f.size, now)
	}
	e.mu.Lock()
	for vp, ent := range fresh.entries {
		if old := e.entries[vp]; old != nil && old.used.After(ent.used) {
			ent.used = old.used
		}
	}
	e.entries, e.total = fresh.entries, fresh.total
	total := e.total
	if total <= e.max {
		e.stuck = false
		e.mu.Unlock()
		c.m.storeBytes.Set(float64(total))
		return result(passUnderLimit)
	}
	cands := e.candidates()
	e.mu.Unlock()

	target := e.max / 10 * 9
	var victims []evictCand
	var freed int64
	heldElsewhere := false // some candidate was skipped for another replica's fetch
	leaseLost := false
	for _, cd := range cands {
		if total <= target || ctx.Err() != nil {
			break
		}
		if c.versionBusy(cd) {
			continue
		}
		releaseFiles, ok, err := c.holdVersion(ctx, cd.vp)
		if err != nil {
			if ctx.Err() == nil {
				c.leaseFailed(err)
				leaseLost = true
			}
			// Without the backend, another replica's fetch cannot be told
			// apart: stop; the next pass decides again.
			break
		}
		if !ok {
			heldElsewhere = true
			continue
		}
		c.removeVersion(ctx, cd)
		releaseFiles()
		victims = append(victims, cd)
		total -= cd.size
		freed += cd.size
		e.mu.Lock()
		if ent := e.entries[cd.vp]; ent != nil {
			e.total -= ent.size
			delete(e.entries, cd.vp)
		}
		e.mu.Unlock()
	}
	c.m.storeBytes.Set(float64(total))
	switch {
	case len(victims) == 0 && ctx.Err() != nil:
		return ""
	case len(victims) == 0 && leaseLost:
		return result(passLeaseDown) // leaseFailed said it
	case len(victims) == 0:
		e.mu.Lock()
		first := !e.stuck
		e.stuck = true
		e.mu.Unlock()
		if first {
			c.log.Warn("the store is over --max-store-size but every module version in it is being fetched; eviction tries again at its next check",
				"store_bytes", total, "max", e.max, "fetched_by_another_replica", heldElsewhere, "next_check", evictCheckInterval.String())
		}
		return result(passAllBusy)
	}
	e.mu.Lock()
	e.stuck = false
	e.mu.Unlock()
	c.dropEvicted(ctx, victims)
	c.m.evicted.Add(float64(len(victims)))
	c.log.Info("evicted least recently used module versions", "versions", len(victims), "bytes", freed, "store_bytes", total, "max", e.max, "scope", "shared")
	return result(passEvicted)
}

// evictCand is a version eviction may remove: its files as they were when
// chosen.
type evictCand struct {
	vp    string
	files map[string]int64
	size  int64
	used  time.Time
}

// candidates returns every version, least recently used first, with a copy
// of its files. e.mu is held.
func (e *evictor) candidates() []evictCand {
	cands := make([]evictCand, 0, len(e.entries))
	for vp, ent := range e.entries {
		cands = append(cands, evictCand{vp: vp, files: maps.Clone(ent.files), size: ent.size, used: ent.used})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].used.Before(cands[j].used) })
	return cands
}

// versionFiles are the keys of the files of version prefix vp, stored or not:
// a fetch of a missing one is what another replica may be running.
func versionFiles(vp string) []string {
	return []string{vp + ".info", vp + ".mod", vp + ".zip"}
}

// versionBusy reports that this replica is fetching (or committing) a file
// of cd.
func (c *Cache) versionBusy(cd evictCand) bool {
	for _, k := range versionFiles(cd.vp) {
		if c.busy(k) {
			return true
		}
	}
	for k := range cd.files {
		if c.busy(k) {
			return true
		}
	}
	return false
}

// holdVersion takes the leases a fetch takes (holdLease) of every file of
// version prefix vp, so that no replica starts fetching one while eviction
// removes the others. ok is false, with nothing held, when another replica
// holds one: it is fetching a file of this version. The caller calls release
// when the files are removed.
func (c *Cache) holdVersion(ctx context.Context, vp string) (release func(), ok bool, err error) {
	var rels []func()
	release = func() {
		for _, rel := range rels {
			rel()
		}
	}
	for _, k := range versionFiles(vp) {
		held, rel, err := c.cfg.Lease.Acquire(ctx, k)
		if err != nil {
			release()
			return nil, false, err
		}
		if !held {
			release()
			return nil, false, nil
		}
		rels = append(rels, rel)
	}
	return release, true, nil
}

// removeVersion removes the files of cd, all of them even if ctx ends
// meanwhile, so that a version goes whole: the three of them, stored when the
// pass walked the store or not, since another replica may have committed one
// since.
func (c *Cache) removeVersion(ctx context.Context, cd evictCand) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), evictVersionTimeout)
	defer cancel()
	for _, k := range versionFiles(cd.vp) {
		if c.cfg.Removed != nil {
			c.cfg.Removed(k)
		}
		if err := c.st.Remove(rctx, k); err != nil {
			c.log.Warn("eviction: cannot remove a file", "key", k, "err", err)
		}
	}
}

// dropEvicted drops the evicted versions from their modules' stored lists.
func (c *Cache) dropEvicted(ctx context.Context, victims []evictCand) {
	lists := map[string][]string{} // list key -> versions to drop
	for _, v := range victims {
		if _, lk, ver, ok := proto.VersionOf(versionFiles(v.vp)[0]); ok {
			lists[lk] = append(lists[lk], ver)
		}
	}
	for lk, drop := range lists {
		c.dropFromList(ctx, lk, drop)
	}
}

// evictIfNeeded removes least recently used module versions until the store,
// as this replica counts it, is at 90% of its limit. Versions being fetched
// here are left alone. scope, if set, is said in the log line.
func (c *Cache) evictIfNeeded(ctx context.Context, scope string) {
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
	c.m.storeBytes.Set(float64(total))

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
		attrs := []any{"versions", len(victims), "bytes", freed, "store_bytes", total, "max", e.max}
		if scope != "" {
			attrs = append(attrs, "scope", scope)
		}
		c.log.Info("evicted least recently used module versions", attrs...)
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
