package cache

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/berth-dev/berth/internal/redistest"
	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy/lease"
	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store/s3"
	"github.com/berth-dev/berth/store/s3/s3test"
)

// The lease tests run two cores (two replicas) over one MinIO bucket, each
// with its own local cache and its own lease client of one real redis-server,
// against a counting upstream.

type replica struct {
	*Cache
	log *testmod.SyncBuffer
}

type leaseRig struct {
	up       *testmod.Upstream
	built    []testmod.Built
	redis    *redistest.Server
	minio    *s3test.Server
	bucket   string
	replicas []*replica
}

// leaseMods generates n module versions whose zips are large enough to be
// streamed through the store's writer, not verified in memory.
func leaseMods(prefix string, n int) []testmod.Module {
	rnd := rand.New(rand.NewPCG(uint64(n), 14))
	var mods []testmod.Module
	for i := range n {
		blob := make([]byte, 96<<10)
		for j := range blob {
			blob[j] = "0123456789abcdef"[rnd.IntN(16)]
		}
		mods = append(mods, testmod.Module{Path: fmt.Sprintf("example.test/%s%d", prefix, i), Version: "v1.0.0",
			Files: map[string]string{"a.go": "package a\n", "blob.txt": string(blob)}})
	}
	return mods
}

func newLeaseRig(t *testing.T, mods []testmod.Module, ttl time.Duration) *leaseRig {
	t.Helper()
	rs := redistest.Start(t)
	if _, err := s3test.Binary(s3test.MinIO); err != nil {
		t.Skip(err)
	}
	ms, err := s3test.Start(context.Background(), s3test.MinIO, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ms.Stop)
	mc, err := ms.Client()
	if err != nil {
		t.Fatal(err)
	}
	bucket := s3test.BucketName("lease")
	if err := mc.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	built, err := testmod.Build(mods)
	if err != nil {
		t.Fatal(err)
	}
	up, err := testmod.ServeBuilt(t.TempDir(), "sum.berth.test", built)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	// A slow upstream, so that the replicas' misses overlap.
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/@v/") {
			time.Sleep(50 * time.Millisecond)
		}
		return false
	})
	rig := &leaseRig{up: up, built: built, redis: rs, minio: ms, bucket: bucket}
	for range 2 {
		rig.replicas = append(rig.replicas, rig.newReplica(t, ttl))
	}
	return rig
}

