package cache

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/berth-dev/berth/modproxy/lease"
	"github.com/berth-dev/berth/modproxy/proto"
)

// The shared-eviction tests fill one bucket through two replicas with five
// module versions of about the same size, with a limit of three and a half of
// them: a pass removes the two least recently used, down to 90% of the limit.

type evictRig struct {
	*sharedRig
	max  int64
	vers []evictVersion // oldest first
}

type evictVersion struct {
	vp    string // version prefix
	files []leaseFile
	size  int64
}

func newEvictRig(t *testing.T, prefix string) *evictRig {
	t.Helper()
	rig := &evictRig{sharedRig: newSharedRig(t, leaseMods(prefix, 5))}
	fs := files(t, rig.built)
	var sizes []int64
	for i := range rig.built {
		v := evictVersion{vp: versionPrefix(fs[3*i].req.Key), files: fs[3*i : 3*i+3]}
		for _, f := range v.files {
			v.size += int64(len(f.want))
		}
		rig.vers = append(rig.vers, v)
		sizes = append(sizes, v.size)
	}
	if slices.Max(sizes) > slices.Min(sizes)*21/20 {
		t.Fatalf("the versions' sizes differ by more than 5%%: %v", sizes)
	}
	rig.max = sizes[0]*3 + sizes[0]/2
	return rig
}

