package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/berth-dev/berth/internal/redistest"
	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy/lease"
	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store/s3"
	"github.com/berth-dev/berth/store/s3/s3test"
)

// The replica tests run cores built each with its own Config over one MinIO
// bucket and one redis-server, against a counting upstream, and look at the
// bucket itself with their own client.

type sharedRig struct {
	up     *testmod.Upstream
	built  []testmod.Built
	redis  *redistest.Server
	minio  *s3test.Server
	mc     *minio.Client
	bucket string
}

const rigPrefix = "berth" // the stores' key prefix in the bucket

func newSharedRig(t *testing.T, mods []testmod.Module) *sharedRig {
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
	bucket := s3test.BucketName("replicas")
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
	return &sharedRig{up: up, built: built, redis: rs, minio: ms, mc: mc, bucket: bucket}
}

// replica starts a core over the rig's bucket with its own local cache and
// lease client; edit, if set, changes its Config.
func (rig *sharedRig) replica(t *testing.T, edit func(*Config)) *replica {
	t.Helper()
	st, err := s3.New(context.Background(), s3.Options{Bucket: rig.bucket, Prefix: rigPrefix, Endpoint: rig.minio.Endpoint,
		Creds: credentials.NewStaticV4(rig.minio.Access, rig.minio.Secret, ""), CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, err := lease.OpenRedis(rig.redis.URL(), lease.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	chain, err := source.Parse(rig.up.URL())
	if err != nil {
		t.Fatal(err)
	}
	buf := &testmod.SyncBuffer{}
	cfg := Config{Store: st, Source: &source.Fetcher{Chain: chain, Logger: slog.New(slog.NewTextHandler(buf, nil))},
		SumDBKey: rig.up.GOSUMDB(), Lease: l,
		Logger: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
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

// objects returns the keys in the bucket (without the stores' prefix) and
// their sizes, as the bucket itself lists them.
func (rig *sharedRig) objects(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for oi := range rig.mc.ListObjects(context.Background(), rig.bucket, minio.ListObjectsOptions{Prefix: rigPrefix + "/", Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		out[strings.TrimPrefix(oi.Key, rigPrefix+"/")] = oi.Size
	}
	return out
}

// object returns the content of key in the bucket.
func (rig *sharedRig) object(t *testing.T, key string) []byte {
	t.Helper()
	o, err := rig.mc.GetObject(context.Background(), rig.bucket, rigPrefix+"/"+key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return b
}

// failMutable makes the upstream answer 502 to lists and @latest while on is set.
func (rig *sharedRig) failMutable(on *atomic.Bool) {
	rig.up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if on.Load() && (strings.HasSuffix(r.URL.Path, "/@v/list") || strings.HasSuffix(r.URL.Path, "/@latest")) {
			http.Error(w, "upstream down for the test", http.StatusBadGateway)
			return true
		}
		return false
	})
}

func sharedReq(t *testing.T, path string) proto.Request {
	t.Helper()
	r, err := proto.ParsePath(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sharedGet(t *testing.T, c *replica, r proto.Request) (*Content, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ct, err := c.Get(ctx, r)
	if err != nil {
		t.Fatalf("%s: %v", r.UpstreamPath(), err)
	}
	defer ct.Close()
	b, err := ct.ReadAll(ctx)
	if err != nil {
		t.Fatalf("%s: %v", r.UpstreamPath(), err)
	}
	return ct, b
}

// TestListSharedAcrossReplicas: a version list one replica fetched is served
// by another from the shared store within ListTTL, without a request to the
// upstream; past ListTTL, with every upstream failing, the other replica
// serves that stored list as stale. @latest, cached per replica, falls back
// to the newest version of the stored list whose .info is stored.
func TestListSharedAcrossReplicas(t *testing.T) {
	rig := newSharedRig(t, testmod.BaseModules())
	var down atomic.Bool
	rig.failMutable(&down)
	a := rig.replica(t, func(c *Config) { c.ListTTL = time.Hour })
	b := rig.replica(t, func(c *Config) { c.ListTTL = time.Hour })
	// The same replica as b, an hour later: past ListTTL.
	const ttl = 100 * time.Millisecond
	late := rig.replica(t, func(c *Config) { c.ListTTL = ttl })

	list := sharedReq(t, "/example.test/lib/@v/list")
	listPath := "/" + list.UpstreamPath()
	ct, want := sharedGet(t, a, list)
	if ct.Hit || string(want) != "v1.0.0\nv1.1.0\n" {
		t.Fatalf("first list from replica a: hit %v, %q", ct.Hit, want)
	}
	if n := rig.up.Count(listPath); n != 1 {
		t.Fatalf("upstream list requests after replica a's: %d, want 1", n)
	}
	ct, got := sharedGet(t, b, list)
	if !ct.Hit || ct.Stale || !bytes.Equal(got, want) {
		t.Errorf("replica b within ListTTL: hit %v, stale %v, %q; want a hit of %q", ct.Hit, ct.Stale, got, want)
	}
	if n := rig.up.Count(listPath); n != 1 {
		t.Errorf("upstream list requests after replica b's: %d, want 1 (b serves a's from the store)", n)
	}

	// Past ListTTL of the stored list, as its modification time says.
	info, err := a.Store().Stat(context.Background(), list.Key)
	if err != nil {
		t.Fatal(err)
	}
	for time.Since(info.ModTime) <= ttl {
		time.Sleep(time.Until(info.ModTime.Add(ttl + time.Millisecond)))
	}
	down.Store(true)
	ct, got = sharedGet(t, late, list)
	if !ct.Stale || !bytes.Equal(got, want) || ct.Age < ttl {
		t.Errorf("replica past ListTTL with the upstream failing: stale %v, age %v, %q; want a's list %q, stale, older than %v", ct.Stale, ct.Age, got, want, ttl)
	}
	if n := rig.up.Count(listPath); n < 2 {
		t.Errorf("upstream list requests: %d; past ListTTL the replica did not ask the upstream", n)
	}
	if n := count(late.log, "serving a stale version list"); n != 1 {
		t.Errorf("%d 'serving a stale version list' lines, want 1", n)
	}

	// @latest: replica a fetched the .info of v1.1.0 (into the store); the
	// late replica has no @latest of its own.
	down.Store(false)
	latest := sharedReq(t, "/example.test/lib/@latest")
	infoReq := sharedReq(t, "/example.test/lib/@v/v1.1.0.info")
	_, wantInfo := sharedGet(t, a, infoReq)
	if err := a.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	ct, got = sharedGet(t, late, latest)
	if !ct.Stale || !bytes.Equal(got, wantInfo) {
		t.Errorf("@latest with the upstream failing and no copy of its own: stale %v, %q; want the stored .info of v1.1.0 %q", ct.Stale, got, wantInfo)
	}
	if n := count(late.log, "serving a stale @latest"); n != 1 {
		t.Errorf("%d 'serving a stale @latest' lines, want 1", n)
	}

	// A stored list whose versions have no stored .info gives no @latest:
	// the replica does not make one up.
	down.Store(false)
	sharedGet(t, a, sharedReq(t, "/example.test/lib/v2/@v/list"))
	down.Store(true)
	_, err = late.Get(context.Background(), sharedReq(t, "/example.test/lib/v2/@latest"))
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("@latest of a module with a stored list but no stored .info, upstream failing: %v, want not found", err)
	}
}

// TestSumDBSharedAcrossReplicas: the checksum-database lookups and tiles one
// replica fetched to verify module files are served to another replica's
// clients from the shared store: the upstream sees no request for them.
func TestSumDBSharedAcrossReplicas(t *testing.T) {
	rig := newSharedRig(t, testmod.BaseModules())
	a := rig.replica(t, nil)
	b := rig.replica(t, nil)
	for _, bt := range rig.built {
		for _, kind := range []proto.Kind{proto.KindMod, proto.KindZip} {
			r, err := proto.File(kind, bt.Path, bt.Version.Version)
			if err != nil {
				t.Fatal(err)
			}
			sharedGet(t, a, r)
		}
	}
	if err := a.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	db := rig.up.SumDBName
	prefix := "sumdb/" + db + "/"
	var paths []string
	lookups, tiles := 0, 0
	for key := range rig.objects(t) {
		p, ok := strings.CutPrefix(key, prefix)
		switch {
		case !ok:
			continue
		case strings.HasPrefix(p, "lookup/"):
			lookups++
		case strings.HasPrefix(p, "tile/"):
			tiles++
		default:
			continue
		}
		paths = append(paths, p)
	}
	if lookups != len(rig.built) || tiles == 0 {
		t.Fatalf("replica a stored %d lookups and %d tiles; want %d lookups and some tiles", lookups, tiles, len(rig.built))
	}
	slices.Sort(paths)
	before := rig.up.Counts()
	for _, p := range paths {
		r, err := proto.SumDB(db, p)
		if err != nil {
			t.Fatal(err)
		}
		ct, got := sharedGet(t, b, r)
		if want := rig.object(t, prefix+p); !ct.Hit || !bytes.Equal(got, want) {
			t.Errorf("replica b: /sumdb/%s/%s: hit %v, %d bytes; want a hit of the stored %d bytes", db, p, ct.Hit, len(got), len(want))
		}
	}
	for p, n := range rig.up.Counts() {
		if n != before[p] {
			t.Errorf("upstream requests for %s while replica b served the stored checksum data: %d more", p, n-before[p])
		}
	}
}