func (rig *leaseRig) newReplica(t *testing.T, ttl time.Duration) *replica {
	t.Helper()
	st, err := s3.New(context.Background(), s3.Options{Bucket: rig.bucket, Prefix: "berth", Endpoint: rig.minio.Endpoint,
		Creds: credentials.NewStaticV4(rig.minio.Access, rig.minio.Secret, ""), CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, err := lease.OpenRedis(rig.redis.URL(), lease.RedisOptions{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	chain, err := source.Parse(rig.up.URL())
	if err != nil {
		t.Fatal(err)
	}
	buf := &testmod.SyncBuffer{}
	c, err := New(Config{Store: st, Source: &source.Fetcher{Chain: chain, Logger: slog.New(slog.NewTextHandler(buf, nil))}, SumDBKey: rig.up.GOSUMDB(), Lease: l,
		Logger: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("replica log:\n%s", buf.String())
		}
	})
	return &replica{Cache: c, log: buf}
}

type leaseFile struct {
	req  proto.Request
	want []byte
}

func files(t *testing.T, built []testmod.Built) []leaseFile {
	t.Helper()
	var out []leaseFile
	for _, b := range built {
		for _, f := range []struct {
			kind proto.Kind
			body []byte
		}{{proto.KindInfo, b.Info}, {proto.KindMod, b.Mod}, {proto.KindZip, b.Zip}} {
			r, err := proto.File(f.kind, b.Path, b.Version.Version)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, leaseFile{r, f.body})
		}
	}
	return out
}

// download runs 8 clients at once, alternating between the replicas, each
// reading every file (in its own order) and checking its bytes.
func (rig *leaseRig) download(t *testing.T, fs []leaseFile) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range 8 {
		c := rig.replicas[i%len(rig.replicas)]
		wg.Go(func() {
			for j := range fs {
				f := fs[(i+j)%len(fs)]
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				got, err := c.ReadAll(ctx, f.req)
				cancel()
				if err != nil {
					t.Errorf("client %d: %s: %v", i, f.req.Key, err)
					continue
				}
				if !bytes.Equal(got, f.want) {
					t.Errorf("client %d: %s: %d bytes, not the upstream's %d", i, f.req.Key, len(got), len(f.want))
				}
			}
		})
	}
	wg.Wait()
}

// fetchedOnce checks that the upstream saw each file once in all.
func (rig *leaseRig) fetchedOnce(t *testing.T, fs []leaseFile) {
	t.Helper()
	for _, f := range fs {
		if n := rig.up.Count("/" + f.req.UpstreamPath()); n != 1 {
			t.Errorf("upstream fetches of %s across the replicas: %d, want 1", f.req.UpstreamPath(), n)
		}
	}
}

// TestLeaseOneFetchAcrossReplicas: 8 clients on two replicas sharing a bucket
// and a lease backend: every file comes from the upstream once in all.
func TestLeaseOneFetchAcrossReplicas(t *testing.T) {
	rig := newLeaseRig(t, leaseMods("once", 4), 0)
	fs := files(t, rig.built)
	rig.download(t, fs)
	rig.fetchedOnce(t, fs)
	var waits float64
	for _, r := range rig.replicas {
		waits += testutil.ToFloat64(r.m.leaseWaits)
		if n := count(r.log, "lease backend unreachable"); n != 0 {
			t.Errorf("a replica said the lease backend was unreachable %d times", n)
		}
	}
	if waits == 0 {
		t.Errorf("no fetch waited on another replica's lease: the test did not exercise the lease")
	}
	// Warm: from the store, no upstream request.
	rig.download(t, fs)
	rig.fetchedOnce(t, fs)
}

// TestLeaseTakeoverDeadHolder: a lease left by a replica that died mid-fetch
// (nobody renews it) is taken over when it expires, and the fetch completes.
func TestLeaseTakeoverDeadHolder(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	rig := newLeaseRig(t, leaseMods("dead", 1), ttl)
	fs := files(t, rig.built)
	zip := fs[2]
	rc := redis.NewClient(&redis.Options{Addr: rig.redis.Addr})
	defer rc.Close()
	if err := rc.Set(context.Background(), "berth:lease:"+zip.req.Key, "a-replica-that-died", ttl).Err(); err != nil {
		t.Fatal(err)
	}
	b := rig.replicas[1]
	start := time.Now()
	got, err := b.ReadAll(context.Background(), zip.req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, zip.want) {
		t.Fatalf("%s: %d bytes, not the upstream's %d", zip.req.Key, len(got), len(zip.want))
	}
	if d := time.Since(start); d < ttl/2 {
		t.Errorf("answered after %v: the dead holder's lease (%v) was not waited for", d, ttl)
	}
	if n := testutil.ToFloat64(b.m.leaseTakeovers); n != 1 {
		t.Errorf("takeovers: %v, want 1", n)
	}
	if n := count(b.log, "lease taken over"); n != 1 {
		t.Errorf("%d 'lease taken over' lines, want 1", n)
	}
	rig.fetchedOnce(t, fs[2:])
}

// TestLeaseTakeoverCancelledHolder: the replica fetching a file stops (its
// core closes) mid-body while the other waits on its lease: the other takes
// over, completes, and nothing partial is in the store.
func TestLeaseTakeoverCancelledHolder(t *testing.T) {
	rig := newLeaseRig(t, leaseMods("cut", 1), 0)
	fs := files(t, rig.built)
	zip := fs[2]
	var first sync.Once
	cut := make(chan struct{})
	rig.up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/"+zip.req.UpstreamPath() {
			return false
		}
		isFirst := false
		first.Do(func() { isFirst = true })
		if !isFirst {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(zip.want)))
		w.Write(zip.want[:len(zip.want)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(cut)
		return true
	})
	a, b := rig.replicas[0], rig.replicas[1]
	aDone := make(chan error, 1)
	go func() {
		_, err := a.ReadAll(context.Background(), zip.req)
		aDone <- err
	}()
	waitFor(t, "the first replica's fetch to start", func() bool { return rig.up.Count("/"+zip.req.UpstreamPath()) == 1 })
	bDone := make(chan []byte, 1)
	go func() {
		got, err := b.ReadAll(context.Background(), zip.req)
		if err != nil {
			t.Errorf("the replica that waited on the lease failed: %v", err)
		}
		bDone <- got
	}()
	waitFor(t, "the second replica to wait on the lease", func() bool { return testutil.ToFloat64(b.m.leaseWaits) == 1 })
	a.Close() // the holder stops mid-fetch
	<-cut
	if err := <-aDone; err == nil {
		t.Errorf("the stopped replica's client got a whole body from a cut fetch")
	}
	if got := <-bDone; !bytes.Equal(got, zip.want) {
		t.Fatalf("%s from the replica that took over: %d bytes, not the upstream's %d", zip.req.Key, len(got), len(zip.want))
	}
	if n := testutil.ToFloat64(b.m.leaseTakeovers); n != 1 {
		t.Errorf("takeovers: %v, want 1", n)
	}
	if n := rig.up.Count("/" + zip.req.UpstreamPath()); n != 2 {
		t.Errorf("upstream fetches of the zip: %d, want 2 (the cut one and the takeover)", n)
	}
	// What is in the bucket is the whole file, as a third replica sees it.
	c := rig.newReplica(t, 0)
	ct, err := c.Get(context.Background(), zip.req)
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Close()
	got, err := ct.ReadAll(context.Background())
	if err != nil || !ct.Hit || !bytes.Equal(got, zip.want) {
		t.Fatalf("a third replica reads %d bytes (hit %v, err %v), want the whole %d from the store", len(got), ct.Hit, err, len(zip.want))
	}
}