// evictReplica starts a replica with the rig's size limit and waits for its
// index of the store.
func (rig *evictRig) evictReplica(t *testing.T) *replica {
	t.Helper()
	r := rig.replica(t, func(c *Config) { c.MaxStoreSize = rig.max })
	if err := r.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// fetch reads every file of the versions through r, then waits for the commits.
func (rig *evictRig) fetch(t *testing.T, r *replica, vers ...int) {
	t.Helper()
	for _, i := range vers {
		for _, f := range rig.vers[i].files {
			_, got := sharedGet(t, r, f.req)
			if string(got) != string(f.want) {
				t.Fatalf("%s: %d bytes, not the upstream's %d", f.req.Key, len(got), len(f.want))
			}
		}
		if err := r.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// fill has replica a fetch versions 0 and 1, and b 2, 3 and 4: neither's own
// count is over the limit; the bucket is.
func (rig *evictRig) fill(t *testing.T, a, b *replica) {
	t.Helper()
	for i := range rig.vers {
		// The module's list too, which eviction rewrites.
		sharedGet(t, a, sharedReq(t, "/"+rig.vers[i].files[0].req.Module+"/@v/list"))
	}
	rig.fetch(t, a, 0, 1)
	rig.fetch(t, b, 2, 3, 4)
}

// moduleBytes returns the bytes of module files in the bucket.
func (rig *evictRig) moduleBytes(t *testing.T) int64 {
	t.Helper()
	var n int64
	for k, size := range rig.objects(t) {
		if versionPrefix(k) != "" {
			n += size
		}
	}
	return n
}

// stored returns, for each version, how many of its three files the bucket holds.
func (rig *evictRig) stored(t *testing.T) []int {
	t.Helper()
	objs := rig.objects(t)
	out := make([]int, len(rig.vers))
	for i, v := range rig.vers {
		for _, f := range v.files {
			if _, ok := objs[f.req.Key]; ok {
				out[i]++
			}
		}
	}
	return out
}

func evictedVersions(r *replica) float64 { return testutil.ToFloat64(r.m.evicted) }

func passes(r *replica, result string) float64 {
	return testutil.ToFloat64(r.m.evictPasses.WithLabelValues(result))
}

// TestEvictSharedCountsEveryReplica: each replica's own count is under the
// limit while the bucket they share is over it; a pass walks the bucket,
// counts every replica's files, and removes the least recently used versions
// whole, with their lines of the stored lists.
func TestEvictSharedCountsEveryReplica(t *testing.T) {
	rig := newEvictRig(t, "count")
	a, b := rig.evictReplica(t), rig.evictReplica(t)
	rig.fill(t, a, b)
	if n := rig.moduleBytes(t); n <= rig.max {
		t.Fatalf("setup: %d bytes of module files in the bucket, want over the limit %d", n, rig.max)
	}
	if evictedVersions(a)+evictedVersions(b) != 0 {
		t.Fatalf("a replica evicted on its own count, which was under the limit")
	}

	if got := b.evictShared(context.Background()); got != passEvicted {
		t.Fatalf("pass on replica b: %q, want %q", got, passEvicted)
	}
	if got, want := rig.stored(t), []int{0, 0, 3, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("files of each version in the bucket (oldest first): %v, want %v", got, want)
	}
	if n := rig.moduleBytes(t); n > rig.max/10*9 {
		t.Errorf("%d bytes of module files left, over 90%% of the limit %d", n, rig.max)
	}
	for i, v := range rig.vers {
		lk, err := proto.ListKey(v.files[0].req.Module)
		if err != nil {
			t.Fatal(err)
		}
		list := string(rig.object(t, lk))
		if evicted := i < 2; strings.Contains(list, "v1.0.0") == evicted {
			t.Errorf("stored list of %s after eviction: %q", v.files[0].req.Module, list)
		}
	}
	if n := count(b.log, "evicted least recently used module versions"); n != 1 {
		t.Errorf("replica b: %d eviction lines, want 1", n)
	}
	if got := evictedVersions(b); got != 2 {
		t.Errorf("replica b evicted %v versions, want 2", got)
	}
	// The other replica's next pass finds the bucket under the limit.
	if got := a.evictShared(context.Background()); got != passUnderLimit {
		t.Errorf("pass on replica a after b's: %q, want %q", got, passUnderLimit)
	}
	if n := count(a.log, "evicted"); n != 0 {
		t.Errorf("replica a logged %d eviction lines after a pass that removed nothing", n)
	}
}

// TestEvictSharedOneReplicaAtATime: while another replica holds the eviction
// lease, a pass leaves the store alone; two replicas' passes at once remove
// what one pass would, not twice as much.
func TestEvictSharedOneReplicaAtATime(t *testing.T) {
	rig := newEvictRig(t, "once")
	a, b := rig.evictReplica(t), rig.evictReplica(t)
	rig.fill(t, a, b)

	// A third replica is evicting.
	other, err := lease.OpenRedis(rig.redis.URL(), lease.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	held, release, err := other.Acquire(context.Background(), evictLeaseKey)
	if err != nil || !held {
		t.Fatalf("taking the eviction lease: held %v, %v", held, err)
	}
	for name, r := range map[string]*replica{"a": a, "b": b} {
		if got := r.evictShared(context.Background()); got != passOtherReplica {
			t.Errorf("pass on replica %s while another holds the eviction lease: %q, want %q", name, got, passOtherReplica)
		}
	}
	if got, want := rig.stored(t), []int{3, 3, 3, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("files of each version after passes that had no lease: %v, want %v", got, want)
	}
	release()

	var wg sync.WaitGroup
	results := make([]string, 2)
	for i, r := range []*replica{a, b} {
		wg.Go(func() { results[i] = r.evictShared(context.Background()) })
	}
	wg.Wait()
	slices.Sort(results)
	if results[0] != passEvicted || (results[1] != passOtherReplica && results[1] != passUnderLimit) {
		t.Errorf("two passes at once: %q; want one %q and one %q or %q", results, passEvicted, passOtherReplica, passUnderLimit)
	}
	if got := evictedVersions(a) + evictedVersions(b); got != 2 {
		t.Errorf("versions evicted by the two passes: %v, want 2", got)
	}
	if got, want := rig.stored(t), []int{0, 0, 3, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("files of each version in the bucket (oldest first): %v, want %v", got, want)
	}
}

// TestEvictSharedKeepsWhatAFetchHolds: the least recently used version has
// its .info and .mod stored while another replica fetches its .zip; a pass
// skips it (the fetch holds the zip's lease) and removes the next ones, and
// the version is whole when the fetch ends.
func TestEvictSharedKeepsWhatAFetchHolds(t *testing.T) {
	rig := newEvictRig(t, "held")
	a, b := rig.evictReplica(t), rig.evictReplica(t)
	zip := rig.vers[0].files[2]
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	rig.up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/"+zip.req.UpstreamPath() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		return false
	})
	for _, f := range rig.vers[0].files[:2] { // .info and .mod
		sharedGet(t, a, f.req)
	}
	if err := a.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	rig.fetch(t, a, 1, 2)
	rig.fetch(t, b, 3, 4)
	zipDone := make(chan error, 1)
	go func() {
		_, err := b.ReadAll(context.Background(), zip.req)
		zipDone <- err
	}()
	// The fetch takes the zip's lease before it asks the upstream.
	waitFor(t, "replica b's fetch of the zip to reach the upstream", func() bool { return rig.up.Count("/"+zip.req.UpstreamPath()) == 1 })

	if got := a.evictShared(context.Background()); got != passEvicted {
		t.Fatalf("pass on replica a: %q, want %q", got, passEvicted)
	}
	if got, want := rig.stored(t), []int{2, 0, 3, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("files of each version in the bucket during the zip's fetch (oldest first): %v, want %v (the fetched version kept, the next one evicted)", got, want)
	}
	unblock()
	if err := <-zipDone; err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rig.stored(t)[0]; got != 3 {
		t.Errorf("the version fetched during eviction has %d of its 3 files in the bucket", got)
	}
}

// TestEvictSharedPeriodic: two replicas that each commit too little to go
// over the limit on their own count still keep the bucket under it: every
// evictCheckInterval one of them walks it.
func TestEvictSharedPeriodic(t *testing.T) {
	oldInterval, oldGap := evictCheckInterval, evictMinGap
	evictCheckInterval, evictMinGap = 100*time.Millisecond, time.Millisecond
	t.Cleanup(func() { evictCheckInterval, evictMinGap = oldInterval, oldGap })
	rig := newEvictRig(t, "tick")
	a, b := rig.evictReplica(t), rig.evictReplica(t)
	rig.fill(t, a, b)
	want := []int{0, 0, 3, 3, 3}
	// The pass counts itself once its removals are done: wait for both.
	waitFor(t, fmt.Sprintf("the bucket to hold the files %v and a pass to count itself", want), func() bool {
		return slices.Equal(rig.stored(t), want) && passes(a, passEvicted)+passes(b, passEvicted) >= 1
	})
	if n := rig.moduleBytes(t); n > rig.max {
		t.Errorf("%d bytes of module files in the bucket, over the limit %d", n, rig.max)
	}
}

// TestEvictSharedLeaseDown: with the lease backend down, a replica over its
// own count still evicts (on that count, as a replica alone does), and
// serving does not wait for it.
func TestEvictSharedLeaseDown(t *testing.T) {
	oldGap := evictMinGap
	evictMinGap = time.Millisecond
	t.Cleanup(func() { evictMinGap = oldGap })
	rig := newEvictRig(t, "down")
	a := rig.evictReplica(t)
	rig.redis.Stop()
	rig.fetch(t, a, 0, 1, 2, 3, 4)
	want := []int{0, 0, 3, 3, 3}
	waitFor(t, fmt.Sprintf("the bucket to hold the files %v", want), func() bool { return slices.Equal(rig.stored(t), want) })
	if n := passes(a, passLeaseDown); n < 1 {
		t.Errorf("passes with the lease backend down: %v", n)
	}
	if n := count(a.log, "lease backend unreachable"); n != 1 {
		t.Errorf("%d 'lease backend unreachable' lines, want 1", n)
	}
	if n := count(a.log, "scope=replica"); n < 1 {
		t.Errorf("no eviction line says it evicted from the replica's own count")
	}
}

// TestEvictSharedAllHeld: when every version's .zip lease is held by other
// replicas' fetches, a pass removes nothing and says so once, however many
// passes find it so; once the fetches end, a pass evicts.
func TestEvictSharedAllHeld(t *testing.T) {
	rig := newEvictRig(t, "busy")
	a, b := rig.evictReplica(t), rig.evictReplica(t)
	rig.fill(t, a, b)
	other, err := lease.OpenRedis(rig.redis.URL(), lease.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var releases []func()
	for _, v := range rig.vers {
		held, release, err := other.Acquire(context.Background(), v.files[2].req.Key)
		if err != nil || !held {
			t.Fatalf("taking the lease of %s: held %v, %v", v.files[2].req.Key, held, err)
		}
		releases = append(releases, release)
	}
	for range 2 {
		if got := a.evictShared(context.Background()); got != passAllBusy {
			t.Errorf("pass while every version is being fetched elsewhere: %q, want %q", got, passAllBusy)
		}
	}
	if n := count(a.log, "every module version in it is being fetched"); n != 1 {
		t.Errorf("%d lines saying every version is being fetched after two such passes, want 1", n)
	}
	if got, want := rig.stored(t), []int{3, 3, 3, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("files of each version: %v, want %v", got, want)
	}
	for _, release := range releases {
		release()
	}
	if got := a.evictShared(context.Background()); got != passEvicted {
		t.Errorf("pass once the fetches ended: %q, want %q", got, passEvicted)
	}
	if got, want := rig.stored(t), []int{0, 0, 3, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("files of each version in the bucket (oldest first): %v, want %v", got, want)
	}
}