// TestLeaseBackendDown: with Redis stopped both replicas keep serving every
// file correctly and each says so in one WARN line; once Redis is back,
// leases work again and files are fetched once in all.
func TestLeaseBackendDown(t *testing.T) {
	old := leaseRetry
	leaseRetry = 300 * time.Millisecond
	t.Cleanup(func() { leaseRetry = old })
	rig := newLeaseRig(t, append(leaseMods("down", 3), leaseMods("back", 3)...), 0)
	all := files(t, rig.built)
	during, after := all[:9], all[9:]

	rig.redis.Stop()
	rig.download(t, during)
	for i, r := range rig.replicas {
		if n := count(r.log, "lease backend unreachable"); n != 1 {
			t.Errorf("replica %d: %d 'lease backend unreachable' lines during one outage, want 1", i, n)
		}
		if ok, _, err := r.LeaseStatus(); ok || err == nil {
			t.Errorf("replica %d: LeaseStatus ok %v, err %v during the outage", i, ok, err)
		}
		if v := testutil.ToFloat64(r.m.leaseUp); v != 0 {
			t.Errorf("replica %d: berth_proxy_lease_backend_up %v during the outage", i, v)
		}
	}
	for _, f := range during {
		if n := rig.up.Count("/" + f.req.UpstreamPath()); n < 1 || n > 2 {
			t.Errorf("upstream fetches of %s with the lease down: %d, want 1 or 2 (once per replica at most)", f.req.UpstreamPath(), n)
		}
	}

	rig.redis.Restart()
	// Warm replicas learn it too: the core asks the backend again in the
	// background while it is down.
	for i, r := range rig.replicas {
		waitFor(t, fmt.Sprintf("replica %d to see the lease backend back", i), func() bool { ok, _, _ := r.LeaseStatus(); return ok })
	}
	for i, r := range rig.replicas {
		if ok, _, err := r.LeaseStatus(); !ok {
			t.Errorf("replica %d: LeaseStatus not ok after Redis is back: %v", i, err)
		}
		if n := count(r.log, "lease backend answers again"); n != 1 {
			t.Errorf("replica %d: %d 'answers again' lines, want 1", i, n)
		}
		if v := testutil.ToFloat64(r.m.leaseUp); v != 1 {
			t.Errorf("replica %d: berth_proxy_lease_backend_up %v after it is back", i, v)
		}
	}
	rig.download(t, after)
	rig.fetchedOnce(t, after)
}

func count(b *testmod.SyncBuffer, s string) int { return strings.Count(b.String(), s) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
